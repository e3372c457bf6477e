//! A load generator for HTTPS through a forward proxy: each connection sends `CONNECT`, starts TLS inside the tunnel
//! and then sends keep-alive GETs until the time is up. It prints one JSON line: requests, requests/s, latency
//! percentiles and errors.
//!
//! Why our own: wrk and oha do not tunnel HTTPS through a proxy, and a Python client would be slower than the
//! proxies it measures. Used by `scripts/bench-broker.sh` for the intercepted-HTTPS comparison with mitmproxy.
//!
//! ```text
//! cargo run --release -p airlock-broker --example tunnel_load -- \
//!     --proxy 127.0.0.1:8080 --connect bench.example.com:8443 --sni bench.example.com --path /1k.bin \
//!     --ca upstream-or-proxy-ca.pem --header 'authorization: Bearer SURROGATE' --connections 16 --seconds 10
//! ```
//! Without `--proxy` it connects straight to `--connect` (the baseline).

use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Options {
    proxy: Option<String>,
    connect: String,
    sni: String,
    path: String,
    ca: String,
    headers: Vec<(String, String)>,
    connections: usize,
    seconds: u64,
}

fn usage(why: &str) -> ! {
    eprintln!(
        "tunnel_load: {why}\nusage: tunnel_load [--proxy HOST:PORT] --connect HOST:PORT --sni NAME --path /p --ca PEM \
         [--header 'name: value']... [--connections N] [--seconds S]"
    );
    std::process::exit(2)
}

fn options() -> Options {
    let mut o = Options {
        proxy: None,
        connect: String::new(),
        sni: String::new(),
        path: "/".into(),
        ca: String::new(),
        headers: Vec::new(),
        connections: 1,
        seconds: 10,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        match flag.as_str() {
            "--proxy" => o.proxy = Some(value()),
            "--connect" => o.connect = value(),
            "--sni" => o.sni = value(),
            "--path" => o.path = value(),
            "--ca" => o.ca = value(),
            "--header" => {
                let h = value();
                let (n, v) = h.split_once(':').unwrap_or_else(|| usage("--header wants 'name: value'"));
                o.headers.push((n.trim().to_string(), v.trim().to_string()));
            }
            "--connections" => o.connections = value().parse().unwrap_or_else(|_| usage("--connections: a number")),
            "--seconds" => o.seconds = value().parse().unwrap_or_else(|_| usage("--seconds: a number")),
            other => usage(&format!("unknown flag {other}")),
        }
    }
    if o.connect.is_empty() || o.sni.is_empty() || o.ca.is_empty() {
        usage("--connect, --sni and --ca are required");
    }
    o
}

fn tls_config(ca: &str) -> Arc<rustls::ClientConfig> {
    let pem = std::fs::read(ca).unwrap_or_else(|e| usage(&format!("--ca {ca}: {e}")));
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(&pem) {
        let cert: rustls::pki_types::CertificateDer<'static> = cert.unwrap_or_else(|e| usage(&format!("--ca: {e}")));
        roots.add(cert).unwrap_or_else(|e| usage(&format!("--ca: {e}")));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// One TCP connection to the origin, through the proxy's tunnel when there is a proxy.
async fn open(o: &Options) -> std::io::Result<TcpStream> {
    let Some(proxy) = &o.proxy else { return TcpStream::connect(&o.connect).await };
    let mut s = TcpStream::connect(proxy).await?;
    s.set_nodelay(true)?;
    s.write_all(format!("CONNECT {0} HTTP/1.1\r\nHost: {0}\r\n\r\n", o.connect).as_bytes()).await?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).await? == 0 || head.len() > 16 * 1024 {
            return Err(std::io::Error::other("the proxy closed during CONNECT"));
        }
        head.push(byte[0]);
    }
    let line = String::from_utf8_lossy(&head);
    if !line.starts_with("HTTP/1.1 200") && !line.starts_with("HTTP/1.0 200") {
        return Err(std::io::Error::other(format!("CONNECT refused: {}", line.lines().next().unwrap_or(""))));
    }
    Ok(s)
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
}

async fn connection(o: Arc<Options>, tls: tokio_rustls::TlsConnector, until: Instant) -> Tally {
    let mut t = Tally::default();
    while Instant::now() < until {
        let result = async {
            let tcp = open(&o).await?;
            let name = rustls::pki_types::ServerName::try_from(o.sni.clone()).map_err(std::io::Error::other)?;
            let tls = tls.connect(name, tcp).await?;
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.map_err(std::io::Error::other)?;
            tokio::spawn(conn);
            while Instant::now() < until {
                let mut req = hyper::Request::get(o.path.as_str()).header("host", o.connect.as_str());
                for (n, v) in &o.headers {
                    req = req.header(n.as_str(), v.as_str());
                }
                let req = req.body(Empty::<Bytes>::new()).map_err(std::io::Error::other)?;
                let start = Instant::now();
                let resp = sender.send_request(req).await.map_err(std::io::Error::other)?;
                let status = resp.status();
                resp.into_body().collect().await.map_err(std::io::Error::other)?;
                if status != hyper::StatusCode::OK {
                    return Err(std::io::Error::other(format!("status {status}")));
                }
                t.latencies_us.push(start.elapsed().as_micros().min(u32::MAX as u128) as u32);
            }
            Ok::<_, std::io::Error>(())
        }
        .await;
        if let Err(e) = result {
            t.errors += 1;
            t.first_error.get_or_insert(e.to_string());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    t
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let o = Arc::new(options());
    let tls = tokio_rustls::TlsConnector::from(tls_config(&o.ca));
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let start = Instant::now();
    let until = start + Duration::from_secs(o.seconds);
    let tallies = runtime.block_on(async {
        let tasks: Vec<_> =
            (0..o.connections).map(|_| tokio::spawn(connection(Arc::clone(&o), tls.clone(), until))).collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.expect("connection task"));
        }
        out
    });
    let elapsed = start.elapsed().as_secs_f64();
    let mut all: Vec<u32> = tallies.iter().flat_map(|t| t.latencies_us.iter().copied()).collect();
    all.sort_unstable();
    let errors: u64 = tallies.iter().map(|t| t.errors).sum();
    let first_error = tallies.iter().find_map(|t| t.first_error.clone()).unwrap_or_default();
    println!(
        "{{\"requests\":{},\"rps\":{:.0},\"p50_us\":{},\"p99_us\":{},\"errors\":{},\"first_error\":{:?}}}",
        all.len(),
        all.len() as f64 / elapsed,
        percentile(&all, 0.50),
        percentile(&all, 0.99),
        errors,
        first_error
    );
}
