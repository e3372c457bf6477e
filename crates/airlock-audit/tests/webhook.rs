//! The webhook sink against a real HTTPS server on 127.0.0.1: a small rustls server in a thread, with a test CA
//! made by rcgen. Nothing is mocked: the sink speaks TLS and HTTP/1.1 over real sockets.
//!
//! Every server binds port 0 on loopback, stops when dropped, and gives up after a fixed time; every wait is bounded.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use airlock_audit::sink::webhook::{WebhookOptions, WebhookSink};
use airlock_audit::sink::{ExportItem, ExportRecord, Sink, SinkOptions, SinkWorker};
use airlock_crypto::SecretBytes;
use serde_json::{Value, json};

const TOKEN: &str = "airlock-canary-TOKEN-5f3a9c1e";
const QUERY_SECRET: &str = "QUERY-CANARY-77d2";
/// The longest any server thread lives, whatever the test does.
const SERVER_LIFETIME: Duration = Duration::from_secs(60);
const WAIT: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------------------------------------------
// Test PKI

struct Pki {
    dir: tempfile::TempDir,
    server: Arc<rustls::ServerConfig>,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let (ca_pem, issuer) = make_ca("airlock test CA");
        std::fs::write(dir.path().join("ca.pem"), ca_pem).unwrap();
        let (other_pem, _) = make_ca("some other CA");
        std::fs::write(dir.path().join("other-ca.pem"), other_pem).unwrap();

        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()]).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, "127.0.0.1");
        let leaf = params.signed_by(&leaf_key, &issuer).unwrap();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
        let server = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![leaf.der().clone()], key)
            .unwrap();
        Pki { dir, server: Arc::new(server) }
    }

    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn other_ca(&self) -> PathBuf {
        self.dir.path().join("other-ca.pem")
    }

    fn options(&self) -> WebhookOptions {
        WebhookOptions {
            ca_pem: Some(self.ca()),
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
            ..WebhookOptions::default()
        }
    }
}

fn make_ca(name: &str) -> (String, rcgen::Issuer<'static, rcgen::KeyPair>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
    params.distinguished_name.push(rcgen::DnType::CommonName, name);
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), rcgen::Issuer::new(params, key))
}

// ---------------------------------------------------------------------------------------------------------------
// A small real HTTP/1.1 server (TLS or plain), one request per connection

#[derive(Debug, Clone)]
struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// The status the server answered with.
    status: u16,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Vec<Value> {
        serde_json::from_slice::<Vec<Value>>(&self.body).expect("body is a JSON array")
    }

    fn sequences(&self) -> Vec<u64> {
        self.json().iter().filter_map(|e| e["metadata"]["sequence"].as_u64()).collect()
    }
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
}

fn status(code: u16) -> Reply {
    Reply { status: code, headers: Vec::new() }
}

/// Decides the answer to the `n`th request (0-based) the server has seen.
type Handler = Arc<dyn Fn(&Request, usize) -> Reply + Send + Sync>;

struct Server {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(tls: Option<Arc<rustls::ServerConfig>>, handler: Handler) -> Server {
        Server::start_on("127.0.0.1:0".parse().unwrap(), tls, handler, Arc::default())
    }

    fn start_on(
        addr: SocketAddr,
        tls: Option<Arc<rustls::ServerConfig>>,
        handler: Handler,
        log: Arc<Mutex<Vec<Request>>>,
    ) -> Server {
        let listener = TcpListener::bind(addr).unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (stop2, log2) = (Arc::clone(&stop), Arc::clone(&log));
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + SERVER_LIFETIME;
            while !stop2.load(Ordering::Acquire) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let _ = serve(stream, tls.as_ref(), &handler, &log2);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Server { addr, log, stop, thread: Some(thread) }
    }

    fn url(&self, scheme: &str, path: &str) -> String {
        format!("{scheme}://{}{path}", self.addr)
    }

    fn requests(&self) -> Vec<Request> {
        self.log.lock().unwrap().clone()
    }

