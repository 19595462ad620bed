//! The conformance suite every backend must pass (the model is openraft's
//! `testing/log/suite.rs`): call [`run_all`] from a backend's tests with a harness that
//! makes fresh stores and reopens them.
//!
//! It checks behaviour a caller relies on, not implementation: round trips, version
//! rules, idempotent re-runs, atomic batches, refusals, lookups, and durability across a
//! reopen.

use crate::{
    DigestRow, Part, PointSource, RecordRef, Reseal, SealedRef, Store, StoreError, StoredClass,
    StoredRecord, TABLES,
};

/// Refusals common to both backends, checked before anything is written.
pub fn check_write(r: &StoredRecord) -> Result<(), StoreError> {
    let refuse = |reason| StoreError::InvalidWrite {
        table: r.table.clone(),
        record_id: r.record_id.clone(),
        reason,
    };
    if !TABLES.contains(&r.table.as_str()) {
        return Err(refuse(
            "unknown table (persons, employers, declarations, exports, keys)",
        ));
    }
    if r.record_id.is_empty() || r.record_id.len() > 200 {
        return Err(refuse("record ids are 1 to 200 bytes"));
    }
    if r.classes.is_empty() {
        return Err(refuse("a record needs at least one sealed class"));
    }
    if r.version == 0 {
        return Err(refuse("versions start at 1"));
    }
    Ok(())
}

/// Makes stores for the suite.
pub trait Harness {
    /// The backend.
    type S: Store;
    /// A new, empty store.
    fn fresh(&mut self) -> Self::S;
    /// The last fresh store, opened again (a restart).
    fn reopen(&mut self) -> Self::S;
}

/// A record with one class per byte in `classes`.
pub fn record(table: &str, id: &str, version: u64, byte: u8) -> StoredRecord {
    StoredRecord {
        table: table.into(),
        record_id: id.into(),
        version,
        classes: vec![
            StoredClass {
                class: "identity".into(),
                epoch: 1,
                r: [byte; 32],
                envelope: vec![byte; 48],
            },
            StoredClass {
                class: "financial".into(),
                epoch: 1,
                r: [byte ^ 0xff; 32],
                envelope: vec![byte ^ 0xff; 40],
            },
        ],
        index: vec![
            ("cin".into(), [byte; 16]),
            ("cnss".into(), [byte.wrapping_add(1); 16]),
        ],
        digests: vec![([byte; 16], vec![1, byte, 0, 0, 0, 0, 0, 0, 0])],
    }
}

fn must<T>(r: Result<T, StoreError>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic_with(what, &e),
    }
}

#[allow(clippy::panic)] // the suite reports failures by panicking, like assert!
fn panic_with(what: &str, e: &StoreError) -> ! {
    panic!("{what}: {e}")
}

/// Runs every check.
pub fn run_all<H: Harness>(h: &mut H) {
    round_trip(h);
    versions_only_move_forward(h);
    reruns_are_idempotent(h);
    batches_are_atomic(h);
    refusals(h);
    lookups(h);
    durable_across_reopen(h);
    large_batch(h);
    bulk_load(h);
    bulk_load_interrupted(h);
    digests_keep_every_version(h);
    digest_parts_walk_locators_in_order(h);
    a_rotation_pass_moves_each_class_once(h);
}

