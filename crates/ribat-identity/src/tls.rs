//! TLS 1.3 settings: servers that require a client certificate from the deployment's CA
//! and re-read the revocation list when it changes, and clients that present one.
//!
//! The provider is aws-lc-rs with the hybrid post-quantum key exchange preferred
//! (X25519MLKEM768): these records stay sensitive for decades, so traffic recorded today
//! should not open when a quantum computer does.

use crate::error::IdentityError;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, ServerName};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn tls_err(e: impl std::fmt::Display) -> IdentityError {
    IdentityError::Tls(e.to_string())
}

/// Parses PEM certificates (a chain, leaf first).
pub fn certs_from_pem(
    pem: &str,
    what: &str,
) -> Result<Vec<CertificateDer<'static>>, IdentityError> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| IdentityError::Tls(format!("{what}: {e}")))?;
    if certs.is_empty() {
        return Err(IdentityError::Tls(format!(
            "{what}: no certificate in the PEM text"
        )));
    }
    Ok(certs)
}

fn key_from_pem(pem: &str, what: &str) -> Result<PrivateKeyDer<'static>, IdentityError> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| IdentityError::Tls(format!("{what}: {e}")))
}

fn roots(ca_pem: &str) -> Result<Arc<RootCertStore>, IdentityError> {
    let mut roots = RootCertStore::empty();
    for c in certs_from_pem(ca_pem, "CA certificate")? {
        roots.add(c).map_err(tls_err)?;
    }
    Ok(Arc::new(roots))
}

/// A certificate, its key and the CA, as PEM files on disk.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The CA certificate.
    pub ca: PathBuf,
    /// This party's certificate.
    pub cert: PathBuf,
    /// This party's key.
    pub key: PathBuf,
    /// The revocation list (servers only).
    pub crl: PathBuf,
}

impl TlsFiles {
    /// The usual layout: `DIR/{ca.pem, cert.pem, key.pem}` and the CA's `crl.pem`.
    pub fn in_dir(dir: &Path, crl: &Path) -> Self {
        Self {
            ca: dir.join("ca.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
            crl: crl.to_owned(),
        }
    }

    fn read(path: &Path) -> Result<String, IdentityError> {
        std::fs::read_to_string(path).map_err(|e| IdentityError::file(path, e))
    }
}

/// A server's TLS settings, rebuilt when the revocation list file changes, so that a
/// revocation takes effect at the next connection without a restart.
pub struct ServerTls {
    files: TlsFiles,
    current: RwLock<Loaded>,
    /// Refusals from elsewhere than the list (a mesh's replicated state).
    also: std::sync::OnceLock<VettedBy>,
}

/// A certificate as a request names it: the one its connection presented, or the one a
/// token is bound to.
#[derive(Debug, Clone, Copy)]
pub struct CertRef<'a> {
    /// Serial, lowercase hex.
    pub serial: &'a str,
    /// SHA-256 of the DER certificate, base64url.
    pub thumbprint: &'a str,
    /// Its role (OU).
    pub role: &'a str,
}

/// Why a certificate is refused although its chain verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Revoked (by the list, or by the mesh's administrators).
    Revoked,
    /// Not in the mesh's identity register: issued, never granted.
    NotGranted,
    /// A node certificate that is not the one a current member of the mesh holds.
    NotAMember,
    /// A third party's access past its review date, not re-certified.
    Lapsed,
}

