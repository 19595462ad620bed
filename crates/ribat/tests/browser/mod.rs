//! A real headless Chromium, driven through the DevTools protocol over a pipe
//! (`--remote-debugging-pipe`: JSON messages ended by a NUL byte, commands on the
//! browser's fd 3, answers on its fd 4), with its own profile and NSS database holding one
//! identity's certificate and key and trusting the deployment's CA.
//!
//! A pipe and `serde_json` are the whole client: the protocol's few commands these tests
//! send (open a tab, evaluate, screenshot) do not justify a CDP crate's hundreds of
//! generated types. Chromium picks the client certificate by the policy
//! `AutoSelectCertificateForUrls` for `https://127.0.0.1:*`, which `.ci/run` installs
//! (policies are read from `/etc/chromium/policies/managed/` only).

use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Where `.ci/run` puts the policy that lets Chromium present a client certificate
/// without a dialog.
pub(crate) const POLICY: &str = "/etc/chromium/policies/managed/ribat-console-tests.json";

/// Replies by command id.
type Replies = Arc<(Mutex<HashMap<u64, Value>>, Condvar)>;

/// One browser: a profile of its own, one identity's certificate.
pub(crate) struct Browser {
    child: Child,
    to: Mutex<ChildStdin>,
    replies: Replies,
    next: Mutex<u64>,
    _home: tempfile::TempDir,
}

/// Why these tests cannot run here, when they cannot.
pub(crate) fn missing() -> Option<String> {
    for tool in ["chromium", "certutil", "pk12util", "openssl"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            return Some(format!(
                "`{tool}` is not installed (.ci/run installs chromium and libnss3-tools)"
            ));
        }
    }
    if !Path::new(POLICY).exists() {
        return Some(format!(
            "{POLICY} is missing (.ci/run writes it: Chromium presents a client certificate without a dialog only by policy)"
        ));
    }
    None
}

