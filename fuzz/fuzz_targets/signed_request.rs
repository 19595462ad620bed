//! A signed request as the gateway and every custodian read it: the `Ribat-Signature` and
//! `Ribat-Cosign` headers, the certificate forwarded with it, and the read its method,
//! target and body name. Lines: signature header, co-signature header, method, target,
//! certificate (base64url DER), then the body.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut lines = data.splitn(6, |b| *b == b'\n');
    let mut line = || {
        lines
            .next()
            .and_then(|l| std::str::from_utf8(l).ok())
            .unwrap_or("")
            .to_owned()
    };
    let (signature, cosign, method, target, certificate) = (line(), line(), line(), line(), line());
    let body = data
        .splitn(6, |b| *b == b'\n')
        .nth(5)
        .unwrap_or_default()
        .to_vec();
    let now = 1_800_000_000;
    if let Ok(s) = ribat_identity::signed::Signature::parse(&signature) {
        let _ = s.check_time(now);
        let _ = s.check_body(&body);
        let covered = s.covers(&method, &target, Some("v4.public.fuzz"));
        let _ = s.verify(certificate.as_bytes(), &covered);
    }
    let _ = ribat_identity::signed::Cosignature::parse(&cosign);
    let _ = ribat_custodian::asked::read_of(&method, &target, &body);
    let asked = ribat_custodian::request::Asked {
        certificate,
        method,
        target,
        body: (!body.is_empty()).then(|| {
            use base64ct::Encoding;
            base64ct::Base64UrlUnpadded::encode_string(&body)
        }),
        signature,
    };
    let _ = ribat_custodian::asked::check_signed(&asked, "v4.public.fuzz", now);
});
