//! `ribat get` and `ribat find`: reads through the quorum of local custodians.

use crate::bail;
use crate::embedded::Embedded;
use crate::error::{Context, Result};
use std::collections::BTreeMap;

pub use ribat_gateway::vault::{Declaration, PERSON_FIELDS, Reader};

/// Refuses unknown field names before any work is done.
pub fn check_fields(fields: &[String]) -> Result<()> {
    for f in fields {
        ribat_gateway::vault::person_field_class(f)?;
    }
    Ok(())
}

/// Reads the chosen fields of one person (the identity fields when none are named).
pub fn person(
    node: &Embedded,
    r: &Reader,
    record_id: &str,
    fields: &[String],
) -> Result<BTreeMap<String, String>> {
    let names: Vec<&str> = fields.iter().map(String::as_str).collect();
    Ok(node.vault.person(r, record_id, &names)?)
}

/// A person's declarations, oldest first.
pub fn history(node: &Embedded, r: &Reader, record_id: &str) -> Result<Vec<Declaration>> {
    Ok(node.vault.history(r, record_id)?)
}

/// Finds persons by CNSS number.
pub fn by_cnss(node: &Embedded, cnss: &str) -> Result<Vec<String>> {
    node.vault.by_cnss(cnss).context("--cnss")
}

/// Finds persons by CIN.
pub fn by_cin(node: &Embedded, cin: &str) -> Result<Vec<String>> {
    node.vault.by_cin(cin).context("--cin")
}

/// Finds persons by name and birth date.
pub fn by_name(node: &Embedded, name: &str, birth: &str) -> Result<Vec<String>> {
    node.vault
        .by_name(name, birth)
        .context("--name/--birth-date")
}

/// Prints one person (and their history) as text or JSON.
pub fn print(
    record_id: &str,
    fields: &BTreeMap<String, String>,
    history: Option<&[Declaration]>,
    json: bool,
) -> Result<()> {
    if json {
        let mut v = serde_json::json!({ "record_id": record_id, "fields": fields });
        if let Some(h) = history {
            v["declarations"] = serde_json::json!(h);
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
        for d in h {
            println!(
                "    {}  {:>2} days  real {}  capped {}",
                d.period,
                d.days,
                centimes(&d.salary_real_centimes),
                centimes(&d.salary_capped_centimes)
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
