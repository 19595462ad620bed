//! `ribat export`: a bulk export to a partner, approved by two administrators, carrying
//! synthetic persons unique to that recipient (export canaries), its manifest kept sealed.
//!
//! ```text
//!   request (who asks, recipient, purpose, query) ─► HOME/exports/ID.json   pending
//!   approve ×2 (two distinct `security` identities, neither the recipient)
//!   run ─► every person read through the quorum as `export/RECIPIENT` (audited)
//!       ─► canaries: new persons, sealed, indexed, leak-digested with the canary mark
//!       ─► manifest (recipient, rows, canaries, time, approvers, file SHA-256) sealed to
//!          the identity class in table `exports`; each canary tagged `canary` → it
//!       ─► the file, canaries at random places among the rows
//! ```
//!
//! A leak scan that meets a canary opens that one manifest through the quorum (purpose
//! `leak-attribution`, each custodian logs it) and names the recipient.

use crate::embedded::Embedded;
use crate::ensure;
use crate::error::{Context, Result};
use crate::home::Home;
use rand::{RngExt, SeedableRng};
use ribat_crypto::envelope::Sealer;
use ribat_custodian::request::{PartialRequest, Requester};
use ribat_gateway::exports::{ExportDesk, ExportError, ExportState};
use ribat_gateway::vault::Reader;
use ribat_import::model::PersonRow;
use ribat_import::records::RecordSealer;
use ribat_policy::{Class, Purpose, Role, Table};
use ribat_store::{StoredClass, StoredRecord};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::path::{Path, PathBuf};

/// The table holding sealed export manifests.
pub const EXPORTS: Table = Table::Exports;
/// Blind-index kind tying a canary to its export.
pub const CANARY_KIND: &str = "canary";
/// Fields a partner export carries.
pub const FIELDS: [&str; 5] = ["cnss", "cin", "given", "surname", "birth_date"];

/// A requested export, kept in HOME/exports/ID.json until it runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    /// Export id.
    pub id: String,
    /// The partner it goes to (an issued identity).
    pub recipient: String,
    /// Why.
    pub purpose: Purpose,
    /// CNSS numbers asked for.
    pub cnss: Vec<String>,
    /// Who asked.
    pub requested_by: String,
    /// When, Unix seconds.
    pub requested_at: i64,
    /// Administrators who approved.
    pub approvals: Vec<String>,
    /// Set once run.
    pub ran_at: Option<i64>,
    /// Rows of the file, canaries included, once run.
    #[serde(default)]
    pub rows: Option<usize>,
    /// SHA-256 of the file, once run.
    #[serde(default)]
    pub file_sha256: Option<String>,
    /// Where the file was written, once run.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// Each fetch of the file through the API: who, when.
    #[serde(default)]
    pub fetched: Vec<(String, i64)>,
}

impl Request {
    /// Where it stands, without the persons it names.
    pub fn state(&self) -> ExportState {
        ExportState {
            id: self.id.clone(),
            recipient: self.recipient.clone(),
            purpose: self.purpose.to_string(),
            persons: self.cnss.len(),
            requested_by: self.requested_by.clone(),
            approvals: self.approvals.clone(),
            needed: APPROVALS,
            ran_at: self.ran_at,
            rows: self.rows,
            file_sha256: self.file_sha256.clone(),
            fetched: self.fetched.clone(),
        }
    }
}

/// Approvals an export needs.
pub const APPROVALS: usize = 2;

fn refused(m: impl Into<String>) -> crate::NodeError {
    ExportError::Refused(m.into()).into()
}

fn invalid(m: impl Into<String>) -> crate::NodeError {
    ExportError::Invalid(m.into()).into()
}

/// What the sealed manifest says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// Export id.
    pub id: String,
    /// Recipient.
    pub recipient: String,
    /// Purpose.
    pub purpose: Purpose,
    /// Rows of the file, canaries included.
    pub rows: usize,
    /// Canaries' record ids.
    pub canaries: Vec<String>,
    /// When, Unix seconds.
    pub time: i64,
    /// The two approvers.
    pub approvers: Vec<String>,
    /// SHA-256 of the file, hex.
    pub file_sha256: String,
}

fn now() -> i64 {
    i64::try_from(ribat_clock::now_secs()).unwrap_or(0)
}

fn path_of(home: &Home, id: &str) -> Result<PathBuf> {
    if !(id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit())) {
        return Err(ExportError::NotFound(format!(
            "{id:?} is not an export id (16 hex digits, as `ribat export request` printed)"
        ))
        .into());
    }
    Ok(home.root().join("exports").join(format!("{id}.json")))
}