fn a_rotation_pass_moves_each_class_once<H: Harness>(h: &mut H) {
    let s = h.fresh();
    let batch: Vec<_> = (0..7u8)
        .map(|i| record("persons", &format!("p-{i}"), 1, i))
        .chain([record("employers", "e-1", 1, 50)])
        .collect();
    must(s.put_records(&batch), "put");
    assert_eq!(must(s.count_sealed_under(1), "count"), 16);
    // Pages in order of table, record and class, resumable from any row.
    let mut seen = Vec::new();
    let mut after: Option<SealedRef> = None;
    loop {
        let page = must(s.sealed_under(1, after.as_ref(), 3), "page");
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 3);
        after = page.last().cloned();
        seen.extend(page);
    }
    assert_eq!(seen.len(), 16);
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    assert_eq!(seen[0].table, "employers");
    let moved = |at: &SealedRef, from_r: [u8; 32], to_byte: u8| Reseal {
        at: at.clone(),
        from_epoch: 1,
        from_r,
        to: StoredClass {
            class: at.class.clone(),
            epoch: 2,
            r: [to_byte; 32],
            envelope: vec![to_byte; 30],
        },
    };
    let p0_financial = SealedRef {
        table: "persons".into(),
        record_id: "p-0".into(),
        class: "financial".into(),
    };
    let p1_identity = SealedRef {
        table: "persons".into(),
        record_id: "p-1".into(),
        class: "identity".into(),
    };
    // p-1 is re-imported (a new R) between the read and the write: left as it is.
    must(s.put_records(&[record("persons", "p-1", 2, 99)]), "replace");
    let n = must(
        s.reseal(&[
            moved(&p0_financial, [0xff; 32], 200),
            moved(&p1_identity, [1; 32], 201),
        ]),
        "reseal",
    );
    assert_eq!(n, 1);
    assert_eq!(
        must(s.point("persons", "p-0", "financial"), "point").map(|p| (p.r, p.epoch)),
        Some(([200; 32], 2))
    );
    assert_eq!(
        must(s.envelope("persons", "p-0", "financial"), "envelope"),
        Some(vec![200; 30])
    );
    assert_eq!(
        must(s.point("persons", "p-1", "identity"), "point").map(|p| (p.r, p.epoch)),
        Some(([99; 32], 1))
    );
    // Done once: a second write of the same move changes nothing, and the pass skips it.
    assert_eq!(
        must(s.reseal(&[moved(&p0_financial, [0xff; 32], 202)]), "again"),
        0
    );
    assert_eq!(must(s.count_sealed_under(1), "count"), 15);
    assert_eq!(must(s.count_sealed_under(2), "count"), 1);
    let rest = must(s.sealed_under(1, None, 100), "rest");
    assert!(!rest.contains(&p0_financial) && rest.contains(&p1_identity));
    assert_eq!(
        must(s.sealed_under(2, None, 100), "new"),
        vec![p0_financial]
    );
    drop(s);
    let s = h.reopen();
    assert_eq!(must(s.count_sealed_under(2), "durable"), 1);
}

fn bulk_load<H: Harness>(h: &mut H) {
    let s = h.fresh();
    must(s.set_bulk(true), "bulk on");
    let batch: Vec<_> = (0..500u32)
        .map(|i| record("persons", &format!("p-{i:04}"), 1, (i % 200) as u8))
        .collect();
    must(s.put_records(&batch), "bulk put");
    must(s.put_records(&batch[..50]), "bulk re-put");
    must(s.set_bulk(false), "bulk off");
    assert_eq!(must(s.count("persons"), "count"), 500);
    assert_eq!(must(s.lookup("cin", &[7; 16]), "lookup").len(), 3);
    assert_eq!(
        must(s.envelope("persons", "p-0007", "identity"), "envelope"),
        Some(vec![7; 48])
    );
    // After the load, replacing a record works as usual.
    must(
        s.put_records(&[record("persons", "p-0007", 2, 201)]),
        "replace",
    );
    assert_eq!(must(s.lookup("cin", &[7; 16]), "lookup").len(), 2);
}

fn bulk_load_interrupted<H: Harness>(h: &mut H) {
    let s = h.fresh();
    must(s.set_bulk(true), "bulk on");
    must(
        s.put_records(&[
            record("persons", "p-a", 1, 9),
            record("persons", "p-b", 1, 10),
        ]),
        "bulk put",
    );
    drop(s); // a crash: the load never ended
    let s = h.reopen();
    assert_eq!(must(s.lookup("cin", &[9; 16]), "lookup").len(), 1);
    assert_eq!(
        must(s.point("persons", "p-b", "identity"), "point").map(|p| p.r),
        Some([10; 32])
    );
}

