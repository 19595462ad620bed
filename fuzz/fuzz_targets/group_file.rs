//! The public group file (group keys, commitments, public shares), as every node loads it.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = ribat_crypto::group::GroupPublic::from_json(text);
    }
});
