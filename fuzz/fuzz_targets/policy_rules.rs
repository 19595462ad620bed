//! The policy and detection rules files, as nodes read them and as the mesh's log carries
//! them.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = ribat_custodian::policy::Policy::from_json(text);
        let _ = ribat_detect::Rules::from_json(text);
    }
});