fn round_trip<H: Harness>(h: &mut H) {
    let s = h.fresh();
    must(s.put_records(&[record("persons", "p-a", 1, 1)]), "put");
    let p = must(s.point("persons", "p-a", "identity"), "point");
    assert_eq!(p.map(|p| (p.r, p.epoch)), Some(([1; 32], 1)));
    assert_eq!(
        must(s.point("persons", "p-a", "financial"), "point").map(|p| p.r),
        Some([0xfe; 32])
    );
    assert_eq!(
        must(s.envelope("persons", "p-a", "identity"), "envelope"),
        Some(vec![1; 48])
    );
    assert_eq!(must(s.point("persons", "p-zz", "identity"), "point"), None);
    assert_eq!(must(s.point("persons", "p-a", "medical"), "point"), None);
    assert_eq!(
        must(s.envelope("employers", "p-a", "identity"), "envelope"),
        None
    );
    assert_eq!(must(s.version("persons", "p-a"), "version"), Some(1));
    assert_eq!(must(s.count("persons"), "count"), 1);
    assert_eq!(must(s.count("employers"), "count"), 0);
}

fn versions_only_move_forward<H: Harness>(h: &mut H) {
    let s = h.fresh();
    must(s.put_records(&[record("persons", "p-a", 2, 2)]), "put v2");
    must(s.put_records(&[record("persons", "p-a", 1, 9)]), "put v1");
    assert_eq!(
        must(s.point("persons", "p-a", "identity"), "point").map(|p| p.r),
        Some([2; 32]),
        "an older version replaced a newer one"
    );
    must(s.put_records(&[record("persons", "p-a", 3, 3)]), "put v3");
    assert_eq!(must(s.version("persons", "p-a"), "version"), Some(3));
    assert_eq!(
        must(s.envelope("persons", "p-a", "identity"), "envelope"),
        Some(vec![3; 48])
    );
    // Tags of the replaced version are gone.
    assert!(
        must(s.lookup("cin", &[2; 16]), "lookup").is_empty(),
        "stale blind-index tag survived a new version"
    );
    assert_eq!(must(s.lookup("cin", &[3; 16]), "lookup").len(), 1);
    assert_eq!(must(s.count("persons"), "count"), 1);
}

fn reruns_are_idempotent<H: Harness>(h: &mut H) {
    let s = h.fresh();
    let batch: Vec<_> = (0..20u8)
        .map(|i| record("declarations", &format!("d-{i}"), 1, i))
        .collect();
    must(s.put_records(&batch), "put");
    must(s.put_records(&batch), "re-put");
    must(s.put_records(&batch[5..10]), "partial re-put");
    assert_eq!(must(s.count("declarations"), "count"), 20);
    assert_eq!(
        must(s.lookup("cin", &[7; 16]), "lookup"),
        vec![RecordRef {
            table: "declarations".into(),
            record_id: "d-7".into()
        }]
    );
}

fn batches_are_atomic<H: Harness>(h: &mut H) {
    let s = h.fresh();
    let mut batch: Vec<_> = (0..5u8)
        .map(|i| record("persons", &format!("p-{i}"), 1, i))
        .collect();
    batch.push(record("pets", "x-1", 1, 9));
    assert!(matches!(
        s.put_records(&batch),
        Err(StoreError::InvalidWrite { .. })
    ));
    assert_eq!(
        must(s.count("persons"), "count"),
        0,
        "a refused batch wrote some of its records"
    );
}

