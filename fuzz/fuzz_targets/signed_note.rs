//! Signed notes, checkpoints, cosignatures' keys and trust files, as a witness, a verifier
//! and `ribat audit verify` parse them.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = ribat_audit::note::SignedNote::parse(text);
    let _ = ribat_audit::note::Checkpoint::parse(text);
    let _ = ribat_audit::note::VerifierKey::parse(text);
    let _ = ribat_audit::verify::Trust::parse(text);
});
