//! `ribat bench rotate`: a class-key rotation of a generated fund, its re-sealing job timed
//! while readers keep reading persons, beside the same readers on the same node before the
//! rotation (the baseline, measured in the same run). The job is killed with SIGKILL
//! halfway (it runs as `ribat keys rotate` in a process of its own) and resumed; every
//! person is read back halfway and after.

use crate::embedded::Embedded;
use crate::home::Home;
use crate::passphrases::Source;
use ribat_crypto::passphrase::KdfParams;
use ribat_custodian::Requester;
use ribat_gateway::vault::Reader;
use ribat_import::records::RecordSealer;
use ribat_node::bail;
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

type Result<T, E = super::BenchError> = std::result::Result<T, E>;

/// Readers reading while the job runs (the machine has two cores: one for the job, the
/// readers and the custodians they call share the rest).
const READERS: usize = 2;
/// How long the baseline readers read.
const BASELINE: Duration = Duration::from_secs(15);

/// Reads and their latencies over a span.
#[derive(Debug, Clone, Serialize)]
pub struct ReadFigures {
    /// Reads answered.
    pub reads: usize,
    /// Reads that failed (a rotation must cause none).
    pub errors: usize,
    /// Reads per second.
    pub per_s: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
}

/// The report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Persons of the fund.
    pub persons: usize,
    /// Sealed classes in the store (every class of every record).
    pub total: u64,
    /// Re-sealed by `ribat keys rotate` before it was killed.
    pub resealed_before_kill: u64,
    /// Its time, from its start (the new keys included) to the kill.
    pub first_seconds: f64,
    /// Its rate.
    pub first_per_s: f64,
    /// Re-sealed by the resumed job.
    pub resealed: u64,
    /// The resumed job's time, finish included.
    pub job_seconds: f64,
    /// Its rate, with the readers reading.
    pub job_per_s: f64,
    /// Readers' figures before the rotation.
    pub reads_before: ReadFigures,
    /// Readers' figures while the resumed job ran.
    pub reads_during: ReadFigures,
    /// p99 during over p99 before.
    pub p99_ratio: f64,
    /// Persons' sealed classes read back in the half-rotated store.
    pub read_halfway: usize,
    /// Seconds.
    pub read_halfway_seconds: f64,
    /// Persons' sealed classes read back after the rotation.
    pub read_after: usize,
    /// Seconds.
    pub read_after_seconds: f64,
}

fn reader() -> Reader {
    Reader {
        who: Requester {
            identity: "batch.pension-run".into(),
            role: ribat_policy::Role::constant("pension-batch"),
        },
        institution: "cnss.pensions".into(),
        purpose: ribat_policy::Purpose::constant("pension-run"),
        token: None,
        asked: None,
    }
}

