//! `ribat identity …` and `ribat token issue`: the deployment's CA in HOME/identity.

use crate::bail;
use crate::embedded::DEPLOYMENT;
use crate::error::{Context, Result};
use crate::home::Home;
use ribat_identity::ca::write_file;
use ribat_identity::tls::TlsFiles;
use ribat_identity::{Ca, CertKind, PeerIdentity};
use std::path::{Path, PathBuf};

/// The node's own gateway identity, issued at `identity init`.
pub const GATEWAY_NAME: &str = "gateway.embedded";

/// HOME/identity.
pub fn dir(home: &Home) -> PathBuf {
    home.root().join("identity")
}

/// Where `identity add` puts a holder's files by default.
pub fn issued_dir(home: &Home, name: &str) -> PathBuf {
    dir(home).join("issued").join(name)
}

/// The TLS files of an issued identity of this home.
pub fn tls_files(home: &Home, name: &str) -> TlsFiles {
    TlsFiles::in_dir(
        &issued_dir(home, name),
        &dir(home).join(ribat_identity::ca::CRL),
    )
}

/// Opens the CA, with a hint when there is none.
pub fn open_ca(home: &Home) -> Result<Ca> {
    Ca::open(&dir(home), DEPLOYMENT).with_context(|| {
        format!(
            "no identity CA in {}: run `ribat identity init`",
            home.root().display()
        )
    })
}

/// Writes cert.pem, key.pem (0600) and ca.pem into `out`.
pub(crate) fn write_issued(ca: &Ca, issued: &ribat_identity::Issued, out: &Path) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    crate::home::restrict(out)?;
    write_file(&out.join("cert.pem"), issued.cert_pem.as_bytes(), false)?;
    write_file(&out.join("key.pem"), issued.key_pem.as_bytes(), true)?;
    write_file(&out.join("ca.pem"), ca.cert_pem()?.as_bytes(), false)?;
    Ok(())
}

/// The token key in `home`'s identity directory (a node of a mesh's identity service holds
/// it without the CA's register).
pub fn token_issuer(home: &Home) -> Result<ribat_identity::TokenIssuer> {
    Ok(ribat_identity::TokenIssuer::from_file(
        DEPLOYMENT,
        &dir(home).join(ribat_identity::ca::TOKEN_KEY),
    )?)
}

/// `identity init`: the CA, its revocation list, the token key, and the node's gateway
/// certificate for `hosts`.
pub fn init(home: &Home, hosts: &[String]) -> Result<()> {
    let ca = init_quiet(home, hosts)?;
    println!(
        "identity CA for {DEPLOYMENT} created in {}",
        ca.dir().display()
    );
    println!(
        "gateway certificate `{GATEWAY_NAME}` for {} in {}",
        hosts.join(", "),
        issued_dir(home, GATEWAY_NAME).display()
    );
    println!("next: `ribat identity add --name NAME --role ROLE` for each person or system");
    Ok(())
}

/// The CA and the gateway certificate, without a word.
pub fn init_quiet(home: &Home, hosts: &[String]) -> Result<Ca> {
    home.create()?;
    let ca = Ca::init(&dir(home), DEPLOYMENT)?;
    let gw = ca.issue(
        GATEWAY_NAME,
        "gateway",
        "node.embedded",
        &CertKind::Server {
            hosts: hosts.to_vec(),
        },
        90,
    )?;
    write_issued(&ca, &gw, &issued_dir(home, GATEWAY_NAME))?;
    Ok(ca)
}

/// Issues a client identity into HOME/identity/issued/NAME, without a word.
pub fn add_client_quiet(
    ca: &Ca,
    home: &Home,
    name: &str,
    role: &str,
    institution: &str,
) -> Result<PathBuf> {
    let issued = ca.issue(name, role, institution, &CertKind::Client, 30)?;
    let out = issued_dir(home, name);
    write_issued(ca, &issued, &out)?;
    Ok(out)
}

/// Issues a custodian's (server) identity for `hosts` into HOME/identity/issued/NAME.
pub fn add_server_quiet(
    ca: &Ca,
    home: &Home,
    name: &str,
    role: &str,
    hosts: &[String],
) -> Result<PathBuf> {
    let kind = CertKind::Server {
        hosts: hosts.to_vec(),
    };
    let issued = ca.issue(name, role, DEPLOYMENT, &kind, 30)?;
    let out = issued_dir(home, name);
    write_issued(ca, &issued, &out)?;
    Ok(out)
}

