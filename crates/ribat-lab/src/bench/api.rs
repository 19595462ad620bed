//! `ribat bench api`: single-person reads over mTLS from a running embedded node (2 of 3
//! custodians, audit before plaintext), against the same reads from PostgreSQL with the
//! fields encrypted by pgcrypto (`pgp_sym_encrypt`, the key in the query, as a DBA would
//! do it), with the same number of concurrent clients, measured in the same run.

use crate::bench::node::{embedded_gateway, fresh_dir, generated_fund};
use crate::bench::reads::{Latencies, percentile, time_reads};
use ribat_node::bail;

type Result<T, E = super::BenchError> = std::result::Result<T, E>;
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the benchmark is asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// Persons in the generated fund.
    pub persons: usize,
    /// Reads to time (each side).
    pub requests: usize,
    /// Concurrent clients (each its own connection).
    pub clients: usize,
    /// PostgreSQL connection string for the pgcrypto baseline.
    pub pg: String,
    /// Print one JSON object.
    pub json: bool,
}

#[derive(Serialize)]
struct Report {
    persons: usize,
    requests: usize,
    clients: usize,
    reads_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: usize,
    pgcrypto_reads_per_s: f64,
    pgcrypto_p50_ms: f64,
    pgcrypto_p99_ms: f64,
    ratio: f64,
}

/// Runs the bench: the pgcrypto baseline first, then the same reads through the gateway.
pub fn run(home: &crate::home::Home, o: &Options) -> Result<()> {
    let say = |m: &str| {
        if !o.json {
            eprintln!("{m}");
        }
    };
    if o.clients == 0 || o.requests == 0 || o.persons == 0 {
        bail!("--persons, --requests and --clients must be at least 1");
    }
    // The baseline first: if PostgreSQL is not there, nothing else is worth doing.
    let mut pg = postgres::Client::connect(&o.pg, postgres::NoTls).map_err(|e| {
        ribat_node::err!(
            "cannot connect to PostgreSQL for the pgcrypto baseline (--pg or RIBAT_TEST_PG): {e}"
        )
    })?;
    let dir = fresh_dir(home, "bench-api")?;
    say(&format!("generating {} persons…", o.persons));
    let (fund, cnss) = generated_fund(&dir, o.persons)?;
    say("key ceremony, sealed import, starting the gateway (ribat serve)…");
    let (gw, client_dir) = embedded_gateway(&dir)?;
    let addr = gw.addr.clone();

    let cfg = crate::api_client::config_in(&client_dir)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    say(&format!(
        "timing {} reads over mTLS with {} clients (after a warm-up)…",
        o.requests, o.clients
    ));
    let Latencies {
        seconds: secs,
        ms: lat,
        errors,
    } = time_reads(&rt, &cfg, &addr, &cnss, o.requests, o.clients)?;
    drop(gw);

    say("pgcrypto baseline: loading the same persons encrypted with pgp_sym_encrypt…");
    let pg_key = crate::bench::node::random_hex()?;
    load_pgcrypto(&mut pg, &fund, pg_key.as_str())?;
    drop(pg);
    say(&format!(
        "timing {} reads from PostgreSQL + pgcrypto with {} clients…",
        o.requests, o.clients
    ));
    let (pg_secs, pg_lat) = pgcrypto_reads(&o.pg, &cnss, o.requests, o.clients, pg_key.as_str())?;

    let report = Report {
        persons: o.persons,
        requests: lat.len(),
        clients: o.clients,
        reads_per_s: lat.len() as f64 / secs,
        p50_ms: percentile(&lat, 0.50),
        p99_ms: percentile(&lat, 0.99),
        errors,
        pgcrypto_reads_per_s: pg_lat.len() as f64 / pg_secs,
        pgcrypto_p50_ms: percentile(&pg_lat, 0.50),
        pgcrypto_p99_ms: percentile(&pg_lat, 0.99),
        ratio: (lat.len() as f64 / secs) / (pg_lat.len() as f64 / pg_secs),
    };
    if o.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "ribat (mTLS, 2 of 3 custodians, audited): {:.0} reads/s, p50 {:.2} ms, p99 {:.2} ms, {} errors",
            report.reads_per_s, report.p50_ms, report.p99_ms, report.errors
        );
        println!(
            "PostgreSQL + pgcrypto:                  {:.0} reads/s, p50 {:.2} ms, p99 {:.2} ms",
            report.pgcrypto_reads_per_s, report.pgcrypto_p50_ms, report.pgcrypto_p99_ms
        );
        println!("ratio (ribat / pgcrypto): {:.2}", report.ratio);
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

