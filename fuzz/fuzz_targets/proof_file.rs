//! An inclusion or consistency proof file, as `ribat audit verify-proof` reads it.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = ribat_audit::proof_file::verify_text(text);
    }
});
