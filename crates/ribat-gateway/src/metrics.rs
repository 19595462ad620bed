//! Prometheus text exposition of the gateway's counters. Labels are routes (templates,
//! never paths with values), status codes and problem types: no personal data.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::Ordering;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Debug, Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    n: u64,
}

/// The gateway's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    problems: Mutex<BTreeMap<String, u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
}

impl Metrics {
    /// Counts one answered request.
    pub fn observe(&self, route: &str, status: u16, seconds: f64) {
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((route.to_owned(), status)).or_default() += 1;
        }
        if let Ok(mut m) = self.latency.lock() {
            let h = m.entry(route.to_owned()).or_default();
            if h.counts.is_empty() {
                h.counts = vec![0; BUCKETS.len()];
            }
            for (i, b) in BUCKETS.iter().enumerate() {
                if seconds <= *b {
                    h.counts[i] += 1;
                }
            }
            h.sum += seconds;
            h.n += 1;
        }
    }

    /// Counts one problem by its type.
    pub fn problem(&self, slug: &str) {
        if let Ok(mut m) = self.problems.lock() {
            *m.entry(slug.to_owned()).or_default() += 1;
        }
    }

    /// The exposition text.
    pub fn render(&self, tls: &ribat_net::listener::TlsStats) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# HELP ribat_requests_total API requests answered, by route and status."
        );
        let _ = writeln!(s, "# TYPE ribat_requests_total counter");
        if let Ok(m) = self.requests.lock() {
            for ((route, status), n) in m.iter() {
                let _ = writeln!(
                    s,
                    "ribat_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
                );
            }
        }
        let _ = writeln!(
            s,
            "# HELP ribat_problems_total Refusals and errors, by problem type."
        );
        let _ = writeln!(s, "# TYPE ribat_problems_total counter");
        if let Ok(m) = self.problems.lock() {
            for (slug, n) in m.iter() {
                let _ = writeln!(s, "ribat_problems_total{{type=\"{slug}\"}} {n}");
            }
        }
        let _ = writeln!(s, "# HELP ribat_request_seconds Time to answer, by route.");
        let _ = writeln!(s, "# TYPE ribat_request_seconds histogram");
        if let Ok(m) = self.latency.lock() {
            for (route, h) in m.iter() {
                for (i, b) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        s,
                        "ribat_request_seconds_bucket{{route=\"{route}\",le=\"{b}\"}} {}",
                        h.counts.get(i).copied().unwrap_or(0)
                    );
                }
                let _ = writeln!(
                    s,
                    "ribat_request_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                    h.n
                );
                let _ = writeln!(
                    s,
                    "ribat_request_seconds_sum{{route=\"{route}\"}} {}",
                    h.sum
                );
                let _ = writeln!(
                    s,
                    "ribat_request_seconds_count{{route=\"{route}\"}} {}",
                    h.n
                );
            }
        }
        let _ = writeln!(
            s,
            "# HELP ribat_tls_handshake_failures_total Connections refused before HTTP (no, unknown, expired or revoked client certificate)."
        );
        let _ = writeln!(s, "# TYPE ribat_tls_handshake_failures_total counter");
        let _ = writeln!(
            s,
            "ribat_tls_handshake_failures_total {}",
            tls.handshake_failures.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            s,
            "# HELP ribat_tls_connections_total Connections accepted with a valid client certificate."
        );
        let _ = writeln!(s, "# TYPE ribat_tls_connections_total counter");
        let _ = writeln!(
            s,
            "ribat_tls_connections_total {}",
            tls.accepted.load(Ordering::Relaxed)
        );
        s
    }
}