/// `READERS` threads reading persons' identity until `stop`; figures over the span.
fn read_until(node: &Embedded, ids: &[String], stop: &AtomicBool) -> ReadFigures {
    let started = Instant::now();
    let per_thread: Vec<(Vec<f64>, usize)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..READERS)
            .map(|w| {
                s.spawn(move || {
                    let r = reader();
                    let (mut ms, mut errors) = (Vec::new(), 0);
                    let mut k = w * 7919;
                    while !stop.load(Ordering::Relaxed) {
                        let id = &ids[k % ids.len()];
                        k += READERS * 104_729;
                        let t = Instant::now();
                        match node.vault.person(&r, id, &["cnss", "cin", "surname"]) {
                            Ok(_) => ms.push(t.elapsed().as_secs_f64() * 1e3),
                            Err(_) => errors += 1,
                        }
                    }
                    (ms, errors)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let seconds = started.elapsed().as_secs_f64();
    let errors = per_thread.iter().map(|(_, e)| e).sum();
    let mut ms: Vec<f64> = per_thread.into_iter().flat_map(|(m, _)| m).collect();
    ms.sort_by(f64::total_cmp);
    ReadFigures {
        reads: ms.len(),
        errors,
        per_s: ms.len() as f64 / seconds.max(1e-9),
        p50_ms: super::reads::percentile(&ms, 0.50),
        p99_ms: super::reads::percentile(&ms, 0.99),
    }
}

fn open(home: &Home, source: &Source) -> Result<Embedded> {
    Ok(Embedded::open(home, source)?)
}

/// Every person's identity and financial class read through the quorum, in batches as a
/// pension run reads; how many were read.
fn read_every_person(node: &Embedded, ids: &[String], what: &str) -> Result<usize> {
    let mut read = 0;
    for class in ["identity", "financial"] {
        for (n, chunk) in ids.chunks(5_000).enumerate() {
            let req = ribat_custodian::PartialRequest {
                request_id: format!("bench-rotate-{what}-{class}-{n}"),
                requester: reader().who,
                purpose: ribat_policy::Purpose::constant("pension-run"),
                table: ribat_policy::Table::Persons,
                class: ribat_policy::Class::constant(class),
                record_ids: chunk.to_vec(),
                set: None,
                epoch: None,
                token: None,
                asked: None,
            };
            let r = node
                .vault
                .reader
                .read(&req)
                .map_err(ribat_node::NodeError::from)?;
            read += r.records.len();
        }
    }
    if read != 2 * ids.len() {
        bail!(
            "{what}: {read} of {} sealed classes of persons read back",
            2 * ids.len()
        );
    }
    Ok(read)
}

/// Runs the benchmark: the job starts as `ribat keys rotate` in a process of its own, is
/// killed with SIGKILL halfway, every person is read in the half-rotated store, the job
/// resumes in this process while readers read, and every person is read again after.
pub fn run(home: &Home, persons: usize, batch: usize, json: bool) -> Result<()> {
    let say = |m: &str| {
        if !json {
            println!("{m}");
        }
    };
    let dir = super::node::fresh_dir(home, "bench-rotate")?;
    say(&format!("generating and importing {persons} persons…"));
    let (fund, _) = super::node::generated_fund(&dir, persons)?;
    let (node_home, source) = super::node::keyed_node(&dir)?;
    let Source::Dir(pass_dir) = &source else {
        bail!("the bench node's passphrases are not in files");
    };
    let node = open(&node_home, &source)?;
    super::node::import_fund(
        &node,
        &[
            dir.join("source/employers.csv"),
            dir.join("source/persons.csv"),
            dir.join("source/ebds"),
        ],
    )?;
    let sealer = RecordSealer::new(&node.group, &node.vault.index)?;
    let ids: Vec<String> = fund
        .persons
        .iter()
        .filter(|p| !p.honey)
        .map(|p| sealer.person_id(&p.cnss))
        .collect::<std::result::Result<_, _>>()?;
    drop(fund);

    say(&format!(
        "baseline: {READERS} readers for {} s before the rotation…",
        BASELINE.as_secs()
    ));
    let stop = AtomicBool::new(false);
    let reads_before = std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(BASELINE);
            stop.store(true, Ordering::Relaxed);
        });
        read_until(&node, &ids, &stop)
    });
    let store = node.vault.store.clone();
    let count = |epoch: u32| -> Result<u64> {
        Ok(store
            .count_sealed_under(epoch)
            .map_err(ribat_node::NodeError::from)?)
    };
    let total = count(1)?;
    drop(node);

    say("`ribat keys rotate` in its own process, killed with SIGKILL halfway…");
    let t = Instant::now();
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .arg("--home")
        .arg(node_home.root())
        .args([
            "keys",
            "rotate",
            "--batch",
            &batch.to_string(),
            "--passphrases",
        ])
        .arg(format!("dir:{}", pass_dir.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let at_kill = loop {
        if let Some(status) = child.try_wait()? {
            bail!("the rotation ended ({status}) before it could be killed halfway");
        }
        let moved = count(2)?;
        if moved * 2 >= total {
            child.kill()?;
            child.wait()?;
            break count(2)?;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let first_seconds = t.elapsed().as_secs_f64();

    say("every person read in the half-rotated store…");
    let node = Arc::new(open(&node_home, &source)?);
    let t = Instant::now();
    let read_halfway = read_every_person(&node, &ids, "halfway")?;
    let read_halfway_seconds = t.elapsed().as_secs_f64();

    say("the job resumed in this process, with the readers reading…");
    let kdf = KdfParams::default();
    let stop = AtomicBool::new(false);
    let (job, reads_during) = std::thread::scope(|s| {
        let job = s.spawn(|| {
            let t = Instant::now();
            let r = ribat_node::rotate::reseal(&node_home, &node, &source, kdf, batch, &mut |_| {});
            stop.store(true, Ordering::Relaxed);
            r.map(|r| (r, t.elapsed().as_secs_f64()))
        });
        let reads = read_until(&node, &ids, &stop);
        (job.join(), reads)
    });
    let (job, job_seconds) = match job {
        Ok(r) => r?,
        Err(_) => bail!("the re-sealing job panicked"),
    };
    if count(1)? != 0 {
        bail!("sealed classes are left under epoch 1 after the job");
    }
    let t = Instant::now();
    let read_after = read_every_person(&node, &ids, "after")?;
    let read_after_seconds = t.elapsed().as_secs_f64();
    if reads_during.errors > 0 || reads_before.errors > 0 {
        bail!(
            "{} reads failed before and {} during the rotation; a rotation must not fail reads",
            reads_before.errors,
            reads_during.errors
        );
    }
    let report = Report {
        persons,
        total,
        resealed_before_kill: at_kill,
        first_seconds,
        first_per_s: at_kill as f64 / first_seconds.max(1e-9),
        resealed: job.resealed,
        job_seconds,
        job_per_s: job.resealed as f64 / job_seconds.max(1e-9),
        p99_ratio: reads_during.p99_ms / reads_before.p99_ms.max(1e-9),
        reads_before,
        reads_during,
        read_halfway,
        read_halfway_seconds,
        read_after,
        read_after_seconds,
    };
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "rotation of {} persons ({} sealed classes): {} re-sealed by `ribat keys rotate` (new keys included) in {:.1} s ({:.0}/s) before SIGKILL",
            report.persons,
            report.total,
            report.resealed_before_kill,
            report.first_seconds,
            report.first_per_s
        );
        println!(
            "halfway: every person's two classes read back ({} in {:.1} s)",
            report.read_halfway, report.read_halfway_seconds
        );
        println!(
            "resumed: {} re-sealed in {:.1} s ({:.0}/s) with the readers reading, then the previous epoch's shares erased",
            report.resealed, report.job_seconds, report.job_per_s
        );
        for (what, f) in [
            ("before (baseline)", &report.reads_before),
            ("during the job", &report.reads_during),
        ] {
            println!(
                "reads {what}: {} reads, {:.0}/s, p50 {:.1} ms, p99 {:.1} ms, {} failed",
                f.reads, f.per_s, f.p50_ms, f.p99_ms, f.errors
            );
        }
        println!("p99 during / before: {:.2}", report.p99_ratio);
        println!(
            "after: every person's two classes read back with the new shares only ({} in {:.1} s)",
            report.read_after, report.read_after_seconds
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
