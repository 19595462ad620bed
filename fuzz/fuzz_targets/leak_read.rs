//! A leaked dump as `ribat leak scan` reads it: CSV/TSV, JSON lines, e-BDS, xlsx/ods,
//! text — the first byte picks the file's name (its extension), the rest is the file.
#![no_main]
use std::io::Write;

const NAMES: [&str; 6] = ["dump.csv", "dump.tsv", "dump.jsonl", "dump.txt", "dump.xlsx", "DS_1234567_012025.txt"];

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("ribat-fuzz-leak-{}", std::process::id()));
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    let path = dir.join(NAMES[pick as usize % NAMES.len()]);
    let Ok(mut f) = std::fs::File::create(&path) else {
        return;
    };
    if f.write_all(body).is_err() {
        return;
    }
    drop(f);
    let opts = ribat_leak::read::ReadOptions {
        threads: 1,
        ..Default::default()
    };
    let _ = ribat_leak::read::read_file(&path, 0, &opts, &mut |_| {});
    let _ = std::fs::remove_file(&path);
});
