//! `ribat bench crypto`: what the vault's cryptography costs, against a baseline measured
//! in the same run (the same fields under plain AES-256-GCM-SIV with a fixed key, which is
//! what a database with application-level encryption and one key would pay).
//!
//! Scalar multiplications per read of one record with `t` custodians:
//! - each custodian: `k·R` (1 variable-base), the composite `M = d·R` (1), `Z = k·M` (1),
//!   `t3 = r·M` (1) and `t2 = r·G` (1 fixed-base): 4 variable-base + 1 fixed-base;
//! - the reader, per custodian: `M` and `Z` (2 single-term multiscalar), `t2 = s·G + c·Y_i`
//!   and `t3 = s·M + c·Z` (2 double-base); then `t` variable-base for the combination.
//!
//! A batch of `m` records costs each custodian `m + 1` variable-base multiplications plus
//! one `m`-term multiscalar, and the reader two `m`-term multiscalars per custodian: the
//! proof is amortised, the `k·R_j` and `λ_i·P_ij` are not.
//! Sealing costs 2 fixed-base multiplications per record and class (`r·G`, and `r·Y_c` on
//! a table precomputed for `Y_c`).

use ribat_crypto::combine::{answer, combine, verify_partial};
use ribat_crypto::dleq::Dleq;
use ribat_crypto::envelope::{Envelope, Sealer};
use ribat_crypto::group::GroupPublic;
use ribat_crypto::shamir::deal;
use ribat_node::Result;
use serde::Serialize;
use std::time::Instant;

#[derive(Serialize)]
struct Figure {
    name: &'static str,
    iterations: usize,
    micros_per_op: f64,
    ops_per_s: f64,
}

#[derive(Serialize)]
struct Report {
    cpu_threads: usize,
    batch: usize,
    figures: Vec<Figure>,
    baseline_aead_micros_per_record: f64,
    seal_vs_baseline_ratio: f64,
    single_read_micros: f64,
    batch_read_micros_per_record: f64,
}

fn time<T>(
    name: &'static str,
    iterations: usize,
    mut f: impl FnMut() -> Result<T>,
) -> Result<Figure> {
    // One warm-up call, then the measured loop.
    std::hint::black_box(f()?);
    let t0 = Instant::now();
    for _ in 0..iterations {
        std::hint::black_box(f()?);
    }
    let secs = t0.elapsed().as_secs_f64();
    let per = secs / iterations as f64;
    Ok(Figure {
        name,
        iterations,
        micros_per_op: per * 1e6,
        ops_per_s: 1.0 / per,
    })
}