const PG_FIELDS: &[&str] = &[
    "cin",
    "given",
    "surname",
    "name_ar",
    "birth_date",
    "city",
    "employer",
];

fn load_pgcrypto(pg: &mut postgres::Client, fund: &ribat_sim::Fund, key: &str) -> Result<()> {
    pg.batch_execute(
        "CREATE EXTENSION IF NOT EXISTS pgcrypto;
         DROP SCHEMA IF EXISTS ribat_bench_pgcrypto CASCADE;
         CREATE SCHEMA ribat_bench_pgcrypto;
         CREATE TABLE ribat_bench_pgcrypto.persons (cnss text PRIMARY KEY, cin bytea, given bytea,
           surname bytea, name_ar bytea, birth_date bytea, city bytea, employer bytea);",
    )?;
    let insert = pg.prepare(
        "INSERT INTO ribat_bench_pgcrypto.persons SELECT c, pgp_sym_encrypt(a, $9), pgp_sym_encrypt(b, $9),
           pgp_sym_encrypt(s, $9), pgp_sym_encrypt(ar, $9), pgp_sym_encrypt(d, $9), pgp_sym_encrypt(ci, $9),
           pgp_sym_encrypt(e, $9)
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
           AS t(c, a, b, s, ar, d, ci, e)",
    )?;
    for chunk in fund.persons.chunks(2_000) {
        let col = |f: &dyn Fn(&ribat_sim::fund::Person) -> String| {
            chunk.iter().map(f).collect::<Vec<_>>()
        };
        pg.execute(
            &insert,
            &[
                &col(&|p| p.cnss.clone()),
                &col(&|p| p.cin.clone()),
                &col(&|p| p.given.clone()),
                &col(&|p| p.surname.clone()),
                &col(&|p| p.name_arabic.clone()),
                &col(&|p| p.birth_date.clone()),
                &col(&|p| p.city.clone()),
                &col(&|p| {
                    fund.employers
                        .get(p.employer)
                        .map_or_else(String::new, |e| e.affiliation.clone())
                }),
                &key,
            ],
        )?;
    }
    Ok(())
}

fn pgcrypto_reads(
    conninfo: &str,
    cnss: &Arc<Vec<String>>,
    requests: usize,
    clients: usize,
    key: &str,
) -> Result<(f64, Vec<f64>)> {
    let per = requests.div_ceil(clients);
    let sql = format!(
        "SELECT {} FROM ribat_bench_pgcrypto.persons WHERE cnss = $1",
        PG_FIELDS
            .iter()
            .map(|f| format!("pgp_sym_decrypt({f}, $2)"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let barrier = Arc::new(std::sync::Barrier::new(clients));
    let start = Arc::new(std::sync::OnceLock::<Instant>::new());
    let handles: Vec<_> = (0..clients)
        .map(|w| {
            let (conninfo, sql, cnss, key, barrier, start) = (
                conninfo.to_owned(),
                sql.clone(),
                cnss.clone(),
                key.to_owned(),
                barrier.clone(),
                start.clone(),
            );
            std::thread::spawn(move || -> Result<Vec<f64>> {
                let mut c = postgres::Client::connect(&conninfo, postgres::NoTls)?;
                let stmt = c.prepare(&sql)?;
                // Warm the connection the same way the API side was warmed.
                for k in 0..20 {
                    c.query(&stmt, &[&cnss[(w * 20 + k) % cnss.len()], &key])?;
                }
                barrier.wait();
                start.get_or_init(Instant::now);
                let mut lat = Vec::with_capacity(per);
                for k in 0..per {
                    let t = Instant::now();
                    let rows = c.query(&stmt, &[&cnss[(w * per + k) % cnss.len()], &key])?;
                    lat.push(t.elapsed().as_secs_f64() * 1e3);
                    ribat_node::ensure!(rows.len() == 1, "pgcrypto baseline: person not found");
                }
                Ok(lat)
            })
        })
        .collect();
    let mut all = Vec::new();
    for h in handles {
        all.extend(
            h.join()
                .map_err(|_| ribat_node::err!("a baseline client panicked"))??,
        );
    }
    let secs = start
        .get()
        .map_or(Duration::ZERO, Instant::elapsed)
        .as_secs_f64();
    all.sort_by(f64::total_cmp);
    Ok((secs, all))
}
