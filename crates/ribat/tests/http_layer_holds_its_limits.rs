//! The HTTP layer of `ribat serve`, over real sockets on loopback: a revocation reaches
//! connections that were already open, every error is a problem a program can branch
//! on, slow or idle connections are closed, one certificate cannot hold the server, and
//! uploads are bounded in total, not only one by one.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly by design

mod common;

use common::api::*;
use common::*;
use ribat_net::client::Connection;
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn fixture() -> Served {
    served(
        60,
        4,
        77,
        Marks::Nothing,
        &[
            ("clerk.1", "clerk", "agency-casa-anfa"),
            ("clerk.2", "clerk", "agency-casa-anfa"),
        ],
    )
}

fn serve(f: &Served) -> Server {
    start(
        &f.home,
        &["serve", "--listen", "127.0.0.1:0", "--passphrases", "env"],
        &[],
    )
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn h2_config(ca: &Path, who: &Path) -> std::sync::Arc<rustls::ClientConfig> {
    ribat_identity::tls::client_config(
        &std::fs::read_to_string(ca).unwrap(),
        Some((
            &std::fs::read_to_string(who.join("cert.pem")).unwrap(),
            &std::fs::read_to_string(who.join("key.pem")).unwrap(),
        )),
        true,
    )
    .unwrap()
}

#[test]
fn a_revocation_holds_on_the_next_request_of_a_connection_opened_before_it() {
    let f = fixture();
    let gw = serve(&f);
    let clerk = identity(&f.home, "clerk.1");
    let person = &f.fund.persons[0].cnss;
    let path = format!("/v1/persons/{person}?purpose=counter-service");
    rt().block_on(async {
        // One keep-alive connection of each protocol, opened and used before the revocation.
        let mut h1 = Connection::open(
            tls_config(&f.ca, Some(&clerk)),
            &gw.addr,
            "127.0.0.1",
            false,
        )
        .await
        .unwrap();
        let mut h2 = Connection::open(h2_config(&f.ca, &clerk), &gw.addr, "127.0.0.1", true)
            .await
            .unwrap();
        let r = h1.send("POST", "/v1/token", None, None).await.unwrap();
        let tok = r.json()["token"].as_str().unwrap().to_owned();
        for c in [&mut h1, &mut h2] {
            let r = c.send("GET", &path, Some(&tok), None).await.unwrap();
            assert_eq!(r.status, 200, "{r:?}");
        }
        ok(ribat(&f.home, &["identity", "revoke", "--name", "clerk.1"]));
        let r = h2.send("GET", &path, Some(&tok), None).await.unwrap();
        assert_eq!(
            (r.status, problem(&r).as_str()),
            (401, "certificate-revoked")
        );
        let r = h1.send("POST", "/v1/token", None, None).await.unwrap();
        assert_eq!(
            (r.status, problem(&r).as_str()),
            (401, "certificate-revoked")
        );
        // The connection is closed after saying so.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!h1.is_open());
    });
    // Another certificate on the same server is not affected.
    let other = identity(&f.home, "clerk.2");
    let tok = token(&gw.addr, &f.ca, &other);
    let r = call(
        &gw.addr,
        config(&f.ca, Some(&other)),
        "GET",
        &path,
        Some(&tok),
        None,
    )
    .unwrap();
    assert_eq!(r.status, 200, "{r:?}");
}

#[test]
fn every_refusal_of_the_http_layer_is_a_problem_document() {
    let f = fixture();
    let gw = serve(&f);
    let clerk = identity(&f.home, "clerk.1");
    let tok = token(&gw.addr, &f.ca, &clerk);
    let person = &f.fund.persons[0].cnss;
    rt().block_on(async {
        let mut c = Connection::open(
            tls_config(&f.ca, Some(&clerk)),
            &gw.addr,
            "127.0.0.1",
            false,
        )
        .await
        .unwrap();
        // A CNSS number with a leading space, or a separator, is not a CNSS number.
        for bad in [
            format!("%20{person}"),
            format!("{}-{}", &person[..3], &person[3..]),
        ] {
            let r = c
                .send(
                    "GET",
                    &format!("/v1/persons/{bad}?purpose=counter-service"),
                    Some(&tok),
                    None,
                )
                .await
                .unwrap();
            assert_eq!(
                (r.status, problem(&r).as_str()),
                (400, "bad-value"),
                "{bad}"
            );
        }
        // A request target of 10 KiB.
        let long = format!(
            "/v1/persons/{person}?purpose=counter-service&case={}",
            "x".repeat(10_240)
        );
        let r = c.send("GET", &long, Some(&tok), None).await.unwrap();
        assert_eq!((r.status, problem(&r).as_str()), (414, "uri-too-long"));
        // 20 KiB of headers.
        let big = "y".repeat(20_480);
        let r = c
            .get_with("/healthz", None, &[("x-padding", &big)])
            .await
            .unwrap();
        assert_eq!((r.status, problem(&r).as_str()), (431, "headers-too-large"));
        // A body over the upload limit.
        let body = vec![b'B'; ribat_gateway::api::MAX_UPLOAD + 1];
        let mut c = Connection::open(
            tls_config(&f.ca, Some(&clerk)),
            &gw.addr,
            "127.0.0.1",
            false,
        )
        .await
        .unwrap();
        let r = c
            .send_raw(
                "POST",
                "/v1/declarations?purpose=declaration-upload",
                Some(&tok),
                body,
                "text/plain",
            )
            .await
            .unwrap();
        assert_eq!((r.status, problem(&r).as_str()), (413, "body-too-large"));
        // A body that is not JSON where JSON is expected.
        let mut c = Connection::open(
            tls_config(&f.ca, Some(&clerk)),
            &gw.addr,
            "127.0.0.1",
            false,
        )
        .await
        .unwrap();
        let r = c
            .send_raw(
                "POST",
                "/v1/persons/search",
                Some(&tok),
                b"{not json".to_vec(),
                "application/json",
            )
            .await
            .unwrap();
        assert_eq!(r.content_type, "application/problem+json", "{r:?}");
        assert!(r.status >= 400 && r.status < 500, "{r:?}");
        // HTTP/2 with 64 KiB of headers gets an answer, and it is a problem.
        let mut h2 = Connection::open(h2_config(&f.ca, &clerk), &gw.addr, "127.0.0.1", true)
            .await
            .unwrap();
        let big = "z".repeat(65_536);
        let r = tokio::time::timeout(
            Duration::from_secs(10),
            h2.get_with("/healthz", None, &[("x-padding", &big)]),
        )
        .await
        .expect("an answer within 10 s")
        .unwrap();
        assert_eq!((r.status, problem(&r).as_str()), (431, "headers-too-large"));
    });
}

/// A TLS connection with `who`'s certificate, for writing bytes by hand.
async fn raw(
    addr: &str,
    cfg: std::sync::Arc<rustls::ClientConfig>,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = ribat_identity::tls::server_name("127.0.0.1").unwrap();
    tokio_rustls::TlsConnector::from(cfg)
        .connect(name, tcp)
        .await
        .unwrap()
}

/// Whether the server closed the connection: a read ends (or fails) within `within`.
async fn closed_by_server(
    s: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    within: Duration,
) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => continue, // a response (408 or the like) before the close
        }
    }
}