/// Says whether a certificate is refused, and why (a mesh's identity register).
pub type VettedBy = Arc<dyn Fn(&CertRef<'_>) -> Option<Refused> + Send + Sync>;

/// One load of the files: the revocation list's time stamp, the settings built from it,
/// and the serials it revokes (custodians check a token's certificate against them).
struct Loaded {
    stamp: Option<SystemTime>,
    config: Arc<ServerConfig>,
    revoked: Arc<HashSet<String>>,
    verifier: Arc<dyn rustls::server::danger::ClientCertVerifier>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ServerTls({})", self.files.cert.display())
    }
}

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl ServerTls {
    /// Loads the files; fails with the file and the reason when one is wrong.
    pub fn new(files: TlsFiles) -> Result<Self, IdentityError> {
        let loaded = Self::build(&files)?;
        Ok(Self {
            files,
            current: RwLock::new(loaded),
            also: std::sync::OnceLock::new(),
        })
    }

    fn build(files: &TlsFiles) -> Result<Loaded, IdentityError> {
        let stamp = mtime(&files.crl);
        let ca = TlsFiles::read(&files.ca)?;
        let crl_pem = TlsFiles::read(&files.crl)?;
        let crls = CertificateRevocationListDer::pem_slice_iter(crl_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| IdentityError::file(&files.crl, e))?;
        let mut revoked = HashSet::new();
        for der in &crls {
            let (_, crl) = x509_parser::parse_x509_crl(der.as_ref())
                .map_err(|e| IdentityError::file(&files.crl, e))?;
            revoked.extend(
                crl.iter_revoked_certificates()
                    .map(|r| hex::encode(r.raw_serial())),
            );
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(roots(&ca)?, provider())
            .with_crls(crls)
            .build()
            .map_err(|e| IdentityError::file(&files.crl, e))?;
        let chain = certs_from_pem(
            &TlsFiles::read(&files.cert)?,
            &files.cert.display().to_string(),
        )?;
        let key = key_from_pem(
            &zeroize::Zeroizing::new(TlsFiles::read(&files.key)?),
            &files.key.display().to_string(),
        )?;
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(tls_err)?
            .with_client_cert_verifier(verifier.clone())
            .with_single_cert(chain, key)
            .map_err(tls_err)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Loaded {
            stamp,
            config: Arc::new(config),
            revoked: Arc::new(revoked),
            verifier,
        })
    }

    /// Whether the revocation list (reloaded first if it changed), or the second source if
    /// one was set, refuses this certificate.
    pub fn refused(&self, cert: &CertRef<'_>) -> Option<Refused> {
        self.refresh();
        let listed = self
            .current
            .read()
            .map(|c| c.revoked.contains(cert.serial))
            .unwrap_or(true);
        if listed {
            return Some(Refused::Revoked);
        }
        self.also.get().and_then(|also| also(cert))
    }

    /// Checks a client certificate that did not come over this server's own TLS (a user's,
    /// forwarded by a gateway with the request it signed) as the handshake would: chained to
    /// the deployment's CA, valid now, not on the revocation list, nor refused by the
    /// second source. Its identity, on success.
    pub fn verify_forwarded(&self, der: &[u8]) -> Result<crate::PeerIdentity, String> {
        self.refresh();
        let verifier = match self.current.read() {
            Ok(c) => c.verifier.clone(),
            Err(poisoned) => poisoned.into_inner().verifier.clone(),
        };
        let cert = rustls_pki_types::CertificateDer::from(der.to_vec());
        verifier
            .verify_client_cert(&cert, &[], rustls_pki_types::UnixTime::now())
            .map_err(|e| format!("the certificate does not verify: {e}"))?;
        let peer = crate::PeerIdentity::from_der(der).map_err(|e| e.to_string())?;
        let as_ref = CertRef {
            serial: &peer.serial,
            thumbprint: &peer.thumbprint,
            role: peer.role.as_str(),
        };
        match self.refused(&as_ref) {
            None => Ok(peer),
            Some(why) => Err(format!(
                "the certificate of `{}` is refused: {}",
                peer.name,
                match why {
                    Refused::Revoked => "revoked",
                    Refused::NotGranted => "never granted by two administrators",
                    Refused::NotAMember => "not the certificate a member of the mesh holds",
                    Refused::Lapsed => "its access passed its review date",
                }
            )),
        }
    }

    /// Adds a second source of refusals (once; a second call is refused): every request
    /// whose certificate or token it refuses is refused as if the list revoked it.
    pub fn also_vetted_by(&self, source: VettedBy) -> Result<(), IdentityError> {
        self.also
            .set(source)
            .map_err(|_| IdentityError::Invalid("a second source of refusals".into()))
    }

    /// The settings for a new connection, reloaded first if the revocation list changed.
    pub fn config(&self) -> Arc<ServerConfig> {
        self.refresh();
        match self.current.read() {
            Ok(c) => c.config.clone(),
            Err(poisoned) => poisoned.into_inner().config.clone(),
        }
    }

    /// Reloads when the revocation list's time stamp changed. A list that fails to load
    /// keeps the previous one and says so once per change.
    fn refresh(&self) {
        let now = mtime(&self.files.crl);
        if let Ok(cur) = self.current.read()
            && cur.stamp == now
        {
            return;
        }
        match Self::build(&self.files) {
            Ok(fresh) => {
                if let Ok(mut cur) = self.current.write() {
                    *cur = fresh;
                }
            }
            Err(e) => {
                eprintln!(
                    "warning: the revocation list changed but cannot be loaded ({e}); keeping the previous one"
                );
                if let Ok(mut cur) = self.current.write() {
                    cur.stamp = now;
                }
            }
        }
    }
}

/// A client's TLS settings: trusts the deployment's CA only, and presents a certificate
/// when `cert` and `key` are given (tests also build one without, to be refused).
pub fn client_config(
    ca_pem: &str,
    cert_and_key: Option<(&str, &str)>,
    alpn_h2: bool,
) -> Result<Arc<ClientConfig>, IdentityError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_err)?
        .with_root_certificates(roots(ca_pem)?);
    let mut config = match cert_and_key {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                certs_from_pem(cert, "client certificate")?,
                key_from_pem(key, "client key")?,
            )
            .map_err(tls_err)?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = if alpn_h2 {
        vec![b"h2".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(Arc::new(config))
}

/// A server name for a host or an address.
pub fn server_name(host: &str) -> Result<ServerName<'static>, IdentityError> {
    ServerName::try_from(host.to_owned())
        .map_err(|e| IdentityError::Tls(format!("server name `{host}`: {e}")))
}
