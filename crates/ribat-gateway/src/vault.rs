//! What a gateway reads, by what: persons by CNSS number, CIN or name and birth date
//! (blind indexes), a person's declarations, employers by affiliation number. Every read
//! goes through [`read_audited`] (I2); this module only decides which records and
//! classes a question needs and turns opened fields into values.

use crate::audit_first::{Access, AuditFirstError, read_audited};
use crate::node_log::NodeLog;
use ribat_crypto::CryptoError;
use ribat_crypto::blind_index::{BlindIndexer, BlindTag};
use ribat_crypto::envelope::OpenedFields;
use ribat_custodian::quorum::{QuorumRead, QuorumReader};
use ribat_custodian::request::Bearer;
use ribat_custodian::{PartialRequest, Requester};
use ribat_import::records::DECL_OF;
use ribat_policy::{Class, Purpose, Table};
use ribat_store::{Store, StoreError};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

// The layout of each table is the importer's: what it seals is what the gateway releases.
pub use ribat_import::records::{DECLARATION_FIELDS, EMPLOYER_FIELDS, PERSON_FIELDS};

/// Why a vault read returned nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// The read was refused, failed, or could not be audited.
    #[error(transparent)]
    Read(#[from] AuditFirstError),
    /// A field name is not known.
    #[error("unknown field `{field}`; known: {known}")]
    UnknownField {
        /// The name given.
        field: String,
        /// Known names.
        known: String,
    },
    /// A lookup value is malformed (a CNSS number that is not 9 digits…).
    #[error("{what}: {reason}")]
    BadValue {
        /// Which parameter.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Who reads, and why.
#[derive(Debug, Clone)]
pub struct Reader {
    /// Requester.
    pub who: Requester,
    /// Institution of the requester, as the audit log records it.
    pub institution: String,
    /// Purpose.
    pub purpose: Purpose,
    /// The end user's token, for custodians in other processes.
    pub token: Option<Bearer>,
    /// What the end user asked, as they signed it, for custodians in other processes.
    pub asked: Option<ribat_custodian::request::Asked>,
}

/// One declaration in a person's history.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Declaration {
    /// `AAAAMM`.
    pub period: String,
    /// Days worked.
    pub days: String,
    /// Real salary, centimes.
    pub salary_real_centimes: String,
    /// Capped salary, centimes.
    pub salary_capped_centimes: String,
}

/// The reading side of a node: the quorum, the audit log, the blind-index key, the store.
pub struct Vault {
    /// Reader over the custodians.
    pub reader: QuorumReader,
    /// The node's audit log.
    pub audit: NodeLog,
    /// The blind-index key.
    pub index: BlindIndexer,
    /// The store.
    pub store: Arc<dyn Store>,
    /// Request counter, for request ids.
    next: AtomicU64,
    /// Distinguishes this process's request ids from another's.
    boot: u64,
    /// Told of each audited request id.
    on_audited: std::sync::OnceLock<AuditedHook>,
}

/// What is told each audited request id.
/// What is told each request id the gateway accounted for, with the custodians whose
/// answers failed their proofs (index, why).
pub type AuditedHook = Box<dyn Fn(&str, &[(u32, String)]) + Send + Sync>;

fn now_ms() -> u64 {
    ribat_clock::now_ms()
}

fn value(f: &OpenedFields, name: &str) -> String {
    f.get(name)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default()
}

fn bad(what: &'static str) -> impl Fn(CryptoError) -> VaultError {
    move |e| VaultError::BadValue {
        what,
        reason: e.to_string(),
    }
}

/// The class of a person field.
pub fn person_field_class(field: &str) -> Result<&'static Class, VaultError> {
    PERSON_FIELDS
        .iter()
        .find(|(n, _)| *n == field)
        .map(|(_, c)| c)
        .ok_or_else(|| VaultError::UnknownField {
            field: field.to_owned(),
            known: PERSON_FIELDS
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

impl Vault {
    /// Assembles a vault.
    pub fn new(
        reader: QuorumReader,
        audit: NodeLog,
        index: BlindIndexer,
        store: Arc<dyn Store>,
    ) -> Self {
        Self {
            reader,
            audit,
            index,
            store,
            next: AtomicU64::new(0),
            boot: now_ms(),
            on_audited: std::sync::OnceLock::new(),
        }
    }

    /// A request for `class` of `ids` in `table`, under a fresh id.
    pub fn request(
        &self,
        r: &Reader,
        table: Table,
        class: &Class,
        ids: Vec<String>,
    ) -> PartialRequest {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        PartialRequest {
            set: None,
            epoch: None,
            request_id: format!("{}-{:x}-{n}", self.audit.node(), self.boot),
            requester: r.who.clone(),
            purpose: r.purpose.clone(),
            table,
            class: class.clone(),
            record_ids: ids,
            token: r.token.clone(),
            asked: r.asked.clone(),
        }
    }

    /// Reads through the quorum; the plaintext comes back only once the access is
    /// durably in the audit log (I2).
    pub fn audited(
        &self,
        r: &Reader,
        req: &PartialRequest,
        fields: &[&str],
        subject: Option<&str>,
    ) -> Result<QuorumRead, VaultError> {
        let read = read_audited(
            &self.reader,
            &self.audit,
            req,
            Access {
                institution: &r.institution,
                fields,
                time_ms: now_ms(),
                subject,
            },
        );
        if let Some(f) = self.on_audited.get() {
            // Custodians whose answers failed their proofs, named by the quorum.
            let faults = match &read {
                Ok(r) => r.faults.as_slice(),
                Err(AuditFirstError::Quorum(
                    ribat_custodian::QuorumError::Refused { faults, .. }
                    | ribat_custodian::QuorumError::NotEnoughCustodians { faults, .. },
                )) => faults.as_slice(),
                Err(_) => &[],
            };
            let liars: Vec<(u32, String)> = faults
                .iter()
                .filter_map(|f| match &f.fault {
                    ribat_custodian::Fault::BadAnswer(e) => Some((f.custodian, e.to_string())),
                    _ => None,
                })
                .collect();
            f(&req.request_id, &liars);
        }
        Ok(read?)
    }

    /// Sets what is told each request id this gateway has accounted for: released after
    /// its audit entry was durable, or refused or failed (logged best effort, nothing
    /// released). The watch and the networked custodians compare these with what
    /// custodians answered: an answer nobody accounts for was asked by someone else with
    /// this gateway's certificate. Once; a second hook is ignored.
    pub fn on_audited(&self, f: AuditedHook) {
        let _ = self.on_audited.set(f);
    }

    /// Reads the chosen fields of one person (the identity fields when none are named).
    pub fn person(
        &self,
        r: &Reader,
        record_id: &str,
        fields: &[&str],
    ) -> Result<BTreeMap<String, String>, VaultError> {
        let wanted: Vec<&str> = if fields.is_empty() {
            PERSON_FIELDS
                .iter()
                .filter(|(_, c)| *c == Class::IDENTITY)
                .map(|(f, _)| *f)
                .collect()
        } else {
            fields.to_vec()
        };
        let mut by_class: BTreeMap<&Class, Vec<&str>> = BTreeMap::new();
        for f in &wanted {
            by_class.entry(person_field_class(f)?).or_default().push(f);
        }
        let mut out = BTreeMap::new();
        for (class, names) in by_class {
            let req = self.request(r, Table::Persons, class, vec![record_id.to_owned()]);
            let read = self.audited(r, &req, &names, None)?;
            if let Some((_, f)) = read.records.first() {
                for n in names {
                    out.insert(n.to_owned(), value(f, n));
                }
            }
        }
        Ok(out)
    }

    /// A person's declarations, oldest first.
    pub fn history(&self, r: &Reader, record_id: &str) -> Result<Vec<Declaration>, VaultError> {
        let tag = self
            .index
            .reference(DECL_OF, record_id)
            .map_err(bad("record id"))?;
        let ids: Vec<String> = self
            .store
            .lookup(DECL_OF, &tag.0)?
            .into_iter()
            .map(|x| x.record_id)
            .collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let req = self.request(r, Table::Declarations, &Class::FINANCIAL, ids);
        let read = self.audited(r, &req, DECLARATION_FIELDS, Some(record_id))?;
        let mut rows: Vec<Declaration> = read
            .records
            .iter()
            .map(|(_, f)| Declaration {
                period: value(f, "period"),
                days: value(f, "days"),
                salary_real_centimes: value(f, "salary_real"),
                salary_capped_centimes: value(f, "salary_capped"),
            })
            .collect();
        rows.sort_by(|a, b| a.period.cmp(&b.period));
        Ok(rows)
    }

    /// Reads the chosen fields of one employer (all when none are named).
    pub fn employer(
        &self,
        r: &Reader,
        record_id: &str,
        fields: &[&str],
    ) -> Result<BTreeMap<String, String>, VaultError> {
        let names: Vec<&str> = if fields.is_empty() {
            EMPLOYER_FIELDS.to_vec()
        } else {
            for f in fields {
                if !EMPLOYER_FIELDS.contains(f) {
                    return Err(VaultError::UnknownField {
                        field: (*f).to_owned(),
                        known: EMPLOYER_FIELDS.join(", "),
                    });
                }
            }
            fields.to_vec()
        };
        let req = self.request(
            r,
            Table::Employers,
            &Class::IDENTITY,
            vec![record_id.to_owned()],
        );
        let read = self.audited(r, &req, &names, None)?;
        Ok(read
            .records
            .first()
            .map(|(_, f)| {
                names
                    .iter()
                    .map(|n| ((*n).to_owned(), value(f, n)))
                    .collect()
            })
            .unwrap_or_default())
    }

    fn tagged(&self, table: &str, kind: &str, tag: BlindTag) -> Result<Vec<String>, VaultError> {
        Ok(self
            .store
            .lookup(kind, &tag.0)?
            .into_iter()
            .filter(|x| x.table == table)
            .map(|x| x.record_id)
            .collect())
    }

    /// Persons with this CNSS number.
    pub fn by_cnss(&self, cnss: &str) -> Result<Vec<String>, VaultError> {
        let tag = self.index.cnss(cnss).map_err(bad("CNSS number"))?;
        self.tagged(Table::Persons.as_str(), "cnss", tag)
    }

    /// Persons with this CIN.
    pub fn by_cin(&self, cin: &str) -> Result<Vec<String>, VaultError> {
        let tag = self.index.cin(cin).map_err(bad("CIN"))?;
        self.tagged(Table::Persons.as_str(), "cin", tag)
    }

    /// Persons with this name and birth date.
    pub fn by_name(&self, name: &str, birth: &str) -> Result<Vec<String>, VaultError> {
        let tag = self
            .index
            .name_birth(name, birth)
            .map_err(bad("name and birth date"))?;
        self.tagged(Table::Persons.as_str(), "name-birth", tag)
    }

    /// Employers with this affiliation number.
    pub fn by_affiliation(&self, affiliation: &str) -> Result<Vec<String>, VaultError> {
        let tag = self
            .index
            .affiliation(affiliation)
            .map_err(bad("affiliation number"))?;
        self.tagged(Table::Employers.as_str(), "affiliation", tag)
    }
}
