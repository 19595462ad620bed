//! Criterion benchmarks of the vault's cryptography (`ribat bench crypto` prints the same
//! figures with a baseline; this is for profiling one operation at a time).
#![allow(missing_docs, clippy::unwrap_used)] // bench harness

use criterion::{Criterion, criterion_group, criterion_main};
use ribat_crypto::combine::{answer, combine, verify_partial};
use ribat_crypto::dleq::Dleq;
use ribat_crypto::envelope::Sealer;
use ribat_crypto::group::GroupPublic;
use ribat_crypto::shamir::deal;
use std::hint::black_box;

fn vault(c: &mut Criterion) {
    let d = vec![deal("identity", 2, 3).unwrap()];
    let g = GroupPublic::from_dealings(2, 3, 1, &d).unwrap();
    let keys = g.class("identity").unwrap();
    let sealer = Sealer::new("identity", keys, 1);
    let fields: [(&str, &[u8]); 2] = [("name", b"KHADIJA EL FASSI"), ("cin", b"BE123456")];
    let dleq = Dleq::ribat();
    let env = sealer.seal("persons", "p-1", &fields).unwrap();
    let r = [env.r_point().unwrap()];
    let (p1, p2) = (
        answer(&dleq, &d[0].shares[0], &r).unwrap(),
        answer(&dleq, &d[0].shares[1], &r).unwrap(),
    );
    let (y1, y2) = (
        g.public_share("identity", 1).unwrap(),
        g.public_share("identity", 2).unwrap(),
    );
    let v = [
        verify_partial(&dleq, "identity", y1, &r, &p1).unwrap(),
        verify_partial(&dleq, "identity", y2, &r, &p2).unwrap(),
    ];
    let s = combine("identity", 2, &v).unwrap();

    c.bench_function("seal/1 class, 2 fields", |b| {
        b.iter(|| sealer.seal("persons", "p-1", black_box(&fields)).unwrap())
    });
    c.bench_function("partial/1 record with proof", |b| {
        b.iter(|| answer(&dleq, &d[0].shares[0], black_box(&r)).unwrap())
    });
    c.bench_function("verify/1 record", |b| {
        b.iter(|| verify_partial(&dleq, "identity", y1, black_box(&r), &p1).unwrap())
    });
    c.bench_function("combine/2 partials", |b| {
        b.iter(|| combine("identity", 2, black_box(&v)).unwrap())
    });
    c.bench_function("open/2 fields", |b| {
        b.iter(|| {
            env.open("persons", "p-1", "identity", keys, 1, black_box(&s[0]))
                .unwrap()
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = vault
}
criterion_main!(benches);
