//! An e-BDS declaration file: the importer's and the upload route's parser.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = ribat_import::ebds::parse("fuzz", data);
});