fn refusals<H: Harness>(h: &mut H) {
    let s = h.fresh();
    let mut r = record("persons", "p-a", 1, 1);
    r.classes.clear();
    assert!(matches!(
        s.put_records(&[r]),
        Err(StoreError::InvalidWrite { .. })
    ));
    assert!(matches!(
        s.put_records(&[record("persons", "", 1, 1)]),
        Err(StoreError::InvalidWrite { .. })
    ));
    assert!(matches!(
        s.put_records(&[record("persons", "p-a", 0, 1)]),
        Err(StoreError::InvalidWrite { .. })
    ));
    assert!(matches!(
        s.put_records(&[record("users", "u-a", 1, 1)]),
        Err(StoreError::InvalidWrite { .. })
    ));
    assert_eq!(must(s.count("persons"), "count"), 0);
}

fn lookups<H: Harness>(h: &mut H) {
    let s = h.fresh();
    // Two records sharing a tag (two persons with the same name and birth date).
    let mut a = record("persons", "p-b", 1, 4);
    let mut b = record("persons", "p-a", 1, 5);
    a.index.push(("name-birth".into(), [42; 16]));
    b.index.push(("name-birth".into(), [42; 16]));
    must(s.put_records(&[a, b]), "put");
    let found = must(s.lookup("name-birth", &[42; 16]), "lookup");
    let ids: Vec<_> = found.iter().map(|r| r.record_id.as_str()).collect();
    assert_eq!(ids, ["p-a", "p-b"], "lookups are sorted by table then id");
    assert!(
        must(s.lookup("cnss", &[42; 16]), "lookup").is_empty(),
        "a tag found under another kind"
    );
}

fn durable_across_reopen<H: Harness>(h: &mut H) {
    let s = h.fresh();
    must(
        s.put_records(&[
            record("employers", "e-a", 1, 6),
            record("keys", "blind-index", 1, 7),
        ]),
        "put",
    );
    drop(s);
    let s = h.reopen();
    assert_eq!(must(s.count("employers"), "count"), 1);
    assert_eq!(
        must(s.envelope("keys", "blind-index", "identity"), "envelope"),
        Some(vec![7; 48])
    );
}

fn large_batch<H: Harness>(h: &mut H) {
    let s = h.fresh();
    let batch: Vec<_> = (0..3_000u32)
        .map(|i| record("persons", &format!("p-{i:05}"), 1, (i % 251) as u8))
        .collect();
    must(s.put_records(&batch), "put 3,000");
    assert_eq!(must(s.count("persons"), "count"), 3_000);
    assert_eq!(must(s.lookup("cin", &[250; 16]), "lookup").len(), 11);
}

fn digests_keep_every_version<H: Harness>(h: &mut H) {
    let s = h.fresh();
    let mut v1 = record("persons", "p-a", 1, 1);
    v1.digests.push(([99; 16], vec![2; 9]));
    let mut v2 = record("persons", "p-a", 2, 2);
    v2.digests = vec![([1; 16], vec![3; 9])];
    must(s.put_records(&[v1.clone()]), "put v1");
    must(s.put_records(&[v1]), "re-put v1");
    must(s.put_records(&[v2]), "put v2");
    must(s.put_records(&[record("persons", "p-b", 1, 1)]), "put p-b");
    let rows = must(s.digests(&[1; 16]), "digests");
    let seen: Vec<_> = rows
        .iter()
        .map(|r| (r.record_id.as_str(), r.version, r.body.clone()))
        .collect();
    assert_eq!(
        seen,
        [
            ("p-a", 1, vec![1, 1, 0, 0, 0, 0, 0, 0, 0]),
            ("p-a", 2, vec![3; 9]),
            ("p-b", 1, vec![1, 1, 0, 0, 0, 0, 0, 0, 0]),
        ],
        "a replaced version's digests must stay, once each"
    );
    assert_eq!(must(s.digests(&[99; 16]), "digests").len(), 1);
    assert!(must(s.digests(&[7; 16]), "digests").is_empty());
    let scan = |part: Part| scan_part(&s, part);
    let all = scan(Part::WHOLE);
    assert_eq!(
        must(s.digest_rows_estimate(), "estimate"),
        4,
        "a small table's estimate is its count"
    );
    assert!(all.iter().any(|r| r.locator == [1; 16] && r.version == 2));
    assert_eq!(all.len(), 4);
    assert!(all.iter().all(|r| r.table == "persons"));
    // Parts are disjoint and cover the table, whatever their count.
    for of in [2, 3, 7] {
        let mut parts: Vec<(String, u64)> = (0..of)
            .flat_map(|index| scan(Part { index, of }))
            .map(|r| (r.record_id, r.version))
            .collect();
        parts.sort();
        let mut whole: Vec<(String, u64)> = all
            .iter()
            .map(|r| (r.record_id.clone(), r.version))
            .collect();
        whole.sort();
        assert_eq!(parts, whole, "{of} parts must hold each digest once");
    }
    let mut first = 0;
    must(
        s.scan_digests(Part::WHOLE, &mut |_| {
            first += 1;
            false
        }),
        "stopped scan",
    );
    assert_eq!(first, 1, "returning false stops the pass");
    drop(s);
    let s = h.reopen();
    assert_eq!(must(s.digests(&[1; 16]), "digests").len(), 3);
}

