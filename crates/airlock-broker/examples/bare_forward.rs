//! The floor under the broker's per-request cost: the same hyper server, upstream pool and runtime, with no decision,
//! SSRF check, leak scan, injection or audit. `scripts/bench-broker.sh` does not use it; it exists so that a
//! benchmark result can be split into what the pipeline costs and what hyper, tokio and the kernel cost.
//!
//! ```text
//! cargo run --release -p airlock-broker --example bare_forward -- 127.0.0.1:8080
//! ```
//! Forwards absolute-form `http://IP:PORT/...` requests (IP literals only: nothing is resolved).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use airlock_broker::upstream::{Body, BoxError, Destination, Upstreams};
use http_body_util::BodyExt;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

async fn forward(up: Arc<Upstreams>, req: hyper::Request<hyper::body::Incoming>) -> hyper::Response<Body> {
    let (mut parts, body) = req.into_parts();
    let addr = parts.uri.authority().and_then(|a| a.as_str().parse().ok());
    let Some(addr) = addr else {
        let mut r = hyper::Response::new(http_body_util::Empty::new().map_err(|never| match never {}).boxed());
        *r.status_mut() = hyper::StatusCode::BAD_REQUEST;
        return r;
    };
    parts.uri = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/").parse().expect("origin form");
    let req = hyper::Request::from_parts(parts, body.map_err(BoxError::from).boxed());
    match up.send(&[Destination { addr, tls: None }], req).await {
        Ok((resp, _)) => resp.map(|b| b.map_err(BoxError::from).boxed()),
        Err(_) => {
            let mut r = hyper::Response::new(http_body_util::Empty::new().map_err(|never| match never {}).boxed());
            *r.status_mut() = hyper::StatusCode::BAD_GATEWAY;
            r
        }
    }
}

fn main() {
    let listen = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8080".into());
    let tls = airlock_broker::upstream::client_tls_config(&[]).expect("TLS config");
    let up = Arc::new(Upstreams::new(tls, Duration::from_secs(10), Duration::from_secs(60)));
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&listen).await.expect("bind");
        loop {
            let (stream, _) = listener.accept().await.expect("accept");
            let _ = stream.set_nodelay(true);
            let up = Arc::clone(&up);
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let up = Arc::clone(&up);
                    async move { Ok::<_, Infallible>(forward(up, req).await) }
                });
                let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
}