fn load(home: &Home, id: &str) -> Result<Request> {
    let p = path_of(home, id)?;
    let text = match std::fs::read_to_string(&p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ExportError::NotFound(format!(
                "no export {id} in {}",
                p.parent().map_or(p.clone(), Path::to_path_buf).display()
            ))
            .into());
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", p.display())),
    };
    serde_json::from_str(&text).with_context(|| format!("{} is damaged", p.display()))
}

fn save(home: &Home, r: &Request) -> Result<()> {
    let p = path_of(home, &r.id)?;
    ribat_audit::log::write_atomic(&p, &serde_json::to_vec_pretty(r)?)
        .with_context(|| format!("cannot write {}", p.display()))
}

/// The role of an issued, unrevoked identity.
fn role_of(home: &Home, name: &str) -> Result<String> {
    let ca = crate::identity::open_ca(home)?;
    let e = ca
        .register()?
        .into_iter()
        .rev()
        .find(|e| e.name == name && e.revoked_at.is_none())
        .ok_or_else(|| {
            invalid(format!(
                "{name} is not an identity of this deployment (or it was revoked)"
            ))
        })?;
    Ok(e.role)
}

/// Reads the `cnss` column of a CSV.
fn read_query(path: &Path) -> Result<Vec<String>> {
    let mut r =
        csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    let col = r
        .headers()?
        .iter()
        .position(|h| h.trim().eq_ignore_ascii_case("cnss"))
        .with_context(|| format!("{} has no `cnss` column", path.display()))?;
    let mut out = Vec::new();
    for (i, rec) in r.records().enumerate() {
        let rec = rec.with_context(|| format!("{} line {}", path.display(), i + 2))?;
        let v = rec.get(col).unwrap_or("").trim();
        ensure!(
            ribat_leak::row::cnss(v).is_some(),
            "{} line {}: not a CNSS number (9 digits)",
            path.display(),
            i + 2
        );
        out.push(v.to_owned());
    }
    ensure!(!out.is_empty(), "{} asks for nobody", path.display());
    Ok(out)
}

/// Files a request for the persons of a CSV's `cnss` column; returns its id.
pub fn request(
    home: &Home,
    recipient: &str,
    purpose: &str,
    query: &Path,
    by: &str,
) -> Result<String> {
    let cnss = read_query(query)?;
    Ok(request_numbers(home, recipient, purpose, cnss, by)?.id)
}

/// Files a request for these CNSS numbers.
pub fn request_numbers(
    home: &Home,
    recipient: &str,
    purpose: &str,
    cnss: Vec<String>,
    by: &str,
) -> Result<Request> {
    if role_of(home, recipient)? != "partner" {
        return Err(invalid(format!(
            "{recipient} is not a partner: exports go to partner identities"
        )));
    }
    role_of(home, by)?;
    let purpose: Purpose = purpose
        .parse()
        .map_err(|e: ribat_policy::NameError| invalid(e.to_string()))?;
    if cnss.is_empty() {
        return Err(invalid("the export asks for nobody"));
    }
    if let Some(i) = cnss.iter().position(|c| ribat_leak::row::cnss(c).is_none()) {
        return Err(invalid(format!(
            "number {} of the request is not a CNSS number (9 digits)",
            i + 1
        )));
    }
    let raw = ribat_crypto::secret::SecretBytes::<8>::random()?;
    let id: String = hex::encode(raw.expose());
    std::fs::create_dir_all(home.root().join("exports"))?;
    let r = Request {
        id,
        recipient: recipient.into(),
        purpose,
        cnss,
        requested_by: by.into(),
        requested_at: now(),
        approvals: Vec::new(),
        ran_at: None,
        rows: None,
        file_sha256: None,
        file: None,
        fetched: Vec::new(),
    };
    save(home, &r)?;
    Ok(r)
}

/// One administrator's approval. Returns the request as it now stands.
pub fn approve(home: &Home, id: &str, admin: &str) -> Result<Request> {
    let mut r = load(home, id)?;
    if r.ran_at.is_some() {
        return Err(refused(format!("export {id} already ran")));
    }
    if role_of(home, admin)? != "security" {
        return Err(refused(format!(
            "{admin} is not a security administrator: only role `security` approves exports"
        )));
    }
    if admin == r.recipient {
        return Err(refused("the recipient cannot approve its own export"));
    }
    if r.approvals.iter().any(|a| a == admin) {
        return Err(refused(format!(
            "{admin} already approved export {id}: a second administrator must"
        )));
    }
    r.approvals.push(admin.into());
    save(home, &r)?;
    Ok(r)
}

/// How many canaries an export of `rows` persons carries: at least two, one per 500 rows.
pub fn canaries_for(rows: usize) -> usize {
    (rows / 500).max(2)
}