/// Runs the crypto benchmark.
pub fn run(batch: usize, json: bool) -> Result<()> {
    use aes_gcm_siv::aead::{Aead, KeyInit, Payload};
    let dealings = vec![deal("identity", 2, 3)?];
    let group = GroupPublic::from_dealings(2, 3, 1, &dealings)?;
    let keys = group.class("identity")?;
    let sealer = Sealer::new("identity", keys, 1);
    let fields: [(&str, &[u8]); 2] = [("name", b"KHADIJA EL FASSI"), ("cin", b"BE123456")];
    let dleq = Dleq::ribat();
    let shares = &dealings[0].shares;
    let n = 2000;

    let seal = time("seal one record (1 class, 2 fields)", n, || {
        Ok(sealer.seal("persons", "p-00000001", &fields)?)
    })?;
    let key = aes_gcm_siv::Aes256GcmSiv::new(&[7u8; 32].into());
    let base = time(
        "baseline: same 2 fields, AES-256-GCM-SIV, one fixed key",
        n * 10,
        || {
            for (i, (_, v)) in fields.iter().enumerate() {
                let nonce = [i as u8; 12];
                key.encrypt(
                    &nonce.into(),
                    Payload {
                        msg: v,
                        aad: b"persons/p-00000001",
                    },
                )
                .map_err(|_| ribat_node::err!("baseline encryption failed"))?;
            }
            Ok(())
        },
    )?;

    let env = sealer.seal("persons", "p-1", &fields)?;
    let r = [env.r_point()?];
    let p1 = answer(&dleq, &shares[0], &r)?;
    let p2 = answer(&dleq, &shares[1], &r)?;
    let (y1, y2) = (
        group.public_share("identity", 1)?,
        group.public_share("identity", 2)?,
    );
    let partial = time("partial decryption + DLEQ proof (1 record)", n, || {
        Ok(answer(&dleq, &shares[0], &r)?)
    })?;
    let verify = time("proof verification (1 record)", n, || {
        Ok(verify_partial(&dleq, "identity", y1, &r, &p1)?)
    })?;
    let v1 = verify_partial(&dleq, "identity", y1, &r, &p1)?;
    let v2 = verify_partial(&dleq, "identity", y2, &r, &p2)?;
    let comb = time("combination of 2 partials (1 record)", n, || {
        Ok(combine("identity", 2, &[v1.clone(), v2.clone()])?)
    })?;
    let s = combine("identity", 2, &[v1.clone(), v2.clone()])?;
    let open = time("open: derive DEK, decrypt 2 fields", n, || {
        Ok(env.open("persons", "p-1", "identity", keys, 1, &s[0])?)
    })?;

    let envs: Vec<Envelope> = (0..batch)
        .map(|i| sealer.seal("persons", &format!("p-{i}"), &fields))
        .collect::<Result<_, _>>()?;
    let rs: Vec<_> = envs
        .iter()
        .map(Envelope::r_point)
        .collect::<Result<_, _>>()?;
    let reps = 5;
    let b_answer = time(
        "batch: one custodian answers 1,000 records, one proof",
        reps,
        || Ok(answer(&dleq, &shares[0], &rs)?),
    )?;
    let bp1 = answer(&dleq, &shares[0], &rs)?;
    let bp2 = answer(&dleq, &shares[1], &rs)?;
    let b_verify = time("batch: verify one composite proof over 1,000", reps, || {
        Ok(verify_partial(&dleq, "identity", y1, &rs, &bp1)?)
    })?;
    let bv1 = verify_partial(&dleq, "identity", y1, &rs, &bp1)?;
    let bv2 = verify_partial(&dleq, "identity", y2, &rs, &bp2)?;
    let b_comb = time("batch: combine 2 x 1,000 partials", reps, || {
        Ok(combine("identity", 2, &[bv1.clone(), bv2.clone()])?)
    })?;
    let bs = combine("identity", 2, &[bv1.clone(), bv2.clone()])?;
    let b_open = time("batch: open 1,000 records", reps, || {
        for (i, (e, s)) in envs.iter().zip(&bs).enumerate() {
            e.open("persons", &format!("p-{i}"), "identity", keys, 1, s)?;
        }
        Ok(())
    })?;

    // A read with t = 2: two answers (in parallel across custodians in a mesh; counted
    // sequentially here, as the embedded node runs them), two verifications, one
    // combination, one opening.
    let single = 2.0 * partial.micros_per_op
        + 2.0 * verify.micros_per_op
        + comb.micros_per_op
        + open.micros_per_op;
    let batch_read = (2.0 * b_answer.micros_per_op
        + 2.0 * b_verify.micros_per_op
        + b_comb.micros_per_op
        + b_open.micros_per_op)
        / batch as f64;
    let report = Report {
        cpu_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        batch,
        baseline_aead_micros_per_record: base.micros_per_op,
        seal_vs_baseline_ratio: seal.micros_per_op / base.micros_per_op,
        single_read_micros: single,
        batch_read_micros_per_record: batch_read,
        figures: vec![
            seal, base, partial, verify, comb, open, b_answer, b_verify, b_comb, b_open,
        ],
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{:<58} {:>12} {:>12}",
            "operation (one thread)", "µs/op", "ops/s"
        );
        for f in &report.figures {
            println!(
                "{:<58} {:>12.2} {:>12.0}",
                f.name, f.micros_per_op, f.ops_per_s
            );
        }
        println!(
            "\nsealing costs {:.1}x the single-key baseline; a 2-of-3 read of one record costs {:.0} µs of CPU, {:.0} µs per record in batches of {}",
            report.seal_vs_baseline_ratio,
            report.single_read_micros,
            report.batch_read_micros_per_record,
            batch
        );
    }
    Ok(())
}
