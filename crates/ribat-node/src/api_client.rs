//! Calling a running gateway as one of this home's issued identities (the demo, the
//! simulator, `ribat decisions release`, the API benchmark).

use crate::error::{Context, Result};
use ribat_net::client::{ClientSide, Connection};
use std::path::Path;
use std::sync::Arc;

/// The client settings of the identity whose files (`ca.pem`, `cert.pem`, `key.pem`) are
/// in `dir`: its TLS settings, and the signer of its requests (`Ribat-Signature`).
pub fn config_in(dir: &Path) -> Result<ClientSide> {
    let read = |p: &str| {
        std::fs::read_to_string(dir.join(p))
            .with_context(|| format!("cannot read {}", dir.join(p).display()))
    };
    let key = zeroize::Zeroizing::new(read("key.pem")?);
    let cert = read("cert.pem")?;
    Ok(ClientSide {
        tls: ribat_identity::tls::client_config(&read("ca.pem")?, Some((&cert, &key)), false)?,
        signer: Some(Arc::new(
            ribat_identity::signed::RequestSigner::from_pem(&cert, &key)
                .with_context(|| format!("the identity in {}", dir.display()))?,
        )),
        now: None,
    })
}

/// A token for the connection's certificate, lasting `ttl_secs`.
pub async fn token(c: &mut Connection, ttl_secs: u64) -> Result<String> {
    let r = c
        .send(
            "POST",
            "/v1/token",
            None,
            Some(format!("{{\"ttl_secs\": {ttl_secs}}}").into_bytes()),
        )
        .await?;
    crate::ensure!(
        r.status == 200,
        "the gateway refused a token: HTTP {} {}",
        r.status,
        r.json()["detail"].as_str().unwrap_or_default()
    );
    r.json()["token"]
        .as_str()
        .map(str::to_owned)
        .context("no token in the gateway's answer")
}