fn synthetic(rng: &mut impl rand::Rng, node: &Embedded) -> Result<PersonRow> {
    let spec = ribat_sim::FundSpec::new(1, 1, 1, rng.random());
    let fund = ribat_sim::generate(&spec);
    let mut p = ribat_sim::files::person_row(&fund, 0);
    // A number nobody holds, of the shape real ones have.
    loop {
        let n = format!("{:09}", rng.random_range(100_000_000u64..199_999_999));
        if node.vault.by_cnss(&n)?.is_empty() {
            p.cnss = n;
            break;
        }
    }
    Ok(p)
}

/// Runs an approved export into `out`.
pub fn run(home: &Home, node: &Embedded, id: &str, out: &Path) -> Result<(Request, Manifest)> {
    let mut req = load(home, id)?;
    if req.ran_at.is_some() {
        return Err(refused(format!("export {id} already ran")));
    }
    if req.approvals.len() < APPROVALS {
        return Err(refused(format!(
            "export {id} has {} approval(s); two security administrators must approve it (`ribat export approve {id} --as NAME`, or POST /v1/exports/{id}/approve)",
            req.approvals.len()
        )));
    }
    if out.exists() {
        return Err(refused(format!(
            "{} exists; an export never overwrites a file",
            out.display()
        )));
    }
    let manifest = execute(node, &req, out)?;
    req.ran_at = Some(manifest.time);
    req.rows = Some(manifest.rows);
    req.file_sha256 = Some(manifest.file_sha256.clone());
    req.file = Some(out.to_owned());
    save(home, &req)?;
    Ok((req, manifest))
}

/// The node's export desk for the gateway's `/v1/exports` routes: the same request
/// files, checks and run as `ribat export`, with the caller's certificate identity as the
/// requester or approver. Files go to `HOME/exports/ID.csv` (owner-only) for the
/// recipient to fetch.
pub struct NodeDesk {
    home: Home,
    node: std::sync::Arc<Embedded>,
    // One operation at a time: two approvals arriving together must both count.
    lock: std::sync::Mutex<()>,
}

impl NodeDesk {
    /// A desk over this node.
    pub fn new(home: Home, node: std::sync::Arc<Embedded>) -> Self {
        Self {
            home,
            node,
            lock: std::sync::Mutex::new(()),
        }
    }

    fn locked<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T, ExportError> {
        let _g = self
            .lock
            .lock()
            .map_err(|_| ExportError::Failed("the export desk failed earlier".into()))?;
        f().map_err(|e| match e {
            crate::NodeError::Export(typed) => typed,
            other => ExportError::Failed(other.chain()),
        })
    }
}

impl ExportDesk for NodeDesk {
    fn request(
        &self,
        by: &str,
        recipient: &str,
        purpose: &str,
        cnss: Vec<String>,
    ) -> Result<ExportState, ExportError> {
        self.locked(|| Ok(request_numbers(&self.home, recipient, purpose, cnss, by)?.state()))
    }

    fn state(&self, id: &str) -> Result<ExportState, ExportError> {
        self.locked(|| Ok(load(&self.home, id)?.state()))
    }

    fn approve(&self, id: &str, admin: &str) -> Result<ExportState, ExportError> {
        self.locked(|| Ok(approve(&self.home, id, admin)?.state()))
    }

    fn run(&self, id: &str) -> Result<ExportState, ExportError> {
        self.locked(|| {
            let out = path_of(&self.home, id)?.with_extension("csv");
            Ok(run(&self.home, &self.node, id, &out)?.0.state())
        })
    }

    fn list(&self) -> Result<Vec<ExportState>, ExportError> {
        self.locked(|| {
            let dir = self.home.root().join("exports");
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
            };
            let mut all = Vec::new();
            for e in entries {
                let path = e
                    .with_context(|| format!("cannot list {}", dir.display()))?
                    .path();
                // Requests only (`ID.json`), not what else the directory holds.
                let Some(id) = path
                    .extension()
                    .is_some_and(|x| x == "json")
                    .then(|| path.file_stem().and_then(|s| s.to_str()))
                    .flatten()
                    .filter(|id| id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()))
                else {
                    continue;
                };
                all.push((
                    std::fs::metadata(&path).and_then(|m| m.modified()).ok(),
                    load(&self.home, id)?.state(),
                ));
            }
            all.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.id.cmp(&b.1.id)));
            Ok(all.into_iter().map(|(_, s)| s).collect())
        })
    }

    fn fetch(&self, id: &str, who: &str) -> Result<Vec<u8>, ExportError> {
        self.locked(|| {
            let mut r = load(&self.home, id)?;
            let Some(file) = r.file.clone() else {
                return Err(refused(format!("export {id} has not run yet")));
            };
            let bytes =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            // Recorded before the bytes leave.
            r.fetched.push((who.to_owned(), now()));
            save(&self.home, &r)?;
            Ok(bytes)
        })
    }
}

