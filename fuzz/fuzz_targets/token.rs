//! A bearer token, as the gateway and every custodian verify it.
#![no_main]
use std::sync::OnceLock;

fn verifier() -> &'static ribat_identity::TokenVerifier {
    static V: OnceLock<ribat_identity::TokenVerifier> = OnceLock::new();
    V.get_or_init(|| {
        ribat_identity::TokenIssuer::generate("ribat.fuzz")
            .expect("a token key")
            .verifier()
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = verifier().verify(text, time::OffsetDateTime::now_utc());
    }
});
