//! What makes a console form the security team's own: it came from a console page (a
//! token bound to the viewer's certificate, made by this gateway within the last hours)
//! and was posted from this origin (`Origin`, and `Sec-Fetch-Site` where the browser
//! sends it). A page on another site can make a browser post to the console with the
//! administrator's certificate; it can neither read a token nor set `Origin`.

use axum::http::HeaderMap;
use hmac::{Hmac, KeyInit, Mac};
use ribat_crypto::secret::SecretBytes;
use sha2::Sha256;
use std::sync::OnceLock;

/// How long a page's token is taken.
const VALID_S: u64 = 8 * 3600;

/// This process's key for form tokens: drawn at the first page, forgotten at exit (a
/// restart asks for the page again).
fn key() -> Option<&'static SecretBytes<32>> {
    static KEY: OnceLock<Option<SecretBytes<32>>> = OnceLock::new();
    KEY.get_or_init(|| SecretBytes::random().ok()).as_ref()
}

fn mac(thumbprint: &str, issued_s: u64) -> Option<Hmac<Sha256>> {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key()?.expose()).ok()?;
    m.update(b"ribat console form v1\0");
    m.update(thumbprint.as_bytes());
    m.update(&issued_s.to_be_bytes());
    Some(m)
}

/// A token for the forms of a page shown at `now_s` to the holder of the certificate
/// `thumbprint`; empty when the system has no randomness (every form is then refused).
pub(crate) fn token(thumbprint: &str, now_s: u64) -> String {
    mac(thumbprint, now_s).map_or_else(String::new, |m| {
        format!("{now_s}.{}", hex::encode(m.finalize().into_bytes()))
    })
}

/// Why a form is refused, in words for the page.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Posted from another site (or by a client that says nothing of where from).
    Origin(String),
    /// No token, another certificate's, a forged or an old one.
    Token(&'static str),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Origin(why) => write!(f, "this form was not posted from the console: {why}"),
            Self::Token(why) => write!(
                f,
                "this form's token {why}; open the page again and send the form from there"
            ),
        }
    }
}

/// Whether a form posted with `headers` to `host` (the request's authority: its `Host`
/// header over HTTP/1, `:authority` over HTTP/2) came from this console's own pages.
pub(crate) fn same_origin(headers: &HeaderMap, host: Option<&str>) -> Result<(), Refusal> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = get("sec-fetch-site")
        && site != "same-origin"
    {
        return Err(Refusal::Origin(format!(
            "the browser says it came from `{site}`"
        )));
    }
    match (get("origin"), host) {
        (None, _) => Err(Refusal::Origin("it carries no Origin".into())),
        (Some(origin), Some(host)) if origin == format!("https://{host}") => Ok(()),
        (Some(origin), _) => Err(Refusal::Origin(format!(
            "it came from {origin}, not from this gateway"
        ))),
    }
}

/// Whether `token` was made by this process for the certificate `thumbprint` within the
/// last [`VALID_S`] seconds at `now_s`.
pub(crate) fn check(token: &str, thumbprint: &str, now_s: u64) -> Result<(), Refusal> {
    let (issued, given) = token
        .split_once('.')
        .ok_or(Refusal::Token("is missing or malformed"))?;
    let issued: u64 = issued
        .parse()
        .map_err(|_| Refusal::Token("is missing or malformed"))?;
    let given = hex::decode(given).map_err(|_| Refusal::Token("is missing or malformed"))?;
    let want = mac(thumbprint, issued).ok_or(Refusal::Token("cannot be checked"))?;
    // Compared in constant time by the MAC itself.
    want.verify_slice(&given)
        .map_err(|_| Refusal::Token("was not made by this gateway for your certificate"))?;
    if issued > now_s.saturating_add(60) || now_s.saturating_sub(issued) > VALID_S {
        return Err(Refusal::Token("has expired"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn a_token_holds_for_its_certificate_within_its_hours_only() {
        let t = token("thumb-a", 1_000_000);
        assert!(check(&t, "thumb-a", 1_000_000).is_ok());
        assert!(check(&t, "thumb-a", 1_000_000 + VALID_S).is_ok());
        assert_eq!(
            check(&t, "thumb-a", 1_000_001 + VALID_S),
            Err(Refusal::Token("has expired"))
        );
        assert_eq!(
            check(&t, "thumb-b", 1_000_000),
            Err(Refusal::Token(
                "was not made by this gateway for your certificate"
            ))
        );
        // Its time moved: the MAC no longer matches.
        let moved = t.replacen("1000000", "1000001", 1);
        assert!(check(&moved, "thumb-a", 1_000_001).is_err());
        assert!(check("", "thumb-a", 1_000_000).is_err());
        assert!(check("x.y", "thumb-a", 1_000_000).is_err());
        // One from the future (a clock far ahead when it was made) is not taken.
        assert_eq!(
            check(&token("thumb-a", 2_000_000), "thumb-a", 1_000_000),
            Err(Refusal::Token("has expired"))
        );
    }

    #[test]
    fn a_form_is_taken_from_this_origin_only() {
        let host = Some("127.0.0.1:8443");
        let ours = ("origin", "https://127.0.0.1:8443");
        assert!(same_origin(&headers(&[ours]), host).is_ok());
        assert!(same_origin(&headers(&[ours, ("sec-fetch-site", "same-origin")]), host).is_ok());
        for (bad, host) in [
            (headers(&[]), host),
            (headers(&[("origin", "https://evil.example")]), host),
            (headers(&[("origin", "http://127.0.0.1:8443")]), host),
            (headers(&[("origin", "null")]), host),
            (headers(&[ours, ("sec-fetch-site", "cross-site")]), host),
            (headers(&[ours, ("sec-fetch-site", "none")]), host),
            (headers(&[ours]), None),
        ] {
            assert!(
                matches!(same_origin(&bad, host), Err(Refusal::Origin(_))),
                "{bad:?}"
            );
        }
    }
}
