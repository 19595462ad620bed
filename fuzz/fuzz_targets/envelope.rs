//! A sealed record's envelope, as the store hands it to a reader: parsed, and what parses
//! writes back to the same bytes' meaning.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(e) = ribat_crypto::envelope::Envelope::from_bytes(data) else {
        return;
    };
    let _ = e.r_point();
    if let Ok(bytes) = e.to_bytes() {
        let again = ribat_crypto::envelope::Envelope::from_bytes(&bytes)
            .expect("an envelope written back parses");
        assert_eq!(again.to_bytes().ok(), Some(bytes), "writing back is stable");
    }
});