/// Runs an export whose approvals were checked: reads, canaries, sealed manifest, file.
pub fn execute(node: &Embedded, req: &Request, out: &Path) -> Result<Manifest> {
    let id = req.id.as_str();
    let reader = Reader {
        who: Requester {
            identity: format!("export/{}", req.recipient),
            role: Role::EXPORT,
        },
        institution: req.recipient.clone(),
        purpose: req.purpose.clone(),
        token: None,
        asked: None,
    };
    let mut rows: Vec<Vec<String>> = Vec::new();
    for c in &req.cnss {
        let Some(pid) = node.vault.by_cnss(c)?.into_iter().next() else {
            continue;
        };
        let f = node
            .vault
            .person(&reader, &pid, &FIELDS)
            .with_context(|| "the custodians refused the export read")?;
        rows.push(
            FIELDS
                .iter()
                .map(|k| f.get(*k).cloned().unwrap_or_default())
                .collect(),
        );
    }
    ensure!(
        !rows.is_empty(),
        "none of the {} numbers asked for is in the vault",
        req.cnss.len()
    );
    // Canaries: new persons, sealed and filed like any other, marked for the leak scan.
    let leak = node.leak_digester(&format!("export-{id}"))?;
    let sealer = RecordSealer::new(&node.group, &node.vault.index)?.with_leak_digests(&leak);
    let mut rng = rand_chacha::ChaCha12Rng::seed_from_u64(rand::random());
    let mut canaries = Vec::new();
    let mut records = Vec::new();
    for _ in 0..canaries_for(rows.len()) {
        let p = synthetic(&mut rng, node)?;
        let pid = sealer.person_id(&p.cnss)?;
        records.push(sealer.canary(&pid, &p)?);
        let at = rng.random_range(0..=rows.len());
        rows.insert(
            at,
            vec![
                p.cnss.clone(),
                p.cin.clone(),
                p.given.clone(),
                p.surname.clone(),
                p.birth_date.clone(),
            ],
        );
        canaries.push(pid);
    }
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(FIELDS)?;
    for r in &rows {
        w.write_record(r)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| e.into_error())
        .context("writing the export")?;
    let manifest = Manifest {
        id: id.into(),
        recipient: req.recipient.clone(),
        purpose: req.purpose.clone(),
        rows: rows.len(),
        canaries: canaries.clone(),
        time: now(),
        approvers: req.approvals.clone(),
        file_sha256: hex::encode(Sha256::digest(&bytes)),
    };
    let env = Sealer::new("identity", node.group.class("identity")?, node.group.epoch).seal(
        EXPORTS.as_str(),
        &format!("x-{id}"),
        &[("manifest", serde_json::to_vec(&manifest)?.as_slice())],
    )?;
    let mut index = Vec::new();
    for c in &canaries {
        index.push((
            CANARY_KIND.to_owned(),
            node.vault.index.reference(CANARY_KIND, c)?.0,
        ));
    }
    records.push(StoredRecord {
        table: EXPORTS.to_string(),
        record_id: format!("x-{id}"),
        version: 1,
        classes: vec![StoredClass {
            class: "identity".into(),
            epoch: env.epoch,
            r: env.r,
            envelope: env.to_bytes()?,
        }],
        index,
        digests: Vec::new(),
    });
    // Canaries and manifest in one transaction, before the file exists: a file whose
    // canaries the vault does not know would name nobody.
    node.vault.store.put_records(&records)?;
    ribat_identity::ca::write_file(out, &bytes, true)
        .with_context(|| format!("cannot write {}", out.display()))?;
    Ok(manifest)
}

/// The recipient of the export a canary was put in, opened through the quorum.
pub fn recipient_of_canary(node: &Embedded, person_id: &str) -> Result<Option<String>> {
    let tag = node.vault.index.reference(CANARY_KIND, person_id)?;
    let Some(x) = node
        .vault
        .store
        .lookup(CANARY_KIND, &tag.0)?
        .into_iter()
        .find(|r| r.table == EXPORTS.as_str())
    else {
        return Ok(None);
    };
    let read = node.vault.reader.read(&PartialRequest {
        set: None,
        epoch: None,
        request_id: format!("leak-attribution-{}", x.record_id),
        requester: Requester {
            identity: "leak-scan".into(),
            role: Role::SECURITY,
        },
        purpose: Purpose::LEAK_ATTRIBUTION,
        table: EXPORTS,
        class: Class::IDENTITY,
        record_ids: vec![x.record_id.clone()],
        token: None,
        asked: None,
    })?;
    let raw = read
        .records
        .first()
        .and_then(|(_, f)| f.get("manifest"))
        .context("the export manifest has no manifest field")?;
    let m: Manifest = serde_json::from_slice(raw).context("the export manifest is damaged")?;
    Ok(Some(format!("{} (export {})", m.recipient, m.id)))
}