/// `identity add`.
#[allow(clippy::too_many_arguments)] // one per command-line option
pub fn add(
    home: &Home,
    name: &str,
    role: &str,
    institution: &str,
    days: u32,
    hosts: &[String],
    out: Option<PathBuf>,
    review_by: Option<i64>,
) -> Result<()> {
    let third_party = ribat_policy::REVIEWED_ROLES.contains(&role);
    if review_by.is_some() && !third_party {
        bail!(
            "--review-by: only third parties' access ({}) is reviewed; a `{role}` certificate is not",
            ribat_policy::REVIEWED_ROLES.join(", ")
        );
    }
    let ca = open_ca(home)?;
    let kind = if hosts.is_empty() {
        if matches!(role, "gateway" | "custodian") {
            bail!("a `{role}` certificate serves TLS: give --host (e.g. --host 127.0.0.1)");
        }
        CertKind::Client
    } else {
        CertKind::Server {
            hosts: hosts.to_vec(),
        }
    };
    let issued = ca.issue(name, role, institution, &kind, days)?;
    let out = out.unwrap_or_else(|| issued_dir(home, name));
    write_issued(&ca, &issued, &out)?;
    println!(
        "issued `{name}` (role {role}, {institution}), serial {}, valid {days} days",
        issued.entry.serial
    );
    if third_party {
        let due = review_by.unwrap_or_else(|| {
            time::OffsetDateTime::now_utc().unix_timestamp() + crate::reviews::DEFAULT_PERIOD_S
        });
        ca.review(name, due)?;
        println!(
            "  a third party: its access lapses at {} unless a security administrator re-certifies it (`ribat identity recertify --name {name} --review-by DATE`); a finding is raised a week before",
            ribat_custodian::error_utc(u64::try_from(due).unwrap_or(0))
        );
    }
    println!(
        "  {}/cert.pem, key.pem (keep it secret), ca.pem",
        out.display()
    );
    // A mesh's deployment HOME sits beside its node directories: there a certificate is
    // refused by every node until two administrators grant it.
    if let Some(mesh) = home.root().parent()
        && crate::mesh::is_node(&Home::at(mesh.join("node-1")))
    {
        println!(
            "  in the mesh of {} it acts once two administrators grant it: each runs `ribat mesh approve --key KEY --as NAME --grant {} --reason R`, then `ribat mesh grant --dir {} --cert {} --reason R --approval … --approval …`",
            mesh.display(),
            out.display(),
            mesh.join("node-1").display(),
            out.display()
        );
    }
    Ok(())
}

/// `identity revoke`.
pub fn revoke(home: &Home, name: &str) -> Result<()> {
    let n = open_ca(home)?.revoke(name)?;
    println!(
        "revoked {n} certificate(s) of `{name}`; servers refuse it from their next connection (no restart)"
    );
    Ok(())
}

/// `identity list`.
pub fn list(home: &Home) -> Result<()> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    for e in open_ca(home)?.register()? {
        let state = match e.revoked_at {
            Some(_) => "revoked",
            None if e.not_after <= now => "expired",
            None => "valid",
        };
        println!(
            "{:<28} {:<15} {:<24} {state:<8} until {}",
            e.name,
            e.role,
            e.institution,
            ribat_custodian::error_utc(u64::try_from(e.not_after).unwrap_or(0))
        );
    }
    Ok(())
}

/// `token issue`: a token for the holder of a certificate (an operator's tool; callers
/// normally use POST /v1/token with their certificate).
pub fn issue_token(home: &Home, cert: &Path, ttl: u64, audience: Option<&str>) -> Result<()> {
    let ca = open_ca(home)?;
    let pem =
        std::fs::read_to_string(cert).with_context(|| format!("cannot read {}", cert.display()))?;
    let der = ribat_identity::tls::certs_from_pem(&pem, &cert.display().to_string())?;
    let first = der.first().context("no certificate in the file")?;
    let peer = PeerIdentity::from_der(first.as_ref())?;
    let entry = ca
        .register()?
        .into_iter()
        .find(|e| e.serial == peer.serial)
        .with_context(|| format!("{} was not issued by this deployment's CA", cert.display()))?;
    if entry.revoked_at.is_some() {
        bail!(
            "the certificate of `{}` is revoked; no token is issued for it",
            peer.name
        );
    }
    let (token, claims) = ca.token_issuer()?.issue(
        &peer,
        audience.unwrap_or(DEPLOYMENT),
        ribat_clock::now_utc(),
        ttl,
    )?;
    eprintln!(
        "token for `{}` ({}), expires {}",
        claims.sub, claims.role, claims.exp
    );
    println!("{token}");
    Ok(())
}
