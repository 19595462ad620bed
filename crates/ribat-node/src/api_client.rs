//! Calling a running gateway as one of this home's issued identities (the demo, the
//! simulator, `ribat decisions release`, the API benchmark).

use crate::error::{Context, Result};
use ribat_net::client::Connection;
use rustls::ClientConfig;
use std::path::Path;
use std::sync::Arc;

/// The TLS client settings of the identity whose files (`ca.pem`, `cert.pem`, `key.pem`)
/// are in `dir`.
pub fn config_in(dir: &Path) -> Result<Arc<ClientConfig>> {
    let read = |p: &str| {
        std::fs::read_to_string(dir.join(p))
            .with_context(|| format!("cannot read {}", dir.join(p).display()))
    };
    let key = zeroize::Zeroizing::new(read("key.pem")?);
    Ok(ribat_identity::tls::client_config(
        &read("ca.pem")?,
        Some((&read("cert.pem")?, &key)),
        false,
    )?)
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
