//! The register's CSV files (persons, employers) as the importer reads them.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = ribat_import::csv_files::read_persons(data);
    let _ = ribat_import::csv_files::read_employers(data);
});
