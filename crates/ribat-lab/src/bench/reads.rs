//! Single-person reads through a running gateway, as `bench api` and `bench mesh` time them:
//! C clients, each on its own connection, a pension batch's certificate and token.

use ribat_net::client::Connection;
use std::sync::Arc;
use std::time::Instant;

type Result<T, E = super::BenchError> = std::result::Result<T, E>;

/// What a timed run gave.
#[derive(Debug, Clone)]
pub struct Latencies {
    /// Wall time of the run.
    pub seconds: f64,
    /// Each read's latency, ms, sorted.
    pub ms: Vec<f64>,
    /// Reads that did not answer 200.
    pub errors: usize,
}

/// The `p` quantile (0–1) of sorted figures, 0 when there are none.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// `requests` reads of the persons `cnss` (in turn) through the gateway at `addr` by
/// `clients` concurrent connections, after a warm-up of 20 reads per client; the identity
/// of `cfg` reads under purpose `pension-run`.
pub fn time_reads(
    rt: &tokio::runtime::Runtime,
    cfg: &ribat_net::client::ClientSide,
    addr: &str,
    cnss: &Arc<Vec<String>>,
    requests: usize,
    clients: usize,
) -> Result<Latencies> {
    let token = rt.block_on(async {
        let mut c = Connection::open(cfg.clone(), addr, "127.0.0.1", false).await?;
        crate::api_client::token(&mut c, 900).await
    })?;
    let run = |requests: usize| -> Result<Latencies> {
        rt.block_on(async {
            let per = requests.div_ceil(clients);
            let start = Instant::now();
            let mut tasks = Vec::new();
            for w in 0..clients {
                let (cfg, addr, token, cnss) =
                    (cfg.clone(), addr.to_owned(), token.clone(), cnss.clone());
                tasks.push(tokio::spawn(async move {
                    let mut lat = Vec::with_capacity(per);
                    let mut errors = 0;
                    let mut c = Connection::open(cfg, &addr, "127.0.0.1", false).await?;
                    for k in 0..per {
                        let n = &cnss[(w * per + k) % cnss.len()];
                        let t = Instant::now();
                        let r = c
                            .send(
                                "GET",
                                &format!("/v1/persons/{n}?purpose=pension-run"),
                                Some(&token),
                                None,
                            )
                            .await?;
                        lat.push(t.elapsed().as_secs_f64() * 1e3);
                        if r.status != 200 {
                            errors += 1;
                        }
                    }
                    Ok::<_, ribat_node::NodeError>((lat, errors))
                }));
            }
            let mut ms = Vec::new();
            let mut errors = 0;
            for t in tasks {
                let (lat, e) = t.await??;
                ms.extend(lat);
                errors += e;
            }
            let seconds = start.elapsed().as_secs_f64();
            ms.sort_by(f64::total_cmp);
            Ok(Latencies {
                seconds,
                ms,
                errors,
            })
        })
    };
    run((clients * 20).min(2_000))?;
    run(requests)
}
