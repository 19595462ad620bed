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

/// The gateway to call: `given`, else the one a running gateway recorded in
/// HOME/gateway.addr.
pub fn gateway_addr(home: &crate::home::Home, given: Option<&str>) -> Result<String> {
    if let Some(a) = given {
        return Ok(a.to_owned());
    }
    let file = home.root().join(crate::serve::GATEWAY_ADDR_FILE);
    std::fs::read_to_string(&file)
        .map(|s| s.trim().to_owned())
        .with_context(|| {
            format!(
                "no --gateway given and no running gateway recorded its address in {}",
                file.display()
            )
        })
}

/// One request to the gateway at `addr` (`HOST:PORT`) as the identity whose files are in
/// `dir`: a token for its certificate first (that request signed too, as a mesh's identity
/// service wants it), then `method target` with `body` (JSON), signed with the
/// certificate's key. The gateway's answer, whatever its status.
pub fn call(
    addr: &str,
    dir: &Path,
    method: &str,
    target: &str,
    body: Option<Vec<u8>>,
) -> Result<ribat_net::client::Response> {
    crate::ensure!(
        target.starts_with("/v1/"),
        "`{target}`: the path of an API route, such as /v1/persons/123456789?purpose=counter-service"
    );
    let cfg = config_in(dir)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut c = Connection::open(cfg, addr, crate::mesh::host_of(addr), false)
            .await
            .with_context(|| format!("cannot reach the gateway at {addr}"))?;
        // For this one request.
        let token = token(&mut c, 60).await?;
        Ok(c.send(method, target, Some(&token), body).await?)
    })
}
