//! `ribat get` and `ribat find`: reads through the quorum of local custodians.

use crate::embedded::Embedded;
use anyhow::{Context, Result, bail};
use ribat_crypto::envelope::OpenedFields;
use ribat_custodian::{PartialRequest, Requester};
use ribat_import::records::{DECL_OF, DECLARATIONS, PERSONS};
use std::collections::BTreeMap;

/// Fields of a person and the class that holds each.
pub const PERSON_FIELDS: &[(&str, &str)] = &[
    ("cnss", "identity"),
    ("cin", "identity"),
    ("given", "identity"),
    ("surname", "identity"),
    ("name_ar", "identity"),
    ("birth_date", "identity"),
    ("city", "identity"),
    ("employer", "identity"),
    ("rib", "financial"),
];

/// Refuses unknown field names before any work is done.
pub fn check_fields(fields: &[String]) -> Result<()> {
    for f in fields {
        if !PERSON_FIELDS.iter().any(|(n, _)| n == f) {
            bail!(
                "unknown field `{f}`; known: {}",
                PERSON_FIELDS
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    Ok(())
}

/// Who reads, and why.
pub struct Reader {
    /// Requester.
    pub who: Requester,
    /// Institution of the requester, as the audit log records it.
    pub institution: String,
    /// Purpose.
    pub purpose: String,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Reads through the quorum; the plaintext comes back only once the access is durably in
/// the node's audit log (I2).
pub fn audited(
    node: &Embedded,
    r: &Reader,
    req: &PartialRequest,
    fields: &[&str],
    subject: Option<&str>,
) -> Result<ribat_custodian::QuorumRead> {
    Ok(ribat_gateway::read_audited(
        &node.reader,
        &node.audit,
        req,
        ribat_gateway::Access {
            institution: &r.institution,
            fields,
            time_ms: now_ms(),
            subject,
        },
    )?)
}

pub fn request(r: &Reader, table: &str, class: &str, ids: Vec<String>) -> PartialRequest {
    let nonce: u64 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    PartialRequest {
        request_id: format!("cli-{nonce:x}"),
        requester: r.who.clone(),
        purpose: r.purpose.clone(),
        table: table.into(),
        class: class.into(),
        record_ids: ids,
    }
}

fn value(f: &OpenedFields, name: &str) -> String {
    f.get(name)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default()
}

/// Reads the chosen fields of one person.
pub fn person(
    node: &Embedded,
    r: &Reader,
    record_id: &str,
    fields: &[String],
) -> Result<BTreeMap<String, String>> {
    let wanted: Vec<&str> = if fields.is_empty() {
        PERSON_FIELDS
            .iter()
            .filter(|(_, c)| *c == "identity")
            .map(|(f, _)| *f)
            .collect()
    } else {
        fields.iter().map(String::as_str).collect()
    };
    let mut by_class: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for f in &wanted {
        let class = PERSON_FIELDS
            .iter()
            .find(|(n, _)| n == f)
            .map(|(_, c)| *c)
            .with_context(|| {
                format!(
                    "unknown field `{f}`; known: {}",
                    PERSON_FIELDS
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
        by_class.entry(class).or_default().push(f);
    }
    let mut out = BTreeMap::new();
    for (class, names) in by_class {
        let read = audited(
            node,
            r,
            &request(r, PERSONS, class, vec![record_id.to_owned()]),
            &names,
            None,
        )?;
        let f = &read.records[0].1;
        for n in names {
            out.insert(n.to_owned(), value(f, n));
        }
    }
    Ok(out)
}

/// A person's declarations, oldest first: (period, days, real salary, capped salary).
pub fn history(node: &Embedded, r: &Reader, record_id: &str) -> Result<Vec<[String; 4]>> {
    let tag = node.index.reference(DECL_OF, record_id)?;
    let ids: Vec<String> = node
        .store
        .lookup(DECL_OF, &tag.0)?
        .into_iter()
        .map(|x| x.record_id)
        .collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let read = audited(
        node,
        r,
        &request(r, DECLARATIONS, "financial", ids),
        &["period", "days", "salary_real", "salary_capped"],
        Some(record_id),
    )?;
    let mut rows: Vec<[String; 4]> = read
        .records
        .iter()
        .map(|(_, f)| {
            [
                value(f, "period"),
                value(f, "days"),
                value(f, "salary_real"),
                value(f, "salary_capped"),
            ]
        })
        .collect();
    rows.sort();
    Ok(rows)
}

/// Persons carrying a blind-index tag.
fn persons_tagged(
    node: &Embedded,
    kind: &str,
    tag: ribat_crypto::blind_index::BlindTag,
) -> Result<Vec<String>> {
    Ok(node
        .store
        .lookup(kind, &tag.0)?
        .into_iter()
        .filter(|x| x.table == PERSONS)
        .map(|x| x.record_id)
        .collect())
}

/// Finds persons by CNSS number.
pub fn by_cnss(node: &Embedded, cnss: &str) -> Result<Vec<String>> {
    persons_tagged(node, "cnss", node.index.cnss(cnss).context("--cnss")?)
}

/// Finds persons by CIN.
pub fn by_cin(node: &Embedded, cin: &str) -> Result<Vec<String>> {
    persons_tagged(node, "cin", node.index.cin(cin).context("--cin")?)
}

/// Finds persons by name and birth date.
pub fn by_name(node: &Embedded, name: &str, birth: &str) -> Result<Vec<String>> {
    persons_tagged(
        node,
        "name-birth",
        node.index
            .name_birth(name, birth)
            .context("--name/--birth-date")?,
    )
}

/// Prints one person (and their history) as text or JSON.
pub fn print(
    record_id: &str,
    fields: &BTreeMap<String, String>,
    history: Option<&[[String; 4]]>,
    json: bool,
) -> Result<()> {
    if json {
        let mut v = serde_json::json!({ "record_id": record_id, "fields": fields });
        if let Some(h) = history {
            v["declarations"] = serde_json::json!(h
                .iter()
                .map(|[p, d, r, c]| serde_json::json!({"period": p, "days": d, "salary_real_centimes": r, "salary_capped_centimes": c}))
                .collect::<Vec<_>>());
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("{record_id}");
    for (k, v) in fields {
        println!("  {k:<11} {v}");
    }
    if let Some(h) = history {
        println!("  declarations:");
        if h.is_empty() {
            println!("    (none)");
        }
        for [p, d, r, c] in h {
            println!(
                "    {p}  {d:>2} days  real {}  capped {}",
                centimes(r),
                centimes(c)
            );
        }
    }
    Ok(())
}

fn centimes(s: &str) -> String {
    let c: u64 = s.parse().unwrap_or(0);
    format!("{}.{:02} MAD", c / 100, c % 100)
}

/// Exactly one match, or a clear error.
pub fn one(matches: Vec<String>, what: &str) -> Result<String> {
    match matches.len() {
        0 => bail!("no person with this {what} in the store"),
        1 => Ok(matches.into_iter().next().unwrap_or_default()),
        n => bail!("{n} persons share this {what}; the register has a duplicate to resolve"),
    }
}
