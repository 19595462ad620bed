//! Ribat's laboratory: what shows, attacks and measures a node without being part of one.
//! The demo's story (`demo`), the simulator (`simulate`: legitimate workload, attack
//! scenarios and their scoring on a simulated clock), the leak generator's labelled dumps
//! (`sim_leak`) and the benchmarks with their baselines (`bench`: plain AES, raw fsync,
//! plaintext SQLite, PostgreSQL with pgcrypto).
//!
//! Must never: be linked into a node's read path, or report a figure without the baseline
//! it was measured against in the same run.
#![forbid(unsafe_code)]

pub mod bench;
pub mod demo;
mod mesh_story;
pub mod sim_leak;
pub mod simulate;

// The node's modules, under the names the lab's code has always used for them.
use ribat_node::{
    api_client, ceremony, embedded, exports, home, identity, import, leak, passphrases, read, serve,
};

/// Prints what `ribat sim generate` wrote.
pub fn describe_fund(fund: &ribat_sim::Fund, out: &std::path::Path) {
    println!(
        "wrote {} persons, {} employers, {} declaration lines in {} e-BDS files under {}",
        fund.persons.len(),
        fund.employers.len(),
        fund.declarations.len(),
        fund.periods().len() * fund.employers.len(),
        out.display()
    );
}