    /// Sequences of the batches the server accepted (2xx), in arrival order.
    fn accepted_sequences(&self) -> Vec<u64> {
        self.requests().iter().filter(|r| (200..300).contains(&r.status)).flat_map(Request::sequences).collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(
    stream: TcpStream,
    tls: Option<&Arc<rustls::ServerConfig>>,
    handler: &Handler,
    log: &Mutex<Vec<Request>>,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    match tls {
        Some(config) => {
            let conn = rustls::ServerConnection::new(Arc::clone(config)).map_err(std::io::Error::other)?;
            let mut tls = rustls::StreamOwned::new(conn, stream);
            serve_one(&mut tls, handler, log)?;
            tls.conn.send_close_notify();
            tls.flush()
        }
        None => {
            let mut stream = stream;
            serve_one(&mut stream, handler, log)
        }
    }
}

fn serve_one<S: Read + Write>(stream: &mut S, handler: &Handler, log: &Mutex<Vec<Request>>) -> std::io::Result<()> {
    let mut reader = BufReader::new(&mut *stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
    let mut headers = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some((n, v)) = line.trim_end().split_once(':') {
            headers.push((n.trim().to_string(), v.trim().to_string()));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map_or(0, |(_, v)| v.parse().unwrap_or(0));
    assert!(len <= 16 * 1024 * 1024, "test server: body too large");
    let mut body = vec![0; len];
    reader.read_exact(&mut body)?;
    drop(reader);

    let mut request = Request { method, target, headers, body, status: 0 };
    let n = log.lock().unwrap().len();
    let reply = handler(&request, n);
    request.status = reply.status;
    log.lock().unwrap().push(request);

    let mut head = format!("HTTP/1.1 {} Test\r\nContent-Length: 2\r\nConnection: close\r\n", reply.status);
    for (n, v) in &reply.headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\nok");
    stream.write_all(head.as_bytes())?;
    stream.flush()
}

fn always(code: u16) -> Handler {
    Arc::new(move |_, _| status(code))
}

// ---------------------------------------------------------------------------------------------------------------
// Helpers

fn record(seq: u64) -> Arc<ExportItem> {
    Arc::new(ExportItem::Record(ExportRecord {
        seq,
        logged_ms: 1_790_000_000_000 + seq as i64,
        event: json!({
            "class_uid": 6003,
            "activity_id": 1,
            "message": format!("event {seq}"),
            "metadata": { "version": "1.8.0", "sequence": seq, "product": { "name": "airlock" } },
        }),
    }))
}

fn records(seqs: impl IntoIterator<Item = u64>) -> Vec<Arc<ExportItem>> {
    seqs.into_iter().map(record).collect()
}

fn token() -> Option<SecretBytes> {
    Some(SecretBytes::copy_from(TOKEN.as_bytes()))
}

fn worker_options(fail_closed: bool) -> SinkOptions {
    SinkOptions {
        queue_capacity: 1000,
        batch_max: 64,
        retry_initial: Duration::from_millis(10),
        retry_max: Duration::from_millis(100),
        fail_closed,
    }
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn assert_no_secret(text: &str) {
    assert!(!text.contains(TOKEN), "token leaked into: {text}");
    assert!(!text.contains(QUERY_SECRET), "query string leaked into: {text}");
    assert!(!text.contains("canary"), "token fragment leaked into: {text}");
}

// ---------------------------------------------------------------------------------------------------------------
// Tests

#[test]
fn posts_a_json_array_with_content_type_and_bearer_token() {
    let pki = Pki::new();
    let server = Server::start(Some(Arc::clone(&pki.server)), always(200));
    let url = server.url("https", &format!("/ingest?key={QUERY_SECRET}"));
    let mut sink = WebhookSink::new(&url, token(), pki.options()).unwrap();

    sink.deliver(&records(1..=3)).unwrap();

    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.target, format!("/ingest?key={QUERY_SECRET}"), "the query is sent, just never shown");
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("authorization"), Some(format!("Bearer {TOKEN}").as_str()));
    assert!(r.header("user-agent").unwrap().starts_with("airlock-audit/"));
    assert_eq!(r.sequences(), vec![1, 2, 3]);
    assert_eq!(r.json()[1]["message"], "event 2");
    assert_eq!(sink.describe(), format!("webhook https://{}/ingest", server.addr));
}

#[test]
fn no_token_means_no_authorization_header() {
    let pki = Pki::new();
    let server = Server::start(Some(Arc::clone(&pki.server)), always(204));
    let mut sink = WebhookSink::new(&server.url("https", "/"), None, pki.options()).unwrap();
    sink.deliver(&records([7])).unwrap();
    let reqs = server.requests();
    assert_eq!(reqs[0].header("authorization"), None);
    assert_eq!(reqs[0].sequences(), vec![7]);
}

#[test]
fn checkpoints_are_sent_only_when_wanted() {
    let pki = Pki::new();
    let server = Server::start(Some(Arc::clone(&pki.server)), always(200));
    let checkpoint = Arc::new(ExportItem::Checkpoint { size: 2, note: "airlock.example/log\n2\nabc=\n".into() });
    let batch = vec![record(1), Arc::clone(&checkpoint), record(2)];

    let mut wanting =
        WebhookSink::new(&server.url("https", "/"), None, WebhookOptions { wants_checkpoints: true, ..pki.options() })
            .unwrap();
    assert!(wanting.wants_checkpoints());
    wanting.deliver(&batch).unwrap();

    let mut not_wanting = WebhookSink::new(&server.url("https", "/"), None, pki.options()).unwrap();
    assert!(!not_wanting.wants_checkpoints());
    not_wanting.deliver(&batch).unwrap();
    // A batch of nothing but an unwanted checkpoint sends nothing.
    not_wanting.deliver(std::slice::from_ref(&checkpoint)).unwrap();

    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    let with = reqs[0].json();
    assert_eq!(with.len(), 3);
    assert_eq!(with[1], json!({"airlock_checkpoint": {"size": 2, "note": "airlock.example/log\n2\nabc=\n"}}));
    assert_eq!(reqs[0].sequences(), vec![1, 2]);
    assert_eq!(reqs[1].json().len(), 2);
}

#[test]
fn plain_http_to_loopback_works() {
    let server = Server::start(None, always(200));
    let mut sink = WebhookSink::new(&server.url("http", "/collector"), token(), WebhookOptions::default()).unwrap();
    sink.deliver(&records(1..=2)).unwrap();
    assert_eq!(server.accepted_sequences(), vec![1, 2]);
    assert_eq!(sink.describe(), format!("webhook http://{}/collector", server.addr));
}

#[test]
fn non_2xx_is_an_error_naming_status_and_host() {
    let pki = Pki::new();
    for code in [400u16, 401, 404, 429, 500, 503] {
        let server = Server::start(Some(Arc::clone(&pki.server)), always(code));
        let url = server.url("https", &format!("/ingest?key={QUERY_SECRET}"));
        let mut sink = WebhookSink::new(&url, token(), pki.options()).unwrap();
        let err = sink.deliver(&records([1])).unwrap_err();
        assert!(err.0.contains(&code.to_string()), "{err}");
        assert!(err.0.contains(&server.addr.to_string()), "{err}");
        assert_no_secret(&err.0);
        assert_no_secret(&format!("{err:?}"));
    }
}

#[test]
fn token_and_query_never_appear_in_errors_debug_or_describe() {
    let pki = Pki::new();
    let mut texts = Vec::new();
    let path = format!("/ingest?key={QUERY_SECRET}");

    // Failures of every kind: an error status, a redirect, a TLS failure, a refused connection, a timeout.
    let failing = Server::start(Some(Arc::clone(&pki.server)), always(500));
    let redirecting = Server::start(
        Some(Arc::clone(&pki.server)),
        Arc::new(|_, _| Reply {
            status: 302,
            headers: vec![("Location".into(), format!("https://127.0.0.1:1/x?key={QUERY_SECRET}"))],
        }),
    );
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let hanging = Hanging::start();
    let cases = [
        (failing.url("https", &path), pki.options()),
        (redirecting.url("https", &path), pki.options()),
        (failing.url("https", &path), WebhookOptions { ca_pem: Some(pki.other_ca()), ..pki.options() }),
        (format!("https://{closed}{path}"), pki.options()),
        (
            format!("http://{}{path}", hanging.addr),
            WebhookOptions { request_timeout: Duration::from_millis(300), ..WebhookOptions::default() },
        ),
    ];
    for (url, options) in cases {
        let mut sink = WebhookSink::new(&url, token(), options).unwrap();
        let err = sink.deliver(&records([1])).unwrap_err();
        texts.push(err.0.clone());
        texts.push(format!("{err:?}"));
        texts.push(format!("{sink:?}"));
        texts.push(format!("{sink:#?}"));
        texts.push(sink.describe());
    }

    // And through the worker's status report.
    let sink = WebhookSink::new(&failing.url("https", &path), token(), pki.options()).unwrap();
    let worker = SinkWorker::start(Box::new(sink), worker_options(true));
    worker.offer(&records([1]));
    wait_for("a failure", || worker.status().failures > 0);
    texts.push(format!("{:?}", worker.status()));
    texts.push(worker.describe().to_string());
    drop(worker);

    for t in &texts {
        assert_no_secret(t);
    }
    assert!(texts.iter().any(|t| t.contains("<redacted>")), "Debug shows that a token is set");
}

#[test]
fn a_500_is_retried_and_everything_arrives_once_in_order() {
    let pki = Pki::new();
    // The first two requests fail, the rest succeed.
    let server = Server::start(Some(Arc::clone(&pki.server)), Arc::new(|_, n| status(if n < 2 { 500 } else { 200 })));
    let sink = WebhookSink::new(&server.url("https", "/"), token(), pki.options()).unwrap();
    let worker = SinkWorker::start(Box::new(sink), SinkOptions { batch_max: 2, ..worker_options(false) });
    for seq in 1..=5 {
        worker.offer(&records([seq]));
    }
    wait_for("all five delivered", || {
        let s = worker.status();
        s.delivered == 5 && s.queued == 0
    });
    let status = worker.shutdown(Duration::from_secs(2));
    assert!(status.healthy, "{status:?}");
    assert!(status.failures >= 2, "{status:?}");
    assert_eq!(server.accepted_sequences(), vec![1, 2, 3, 4, 5]);
}

#[test]
fn server_down_makes_the_sink_unhealthy_and_blocking_then_it_recovers_and_drains() {
    let pki = Pki::new();
    // Learn a free port, then leave nothing listening on it.
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let sink = WebhookSink::new(&format!("https://{addr}/ingest"), token(), pki.options()).unwrap();
    let worker = SinkWorker::start(Box::new(sink), worker_options(true));
    worker.offer(&records(1..=3));
    wait_for("unhealthy", || !worker.status().healthy);
    assert!(worker.blocks_appends(), "fail-closed sink blocks appends while down");
    let status = worker.status();
    assert!(status.last_error.as_deref().unwrap().contains(&addr.to_string()), "{status:?}");
    assert_eq!(status.queued, 3);
    worker.offer(&records(4..=5));

    // The server comes back on the same address.
    let server = Server::start_on(addr, Some(Arc::clone(&pki.server)), always(200), Arc::default());
    wait_for("healthy and drained", || {
        let s = worker.status();
        s.healthy && s.queued == 0 && s.delivered == 5
    });
    assert!(!worker.blocks_appends());
    assert_eq!(server.accepted_sequences(), vec![1, 2, 3, 4, 5]);
}

#[test]
fn a_full_queue_drops_the_oldest_and_counts_them() {
    let pki = Pki::new();
    let up = Arc::new(AtomicBool::new(false));
    let up2 = Arc::clone(&up);
    let server = Server::start(
        Some(Arc::clone(&pki.server)),
        Arc::new(move |_, _| status(if up2.load(Ordering::Acquire) { 200 } else { 503 })),
    );
    let sink = WebhookSink::new(&server.url("https", "/"), token(), pki.options()).unwrap();
    let worker = SinkWorker::start(Box::new(sink), SinkOptions { queue_capacity: 3, ..worker_options(false) });
    // One offer of ten into a queue of three: the seven oldest go.
    worker.offer(&records(1..=10));
    let status = worker.status();
    assert_eq!(status.dropped, 7, "{status:?}");
    assert!(!status.healthy);
    wait_for("a failed attempt", || worker.status().failures > 0);

    up.store(true, Ordering::Release);
    wait_for("drained", || {
        let s = worker.status();
        s.queued == 0 && s.delivered == 3
    });
    let status = worker.shutdown(Duration::from_secs(2));
    assert_eq!(status.dropped, 7);
    assert!(status.healthy);
    assert_eq!(server.accepted_sequences(), vec![8, 9, 10]);
}

#[test]
fn a_redirect_is_not_followed_and_the_token_goes_nowhere_else() {
    let pki = Pki::new();
    let elsewhere = Server::start(Some(Arc::clone(&pki.server)), always(200));
    let target = elsewhere.url("https", "/stolen");
    for code in [301u16, 302, 307, 308] {
        let location = target.clone();
        let redirecting = Server::start(
            Some(Arc::clone(&pki.server)),
            Arc::new(move |_, _| Reply { status: code, headers: vec![("Location".into(), location.clone())] }),
        );
        let mut sink = WebhookSink::new(&redirecting.url("https", "/"), token(), pki.options()).unwrap();
        let err = sink.deliver(&records([1])).unwrap_err();
        assert!(err.0.contains(&code.to_string()) && err.0.contains("not followed"), "{err}");
        assert!(!err.0.contains("/stolen"), "the Location is not shown: {err}");
        assert_eq!(redirecting.requests().len(), 1);
    }
    assert!(elsewhere.requests().is_empty(), "nothing, and so no token, reached the redirect target");
}

#[test]
fn a_server_certificate_from_another_ca_is_refused() {
    let pki = Pki::new();
    let server = Server::start(Some(Arc::clone(&pki.server)), always(200));
    let url = server.url("https", "/");

    let mut wrong_ca =
        WebhookSink::new(&url, token(), WebhookOptions { ca_pem: Some(pki.other_ca()), ..pki.options() }).unwrap();
    let err = wrong_ca.deliver(&records([1])).unwrap_err();
    assert!(err.0.contains("TLS") || err.0.to_lowercase().contains("certificate"), "{err}");

    // The built-in roots (no ca_pem) do not include the test CA either.
    let mut public_roots = WebhookSink::new(&url, token(), WebhookOptions { ca_pem: None, ..pki.options() }).unwrap();
    public_roots.deliver(&records([1])).unwrap_err();

    assert!(server.requests().is_empty(), "no request was sent over an unverified connection");
}

#[test]
fn url_rules_are_enforced_at_construction() {
    let refused = [
        ("http://example.com/ingest", "loopback"),
        ("http://10.0.0.1/ingest", "loopback"),
        ("http://localhost:8080/ingest", "loopback"),
        ("http://127.0.0.1.example.com/", "loopback"),
        ("ftp://127.0.0.1/", "scheme"),
        ("https://user:hunter2-canary@siem.example/ingest", "credentials"),
        ("https://user@siem.example/ingest", "credentials"),
        ("https://siem.example/ingest#frag", "fragment"),
        ("https://siem.example:99999/", "port"),
        ("https://siem.example:0/", "port"),
        ("https:///ingest", "URL"),
        ("/relative/path", ""),
        ("not a url", "URL"),
    ];
    for (url, why) in refused {
        let err = WebhookSink::new(url, token(), WebhookOptions::default()).unwrap_err();
        assert!(err.0.contains(why), "{url}: {err}");
        assert!(!err.0.contains("hunter2"), "{err}");
        assert_no_secret(&err.0);
    }

    let accepted = [
        ("http://127.0.0.1:9/x", "webhook http://127.0.0.1:9/x"),
        ("http://127.0.0.2/", "webhook http://127.0.0.2:80/"),
        ("http://[::1]:9/x", "webhook http://[::1]:9/x"),
        ("https://siem.example:8443/ingest?key=QUERY-CANARY-77d2", "webhook https://siem.example:8443/ingest"),
        ("https://siem.example", "webhook https://siem.example:443/"),
        ("HTTPS://siem.example/a", "webhook https://siem.example:443/a"),
    ];
    for (url, shown) in accepted {
        let sink = WebhookSink::new(url, token(), WebhookOptions::default()).unwrap();
        assert_eq!(sink.describe(), shown);
        assert_no_secret(&format!("{sink:?}"));
    }
}

#[test]
fn bad_tokens_and_ca_files_are_refused_without_echoing_them() {
    for bad in ["tok\r\nX-Injected: 1-canary", "with space canary", ""] {
        let token = Some(SecretBytes::copy_from(bad.as_bytes()));
        let err = WebhookSink::new("https://siem.example/", token, WebhookOptions::default()).unwrap_err();
        assert!(err.0.contains("token"), "{err}");
        assert!(!err.0.contains("canary") && !err.0.contains("Injected"), "{err}");
    }

    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let err = WebhookSink::new(
        "https://siem.example/",
        None,
        WebhookOptions { ca_pem: Some(missing), ..WebhookOptions::default() },
    )
    .unwrap_err();
    assert!(err.0.contains("missing.pem"), "{err}");

    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "no certificates here\n").unwrap();
    let err = WebhookSink::new(
        "https://siem.example/",
        None,
        WebhookOptions { ca_pem: Some(empty), ..WebhookOptions::default() },
    )
    .unwrap_err();
    assert!(err.0.contains("no certificate"), "{err}");
}

#[test]
fn a_big_batch_is_split_across_posts_in_order() {
    let pki = Pki::new();
    let server = Server::start(Some(Arc::clone(&pki.server)), always(200));
    let limit = 4096;
    let mut sink =
        WebhookSink::new(&server.url("https", "/"), token(), WebhookOptions { max_body_bytes: limit, ..pki.options() })
            .unwrap();
    sink.deliver(&records(1..=60)).unwrap();

    let reqs = server.requests();
    assert!(reqs.len() > 1, "split into several POSTs");
    for r in &reqs {
        assert!(r.body.len() <= limit, "body of {} bytes over the limit", r.body.len());
        assert_eq!(r.header("authorization"), Some(format!("Bearer {TOKEN}").as_str()));
    }
    assert_eq!(server.accepted_sequences(), (1..=60).collect::<Vec<_>>());
}

#[test]
fn after_a_partial_failure_the_retry_sends_only_what_was_not_accepted() {
    let pki = Pki::new();
    // The second POST fails once; everything else is accepted.
    let server = Server::start(Some(Arc::clone(&pki.server)), Arc::new(|_, n| status(if n == 1 { 502 } else { 200 })));
    let mut sink =
        WebhookSink::new(&server.url("https", "/"), token(), WebhookOptions { max_body_bytes: 2048, ..pki.options() })
            .unwrap();
    let batch = records(1..=40);
    let err = sink.deliver(&batch).unwrap_err();
    assert!(err.0.contains("502"), "{err}");
    let accepted_before = server.accepted_sequences();
    assert!(!accepted_before.is_empty() && accepted_before.len() < 40);

    // The worker retries with the same items.
    sink.deliver(&batch).unwrap();
    assert_eq!(server.accepted_sequences(), (1..=40).collect::<Vec<_>>(), "each record accepted exactly once");
}

#[test]
fn a_server_that_never_answers_times_out() {
    let hanging = Hanging::start();
    let mut sink = WebhookSink::new(
        &format!("http://{}/", hanging.addr),
        token(),
        WebhookOptions { request_timeout: Duration::from_millis(300), ..WebhookOptions::default() },
    )
    .unwrap();
    let started = Instant::now();
    let err = sink.deliver(&records([1])).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    assert!(err.0.contains("timed out"), "{err}");
}

/// Accepts connections and never answers, until dropped (or its lifetime ends).
struct Hanging {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Hanging {
    fn start() -> Hanging {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            let deadline = Instant::now() + SERVER_LIFETIME;
            while !stop2.load(Ordering::Acquire) && Instant::now() < deadline {
                if let Ok((s, _)) = listener.accept() {
                    held.push(s);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        Hanging { addr, stop, thread: Some(thread) }
    }
}

impl Drop for Hanging {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