/// A scan of a large dump walks each part beside its rows sorted by locator: every row of
/// a part lies within its bounds, in order, and the parts hold each row once.
fn digest_parts_walk_locators_in_order<H: Harness>(h: &mut H) {
    let s = h.fresh();
    let mut records = Vec::new();
    for (i, first) in [0xffu8, 0x01, 0xaa, 0x55, 0x80, 0x7f, 0x00]
        .into_iter()
        .enumerate()
    {
        for version in [1, 2] {
            let mut r = record("persons", &format!("p-{i}"), version, first);
            let mut locator = [first; 16];
            locator[15] = 0x0f;
            r.digests = vec![(locator, vec![1, first, 0, 0, 0, 0, 0, 0, 0])];
            records.push(r.clone());
            r.table = "declarations".into();
            r.record_id = format!("d-202501-p-{i}");
            records.push(r);
        }
    }
    for r in &records {
        must(s.put_records(std::slice::from_ref(r)), "put");
    }
    let key = |r: &DigestRow| (r.locator, r.table.clone(), r.record_id.clone(), r.version);
    let mut every: Vec<_> = Vec::new();
    for of in [1u32, 2, 3, 7] {
        let mut seen = Vec::new();
        for index in 0..of {
            let part = Part { index, of };
            let (lo, hi) = part.locator_bounds();
            let rows = scan_part(&s, part);
            assert!(
                rows.windows(2).all(|w| key(&w[0]) < key(&w[1])),
                "part {index} of {of} must come in locator, table, id, version order"
            );
            assert!(
                rows.iter()
                    .all(|r| lo <= r.locator && hi.is_none_or(|h| r.locator < h)),
                "part {index} of {of} holds only its own locators"
            );
            seen.extend(rows.iter().map(key));
        }
        assert_eq!(
            seen.len(),
            records.len(),
            "{of} parts hold each digest once"
        );
        if of == 1 {
            every = seen;
        } else {
            seen.sort();
            assert_eq!(seen, every, "{of} parts hold what the whole does");
        }
    }
}

/// Every digest row of `part`, copied out, in the order the store gave them.
fn scan_part<S: Store>(s: &S, part: Part) -> Vec<DigestRow> {
    let mut rows: Vec<DigestRow> = Vec::new();
    must(
        s.scan_digests(part, &mut |r| {
            rows.push(DigestRow {
                locator: r.locator.try_into().unwrap_or([0; 16]),
                table: r.table.to_owned(),
                record_id: r.record_id.to_owned(),
                version: r.version,
                body: r.body.to_vec(),
            });
            true
        }),
        "scan a part",
    );
    rows
}