fn run(cmd: &mut Command) {
    let o = cmd.output().unwrap();
    assert!(
        o.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

impl Browser {
    /// A browser holding the identity in `who` (`cert.pem`, `key.pem`) and trusting
    /// `ca`; its log goes to `log`.
    pub(crate) fn start(who: &Path, ca: &Path, log: &Path) -> Self {
        let home = tempfile::tempdir().unwrap();
        let nss = home.path().join(".pki/nssdb");
        std::fs::create_dir_all(&nss).unwrap();
        let db = format!("sql:{}", nss.display());
        run(Command::new("certutil").args(["-N", "-d", &db, "--empty-password"]));
        let p12 = home.path().join("me.p12");
        run(Command::new("openssl").args([
            "pkcs12",
            "-export",
            "-in",
            who.join("cert.pem").to_str().unwrap(),
            "-inkey",
            who.join("key.pem").to_str().unwrap(),
            "-out",
            p12.to_str().unwrap(),
            "-passout",
            "pass:",
        ]));
        run(Command::new("pk12util").args(["-d", &db, "-i", p12.to_str().unwrap(), "-W", ""]));
        std::fs::remove_file(&p12).unwrap();
        run(Command::new("certutil").args([
            "-A",
            "-d",
            &db,
            "-n",
            "ribat-ca",
            "-t",
            "C,,",
            "-i",
            ca.to_str().unwrap(),
        ]));
        let profile = home.path().join("profile");
        // Chromium's own temporary files (`org.chromium.Chromium.*`) go into the browser's
        // home too, so that they go with it.
        let tmp = home.path().join("tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        // fd 3 reads our commands (its stdin), fd 4 writes its answers (its stdout).
        let script = "exec 3<&0 4>&1 0</dev/null 1>/dev/null 2>>\"$RIBAT_BROWSER_LOG\"; \
                      exec chromium --headless=new --no-sandbox --disable-gpu \
                      --disable-background-networking --no-first-run --no-default-browser-check \
                      --window-size=1280,900 --remote-debugging-pipe \
                      --user-data-dir=\"$RIBAT_BROWSER_PROFILE\" about:blank";
        let mut child = Command::new("bash")
            .args(["-c", script])
            .env("HOME", home.path())
            .env("TMPDIR", &tmp)
            .env("RIBAT_BROWSER_LOG", log)
            .env("RIBAT_BROWSER_PROFILE", &profile)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            // Its own process group: Chromium's helpers (zygote, renderers, crash handler)
            // are stopped with it, before its temporary home is deleted.
            .process_group(0)
            .spawn()
            .unwrap();
        let to = child.stdin.take().unwrap();
        let from = child.stdout.take().unwrap();
        let replies: Replies = Arc::new((Mutex::new(HashMap::new()), Condvar::new()));
        let r = replies.clone();
        std::thread::spawn(move || {
            let mut from = BufReader::new(from);
            let mut buf = Vec::new();
            while from.read_until(0, &mut buf).is_ok_and(|n| n > 0) {
                buf.pop_if(|b| *b == 0);
                if let Ok(msg) = serde_json::from_slice::<Value>(&buf)
                    && let Some(id) = msg["id"].as_u64()
                {
                    r.0.lock().unwrap().insert(id, msg);
                    r.1.notify_all();
                }
                buf.clear();
            }
        });
        Self {
            child,
            to: Mutex::new(to),
            replies,
            next: Mutex::new(0),
            _home: home,
        }
    }

    /// Sends `method` (to the tab `session`, or the browser) and waits for its result.
    fn call(&self, session: Option<&str>, method: &str, params: Value) -> Value {
        match self.try_call(session, method, params) {
            Ok(v) => v,
            Err(e) => panic!("{method}: {e}"),
        }
    }

    /// Same, the protocol's error given back (a page navigating away under an evaluation
    /// answers "Inspected target navigated or closed").
    fn try_call(&self, session: Option<&str>, method: &str, params: Value) -> Result<Value, Value> {
        let id = {
            let mut n = self.next.lock().unwrap();
            *n += 1;
            *n
        };
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = s.into();
        }
        {
            let mut to = self.to.lock().unwrap();
            to.write_all(&serde_json::to_vec(&msg).unwrap()).unwrap();
            to.write_all(&[0]).unwrap();
            to.flush().unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let (lock, cv) = &*self.replies;
        let mut replies = lock.lock().unwrap();
        loop {
            if let Some(r) = replies.remove(&id) {
                return match r["error"].is_null() {
                    true => Ok(r["result"].clone()),
                    false => Err(r["error"].clone()),
                };
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "Chromium never answered {method}");
            replies = cv.wait_timeout(replies, left).unwrap().0;
        }
    }

    /// A new tab at `url`, once loaded.
    pub(crate) fn open(&self, url: &str) -> Tab<'_> {
        let target = self.call(None, "Target.createTarget", json!({"url": "about:blank"}));
        let attached = self.call(
            None,
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        );
        let tab = Tab {
            browser: self,
            session: attached["sessionId"].as_str().unwrap().to_owned(),
        };
        tab.call("Page.enable", json!({}));
        tab.call("Runtime.enable", json!({}));
        tab.go(url);
        tab
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One tab.
pub(crate) struct Tab<'b> {
    browser: &'b Browser,
    session: String,
}

impl Tab<'_> {
    fn call(&self, method: &str, params: Value) -> Value {
        self.browser.call(Some(&self.session), method, params)
    }

    /// Navigates to `url` and waits until the page is loaded there.
    pub(crate) fn go(&self, url: &str) {
        self.call("Page.navigate", json!({"url": url}));
        self.wait_for(
            &format!(
                "document.readyState === 'complete' && location.href === {}",
                serde_json::to_string(url).unwrap()
            ),
            Duration::from_secs(20),
        );
    }

    /// Navigates to `url` without waiting for it (a page that goes elsewhere at once).
    pub(crate) fn go_on(&self, url: &str) {
        self.call("Page.navigate", json!({"url": url}));
    }

    /// The value of `expression` in the page (awaited when it is a promise).
    pub(crate) fn eval(&self, expression: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        );
        assert!(
            r["exceptionDetails"].is_null(),
            "{expression}: {}",
            r["exceptionDetails"]
        );
        r["result"]["value"].clone()
    }

    /// The page's visible text.
    pub(crate) fn text(&self) -> String {
        self.eval("document.body ? document.body.innerText : ''")
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Waits until `condition` (JavaScript) is true in the page; how long it took.
    pub(crate) fn wait_for(&self, condition: &str, within: Duration) -> Duration {
        let started = Instant::now();
        loop {
            // While the page navigates (a form sent, a redirect) an evaluation may be cut
            // off; that is "not yet".
            let r = self.browser.try_call(
                Some(&self.session),
                "Runtime.evaluate",
                json!({"expression": format!("!!({condition})"), "returnByValue": true}),
            );
            if r.is_ok_and(|r| r["result"]["value"] == true) {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < within,
                "not within {within:?}: {condition}; the page says: {}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Puts the file at `path` into the file input `selector`, as a person choosing it
    /// in the dialog would.
    pub(crate) fn choose_file(&self, selector: &str, path: &Path) {
        let doc = self.call("DOM.getDocument", json!({"depth": 0}));
        let node = self.call(
            "DOM.querySelector",
            json!({"nodeId": doc["root"]["nodeId"], "selector": selector}),
        );
        assert_ne!(node["nodeId"], 0, "no {selector} on the page");
        self.call(
            "DOM.setFileInputFiles",
            json!({"files": [path.to_str().unwrap()], "nodeId": node["nodeId"]}),
        );
    }

    /// Writes the page as a PNG to `path`.
    pub(crate) fn screenshot(&self, path: &PathBuf) {
        use base64ct::Encoding;
        let shot = self.call(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true}),
        );
        let png = base64ct::Base64::decode_vec(shot["data"].as_str().unwrap()).unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }
}