#[test]
fn slow_headers_are_cut_off_and_one_certificate_cannot_hold_the_server() {
    let f = fixture();
    let gw = serve(&f);
    let clerk = identity(&f.home, "clerk.1");
    let cfg = tls_config(&f.ca, Some(&clerk));
    let cap = ribat_net::listener::MAX_CONNECTIONS_PER_CERTIFICATE;
    rt().block_on(async {
        // As many connections as one certificate may hold, each trickling its headers.
        let mut trickling = Vec::new();
        for _ in 0..cap {
            let mut s = raw(&gw.addr, cfg.clone()).await;
            s.write_all(b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\nx-slow: a")
                .await
                .unwrap();
            s.flush().await.unwrap();
            trickling.push(s);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        // One more is told why it is not served.
        let mut c = Connection::open(cfg.clone(), &gw.addr, "127.0.0.1", false)
            .await
            .unwrap();
        let r = c.send("GET", "/healthz", None, None).await.unwrap();
        assert_eq!(
            (r.status, problem(&r).as_str()),
            (429, "too-many-connections")
        );
        drop(c);
        // Another certificate is served meanwhile.
        let other = identity(&f.home, "clerk.2");
        let mut c = Connection::open(
            tls_config(&f.ca, Some(&other)),
            &gw.addr,
            "127.0.0.1",
            false,
        )
        .await
        .unwrap();
        assert_eq!(
            c.send("GET", "/healthz", None, None).await.unwrap().status,
            200
        );
        // Within the header timeout (and a margin) the server closes every trickler,
        // however it keeps sending a byte now and then.
        let limit = ribat_net::listener::HEADER_READ_TIMEOUT + Duration::from_secs(3);
        let mut closed = 0;
        for s in &mut trickling {
            let _ = s.write_all(b"b").await;
            if closed_by_server(s, limit).await {
                closed += 1;
            }
        }
        assert_eq!(closed, cap, "connections still held after {limit:?}");
        // The certificate's connections were given back.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut c = Connection::open(cfg.clone(), &gw.addr, "127.0.0.1", false)
            .await
            .unwrap();
        assert_eq!(
            c.send("GET", "/healthz", None, None).await.unwrap().status,
            200
        );
        // An idle keep-alive connection is closed too.
        let mut idle = raw(&gw.addr, cfg.clone()).await;
        idle.write_all(b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 1024];
        let n = idle.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        assert!(
            closed_by_server(&mut idle, limit).await,
            "idle connection kept"
        );
    });
}

#[test]
fn uploads_are_bounded_in_total_not_only_one_by_one() {
    let f = fixture();
    let gw = serve(&f);
    let clerk = identity(&f.home, "clerk.1");
    let tok = token(&gw.addr, &f.ca, &clerk);
    let cfg = tls_config(&f.ca, Some(&clerk));
    let slots = ribat_gateway::api::CONCURRENT_UPLOADS;
    rt().block_on(async {
        // Uploads of 60 MB each, their bodies arriving slowly, hold every slot.
        let mut slow = Vec::new();
        for _ in 0..slots {
            let mut s = raw(&gw.addr, cfg.clone()).await;
            let head = format!(
                "POST /v1/declarations?purpose=declaration-upload HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {tok}\r\ncontent-type: text/plain\r\ncontent-length: 60000000\r\n\r\n"
            );
            s.write_all(head.as_bytes()).await.unwrap();
            s.write_all(&[b'B'; 65_536]).await.unwrap();
            s.flush().await.unwrap();
            slow.push(s);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        // The next is told to come back, before its body is read.
        let upload = |body: Vec<u8>| {
            let cfg = cfg.clone();
            let (addr, tok) = (gw.addr.clone(), tok.clone());
            async move {
                let mut c = Connection::open(cfg, &addr, "127.0.0.1", false).await.unwrap();
                c.send_raw(
                    "POST",
                    "/v1/declarations?purpose=declaration-upload",
                    Some(&tok),
                    body,
                    "text/plain",
                )
                .await
                .unwrap()
            }
        };
        // Small enough to sit whole in the socket's buffers: the gateway answers without
        // reading it and closes, and a larger body would fail the client's write before
        // it reads the answer (seen once in CI: "error writing a body to connection").
        let r = upload(vec![b'B'; 16_384]).await;
        assert_eq!((r.status, problem(&r).as_str()), (503, "uploads-busy"));
        assert!(r.retry_after.is_some());
        // Once the slow ones go away, uploads are taken again (this clerk's is then
        // refused by policy, which is what it should be).
        drop(slow);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let r = upload(b"x".to_vec()).await;
        assert_ne!(problem(&r), "uploads-busy", "{r:?}");
    });
}

#[test]
fn a_partners_access_lapses_at_its_review_date_on_an_open_connection_until_it_is_recertified() {
    let f = fixture();
    // Only third parties are reviewed; a partner gets a date, 90 days unless given.
    let o = ribat(
        &f.home,
        &[
            "identity",
            "add",
            "--name",
            "clerk.9",
            "--role",
            "clerk",
            "--review-by",
            &in_seconds(86_400),
        ],
    );
    assert!(!o.status.success());
    assert!(
        text(&o).contains("only third parties' access"),
        "{}",
        text(&o)
    );
    let said = ok(ribat(
        &f.home,
        &[
            "identity",
            "add",
            "--name",
            "partner.y",
            "--role",
            "partner",
            "--institution",
            "insurer-y",
        ],
    ));
    assert!(
        said.contains("a third party: its access lapses at"),
        "{said}"
    );
    ok(ribat(
        &f.home,
        &[
            "identity",
            "add",
            "--name",
            "partner.x",
            "--role",
            "partner",
            "--institution",
            "insurer-x",
            "--review-by",
            &in_seconds(4),
        ],
    ));
    let gw = serve(&f);
    let partner = identity(&f.home, "partner.x");
    let person = &f.fund.persons[0].cnss;
    let path = format!("/v1/persons/{person}?purpose=partner-verification");
    rt().block_on(async {
        let mut c = Connection::open(
            tls_config(&f.ca, Some(&partner)),
            &gw.addr,
            "127.0.0.1",
            false,
        )
        .await
        .unwrap();
        let r = c.send("POST", "/v1/token", None, None).await.unwrap();
        let tok = r.json()["token"].as_str().unwrap().to_owned();
        let r = c.send("GET", &path, Some(&tok), None).await.unwrap();
        assert_eq!(r.status, 200, "{r:?}");
        // Its review date passes: the same connection and token are refused.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let r = c.send("GET", &path, Some(&tok), None).await.unwrap();
        assert_eq!(r.status, 403, "{r:?}");
        assert_eq!(problem(&r), "certificate-review-lapsed");
        // Re-certified by a security administrator: answered again, without a restart.
        let o = ribat(
            &f.home,
            &[
                "identity",
                "recertify",
                "--name",
                "partner.x",
                "--review-by",
                &in_seconds(30 * 86_400),
            ],
        );
        assert!(
            text(&o).contains("re-certified 1 certificate(s) of `partner.x`"),
            "{}",
            text(&o)
        );
        // (The refused connection was closed; the partner connects again.)
        let mut c = Connection::open(
            tls_config(&f.ca, Some(&partner)),
            &gw.addr,
            "127.0.0.1",
            false,
        )
        .await
        .unwrap();
        let r = c.send("GET", &path, Some(&tok), None).await.unwrap();
        assert_eq!(r.status, 200, "{r:?}");
    });
    // A clerk is not reviewed.
    let o = ribat(
        &f.home,
        &[
            "identity",
            "recertify",
            "--name",
            "clerk.1",
            "--review-by",
            &in_seconds(86_400),
        ],
    );
    assert!(!o.status.success());
    assert!(
        text(&o).contains("only third parties' access"),
        "{}",
        text(&o)
    );
}
