//! Work a node takes from its gateway and does in the background (intake files, leaked
//! dumps): each job has a state file `DIR/ID.json`, written before the job is acknowledged;
//! one thread runs the jobs in arrival order; a run cut off (a node killed) is taken up
//! again at the next start, from its state file.

use crate::error::Result;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, mpsc};

/// A new job id: the time in ms, then randomness (16 hex digits); ids sort in arrival
/// order.
pub(crate) fn new_id() -> std::result::Result<String, String> {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let r = ribat_crypto::secret::SecretBytes::<2>::random().map_err(|e| e.to_string())?;
    Ok(format!(
        "{:012x}{}",
        ms & 0xffff_ffff_ffff,
        hex::encode(r.expose())
    ))
}

/// Job ids are 16 lowercase hex digits; anything else names no job (nor a path).
pub fn valid_id(id: &str) -> bool {
    id.len() == 16 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The jobs' book, locked: a thread that panicked holding it left it as it was, which is
/// still the best account there is.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// Every `ID.json` in `dir` that is a state of this kind (`what`, for the warning about
/// one that is not: it is left alone), by id.
pub(crate) fn load_states<S: DeserializeOwned>(
    dir: &Path,
    what: &str,
    id_of: impl Fn(&S) -> &str,
) -> Result<BTreeMap<String, S>> {
    let mut jobs = BTreeMap::new();
    for e in std::fs::read_dir(dir)? {
        let path = e?.path();
        if path.extension().is_some_and(|x| x == "json") {
            let text = std::fs::read_to_string(&path)?;
            match serde_json::from_str::<S>(&text) {
                Ok(s) if valid_id(id_of(&s)) => {
                    jobs.insert(id_of(&s).to_owned(), s);
                }
                Ok(_) => eprintln!("warning: {} names no valid id; left alone", path.display()),
                Err(e) => eprintln!(
                    "warning: {} is not {what} ({e}); left alone",
                    path.display()
                ),
            }
        }
    }
    Ok(jobs)
}

/// Starts the thread named `name` that runs each job id sent to it, in order, those a
/// previous run left `unfinished` first (saying so with `again`, e.g. "2 dump(s) … scanning
/// them again"); the sender that queues more.
pub(crate) fn start_worker(
    name: &str,
    unfinished: Vec<String>,
    again: impl FnOnce(usize) -> String,
    mut run: impl FnMut(&str) + Send + 'static,
) -> Result<mpsc::Sender<String>> {
    let (tx, rx) = mpsc::channel::<String>();
    if !unfinished.is_empty() {
        eprintln!("{}", again(unfinished.len()));
    }
    for id in unfinished {
        // The receiver is alive: it is ours until the thread below takes it.
        let _ = tx.send(id);
    }
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            for id in rx {
                run(&id);
            }
        })?;
    Ok(tx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_in_arrival_order_and_only_16_hex_digits_name_a_job() {
        let a = new_id().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = new_id().unwrap();
        assert!(valid_id(&a) && valid_id(&b));
        assert!(a[..12] < b[..12], "{a} {b}");
        for bad in [
            "",
            "0123",
            "0123456789abcdeF",
            "../0123456789abc",
            "0123456789abcdef0",
        ] {
            assert!(!valid_id(bad), "{bad}");
        }
    }

    #[test]
    fn states_load_by_id_and_a_stranger_is_left_alone() {
        #[derive(serde::Deserialize)]
        struct S {
            id: String,
        }
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("0123456789abcdef.json"),
            r#"{"id":"0123456789abcdef"}"#,
        )
        .unwrap();
        std::fs::write(d.path().join("other.json"), r#"{"nope":1}"#).unwrap();
        std::fs::write(d.path().join("bad-id.json"), r#"{"id":"../x"}"#).unwrap();
        std::fs::write(d.path().join("0123456789abcdef"), "a job's directory name").unwrap();
        let jobs = load_states::<S>(d.path(), "a test state", |s| &s.id).unwrap();
        assert_eq!(jobs.keys().collect::<Vec<_>>(), ["0123456789abcdef"]);
        assert!(d.path().join("other.json").exists());
    }

    #[test]
    fn the_worker_runs_what_was_left_first_then_what_is_sent_in_order() {
        let (done_tx, done_rx) = mpsc::channel();
        let tx = start_worker(
            "test-jobs",
            vec!["a".into(), "b".into()],
            |n| format!("{n} left"),
            move |id| done_tx.send(id.to_owned()).unwrap(),
        )
        .unwrap();
        tx.send("c".into()).unwrap();
        let got: Vec<String> = (0..3)
            .map(|_| {
                done_rx
                    .recv_timeout(std::time::Duration::from_secs(5))
                    .unwrap()
            })
            .collect();
        assert_eq!(got, ["a", "b", "c"]);
    }
}
