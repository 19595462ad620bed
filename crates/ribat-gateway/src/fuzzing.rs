//! The gateway's request decoding as one function, for `fuzz/` (cargo-fuzz) only: what a
//! hostile client controls before any handler runs — the query string of each route, each
//! JSON body, a CNSS or affiliation number in a path, a case reference — decoded as the
//! routes decode it. Built only with the `fuzzing` feature; never part of a node.

use axum::http::Uri;

/// Decodes `data` as the gateway's routes would: the first byte picks what, the rest is
/// the input. Returns whether it was taken (the fuzzer looks for panics, not answers).
pub fn decode(data: &[u8]) -> bool {
    let Some((&which, rest)) = data.split_first() else {
        return false;
    };
    let text = String::from_utf8_lossy(rest);
    match which % 8 {
        0 => query::<crate::body::PersonQuery>(&text),
        1 => query::<crate::body::DeclarationsQuery>(&text),
        2 => query::<crate::body::EmployerQuery>(&text),
        3 => query::<crate::body::UploadQuery>(&text),
        4 => serde_json::from_slice::<crate::body::SearchBody>(rest).is_ok(),
        5 => ribat_identity::token::requested_ttl(rest).is_ok(),
        6 => {
            serde_json::from_slice::<crate::body::ReleaseBody>(rest).is_ok()
                | serde_json::from_slice::<crate::body::ExportBody>(rest).is_ok()
        }
        _ => {
            crate::reads::exact_digits(&text, 9, "CNSS number").is_ok()
                | crate::reads::case_ref(Some(&text)).is_ok()
        }
    }
}

fn query<Q: serde::de::DeserializeOwned + Default>(text: &str) -> bool {
    let Ok(uri) = format!("/v1/x?{text}").parse::<Uri>() else {
        return false;
    };
    crate::reads::read_query::<Q>(&uri).is_ok()
}
