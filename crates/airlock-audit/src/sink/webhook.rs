//! Webhook sink: POSTs batches of OCSF events as a JSON array to a SIEM's HTTPS endpoint.
//!
//! Why it is this strict: the request carries the whole audit trail and, usually, a bearer token. So:
//!
//! - **HTTPS only**, except `http://` to a loopback literal (`127.0.0.0/8`, `[::1]`): a local collector
//!   (Vector, Fluent Bit, an OpenTelemetry agent) or a test. Loopback traffic never leaves the host. `localhost`
//!   is refused because it is a name, and what a name resolves to can be changed.
//! - **No userinfo in the URL**: credentials belong in the token, which is held zeroized and never printed. A URL's
//!   query string is sent but never shown either (some SIEMs take an API key there).
//! - **Redirects are never followed**: a 3xx could send the records and the token to another host. It is a failure.
//! - **No proxy from the environment**: `HTTPS_PROXY` is meant for tools in the sandbox, not for the daemon's export.
//! - **Trust roots**: Mozilla's roots compiled in (`webpki-roots`), so a tampered system store does not matter; or,
//!   with [`WebhookOptions::ca_pem`], only the given CA(s), for private SIEMs and tests.
//! - TLS is rustls with the *ring* provider, set explicitly so a process-wide default cannot change it.
//!
//! Every non-2xx answer is an error, 4xx included: the worker retries with backoff and reports the sink unhealthy.
//! A 401 or 400 will not fix itself, but dropping audit records is worse than a stuck export that an operator can
//! see (`last_error` names the status) and fix; the local log still holds everything.
//!
//! A batch whose JSON exceeds [`WebhookOptions::max_body_bytes`] is split across several POSTs, in order. If a later
//! POST fails, the ones already accepted are not sent again on the retry of the same items.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use airlock_crypto::SecretBytes;
use ureq::http::header::{AUTHORIZATION, CONTENT_TYPE, LOCATION};
use ureq::http::{HeaderValue, Uri};
use ureq::tls::{RootCerts, TlsConfig, TlsProvider};
use zeroize::Zeroizing;

use super::{ExportItem, Sink, SinkError};

/// Settings for a [`WebhookSink`].
#[derive(Debug, Clone)]
pub struct WebhookOptions {
    /// PEM file of the CA certificate(s) to trust *instead of* the built-in Mozilla roots. Use for a private SIEM or
    /// a test server. `None`: the built-in roots.
    pub ca_pem: Option<PathBuf>,
    /// Limit for establishing the TCP connection.
    pub connect_timeout: Duration,
    /// Limit for one whole POST: resolve, connect, TLS, send, and the response.
    pub request_timeout: Duration,
    /// Send signed checkpoints too, as `{"airlock_checkpoint": {"size": N, "note": "..."}}` array elements.
    pub wants_checkpoints: bool,
    /// Largest JSON body per POST; a bigger batch is split. A single item larger than this is sent alone.
    pub max_body_bytes: usize,
}

impl Default for WebhookOptions {
    fn default() -> Self {
        WebhookOptions {
            ca_pem: None,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            wants_checkpoints: false,
            max_body_bytes: 4 * 1024 * 1024,
        }
    }
}

/// Delivers export batches by HTTP POST. See the module docs for the rules it enforces.
pub struct WebhookSink {
    agent: ureq::Agent,
    /// The full URL, query included. Never printed.
    uri: Uri,
    /// `scheme://host:port/path`: no userinfo (refused anyway), no query.
    shown: String,
    /// `host:port`, for error messages.
    host: String,
    token: Option<SecretBytes>,
    wants_checkpoints: bool,
    max_body_bytes: usize,
    /// Items of the current batch that an earlier, partly failed attempt already delivered, so that the worker's
    /// retry of the same batch does not send them twice. Held as `Arc`s and compared by identity.
    already_sent: Vec<Arc<ExportItem>>,
}

impl fmt::Debug for WebhookSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSink")
            .field("url", &self.shown)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("wants_checkpoints", &self.wants_checkpoints)
            .field("max_body_bytes", &self.max_body_bytes)
            .finish_non_exhaustive()
    }
}

impl WebhookSink {
    /// Checks `url` against the module's rules and builds the client. `token`, when given, is sent as
    /// `Authorization: Bearer <token>`; it must be visible ASCII.
    pub fn new(url: &str, token: Option<SecretBytes>, options: WebhookOptions) -> Result<WebhookSink, SinkError> {
        let target = Target::parse(url)?;
        if let Some(t) = &token
            && (t.is_empty() || !t.expose().iter().all(|b| (0x21..=0x7e).contains(b)))
        {
            // Checked here so a bad token fails at configuration, not as a header error on every retry.
            return Err(SinkError("webhook token must be non-empty visible ASCII (no spaces or line breaks)".into()));
        }
        if options.max_body_bytes < 2 {
            return Err(SinkError("webhook max_body_bytes must be at least 2".into()));
        }
        let roots = match &options.ca_pem {
            None => RootCerts::WebPki,
            Some(path) => load_roots(path)?,
        };
        let tls = TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .root_certs(roots)
            .build();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(None)
            .timeout_connect(Some(options.connect_timeout))
            .timeout_global(Some(options.request_timeout))
            .user_agent(concat!("airlock-audit/", env!("CARGO_PKG_VERSION")))
            .tls_config(tls)
            .build()
            .into();
        Ok(WebhookSink {
            agent,
            uri: target.uri,
            shown: target.shown,
            host: target.host,
            token,
            wants_checkpoints: options.wants_checkpoints,
            max_body_bytes: options.max_body_bytes,
            already_sent: Vec::new(),
        })
    }

    /// Sends `items` in as many POSTs as the size limit needs. On failure, returns how many leading items were
    /// accepted before it.
    fn post_all(&self, items: &[Arc<ExportItem>]) -> Result<(), (usize, SinkError)> {
        let mut body: Vec<u8> = Vec::new();
        // Items covered by `body`, and items accepted by the server so far (both counted in `items`).
        let mut in_body = 0usize;
        let mut accepted = 0usize;
        for (i, item) in items.iter().enumerate() {
            let Some(encoded) = self.encode(item).map_err(|e| (accepted, e))? else {
                // Not for this sink (a checkpoint it does not want): count it as covered.
                if body.is_empty() {
                    accepted = i + 1;
                }
                in_body = i + 1;
                continue;
            };
            // `[` + items joined by `,` + `]`.
            if !body.is_empty() && body.len() + 1 + encoded.len() + 1 > self.max_body_bytes {
                body.push(b']');
                self.post(&body).map_err(|e| (accepted, e))?;
                accepted = in_body;
                body.clear();
            }
            body.push(if body.is_empty() { b'[' } else { b',' });
            body.extend_from_slice(&encoded);
            in_body = i + 1;
        }
        if !body.is_empty() {
            body.push(b']');
            self.post(&body).map_err(|e| (accepted, e))?;
        }
        Ok(())
    }

    /// The JSON of one item, or `None` when this sink does not send it.
    fn encode(&self, item: &ExportItem) -> Result<Option<Vec<u8>>, SinkError> {
        let value = match item {
            ExportItem::Record(r) => serde_json::to_vec(&r.event),
            ExportItem::Checkpoint { .. } if !self.wants_checkpoints => return Ok(None),
            ExportItem::Checkpoint { size, note } => {
                serde_json::to_vec(&serde_json::json!({ "airlock_checkpoint": { "size": size, "note": note } }))
            }
        };
        value.map(Some).map_err(|e| SinkError(format!("webhook {}: cannot encode an item: {e}", self.host)))
    }

    fn post(&self, body: &[u8]) -> Result<(), SinkError> {
        let mut request = self.agent.post(self.uri.clone()).header(CONTENT_TYPE, "application/json");
        if let Some(token) = &self.token {
            // Our copies are zeroized; the header value and the buffers inside the HTTP and TLS stack are not, and
            // cannot be from here. `set_sensitive` keeps the value out of `Debug` output.
            let mut bearer = Zeroizing::new(Vec::with_capacity(7 + token.len()));
            bearer.extend_from_slice(b"Bearer ");
            bearer.extend_from_slice(token.expose());
            let mut value = HeaderValue::from_bytes(&bearer)
                .map_err(|_| SinkError(format!("webhook {}: token is not a valid header value", self.host)))?;
            value.set_sensitive(true);
            request = request.header(AUTHORIZATION, value);
        }
        let mut response = request.send(body).map_err(|e| self.transport_error(&e))?;
        let status = response.status();
        if status.is_success() {
            // Read a little of the body so the connection can be reused; its content does not matter.
            let _ = response.body_mut().with_config().limit(64 * 1024).read_to_vec();
            return Ok(());
        }
        let code = status.as_u16();
        let what = if status.is_redirection() {
            // The Location is not shown: it may carry a credential of its own.
            let has_location = response.headers().contains_key(LOCATION);
            format!("redirect {code} not followed{}", if has_location { " (Location withheld)" } else { "" })
        } else if status.is_client_error() {
            format!("rejected with HTTP {code}{}", client_hint(code))
        } else {
            format!("HTTP {code}")
        };
        Err(SinkError(format!("webhook {}: {what}", self.host)))
    }

    fn transport_error(&self, e: &ureq::Error) -> SinkError {
        let what = match e {
            ureq::Error::Timeout(t) => format!("timed out ({t})"),
            ureq::Error::HostNotFound => "host not found".to_string(),
            ureq::Error::ConnectionFailed => "connection failed".to_string(),
            ureq::Error::Io(io) => format!("connection error: {io}"),
            ureq::Error::Rustls(tls) => format!("TLS error: {tls}"),
            ureq::Error::Tls(tls) => format!("TLS error: {tls}"),
            other => other.to_string(),
        };
        SinkError(format!("webhook {}: {}", self.host, self.scrub(what)))
    }

    /// Belt and braces: none of the messages above should hold the URL's query or the token, but they come partly
    /// from other libraries, so both are cut out if they appear.
    fn scrub(&self, mut message: String) -> String {
        if let Some(q) = self.uri.query().filter(|q| !q.is_empty()) {
            message = message.replace(q, "<redacted>");
        }
        if let Some(token) = &self.token
            && let Ok(t) = std::str::from_utf8(token.expose())
        {
            message = message.replace(t, "<redacted>");
        }
        message
    }
}

impl Sink for WebhookSink {
    fn describe(&self) -> String {
        format!("webhook {}", self.shown)
    }

    fn deliver(&mut self, items: &[Arc<ExportItem>]) -> Result<(), SinkError> {
        // Skip the leading items that a failed earlier attempt at this batch already got accepted.
        let skip = items.iter().take_while(|i| self.already_sent.iter().any(|s| Arc::ptr_eq(s, i))).count();
        self.already_sent.clear();
        match self.post_all(&items[skip..]) {
            Ok(()) => Ok(()),
            Err((accepted, e)) => {
                self.already_sent = items[..skip + accepted].to_vec();
                Err(e)
            }
        }
    }

    fn wants_checkpoints(&self) -> bool {
        self.wants_checkpoints
    }
}

/// A hint for a 4xx, so the operator knows whether waiting helps.
fn client_hint(code: u16) -> &'static str {
    match code {
        401 | 403 => " (check the webhook token; retrying)",
        408 | 429 => " (retrying)",
        413 => " (body too large: lower max_body_bytes; retrying)",
        _ => " (retrying; records stay queued)",
    }
}

/// A checked webhook URL.
struct Target {
    uri: Uri,
    shown: String,
    host: String,
}

impl Target {
    fn parse(url: &str) -> Result<Target, SinkError> {
        // Error messages here never echo `url`: it may hold a query-string key or userinfo.
        let bad = |why: &str| SinkError(format!("webhook URL refused: {why}"));
        if url.contains('#') {
            return Err(bad("a fragment (#...) is not allowed"));
        }
        let uri: Uri = url.parse().map_err(|_| bad("not a valid absolute URL"))?;
        let scheme = uri.scheme_str().map(str::to_ascii_lowercase).ok_or_else(|| bad("no scheme"))?;
        let authority = uri.authority().ok_or_else(|| bad("no host"))?.as_str();
        if authority.contains('@') {
            return Err(bad("credentials in the URL (user:password@) are not allowed; use the token"));
        }
        let host = uri.host().filter(|h| !h.is_empty()).ok_or_else(|| bad("no host"))?;
        // What follows the host in the authority is empty or `:port`; `Uri` quietly drops a port out of range.
        let port = match &authority[host.len()..] {
            "" => None,
            rest => match rest.strip_prefix(':').map(str::parse::<u16>) {
                Some(Ok(p)) if p != 0 => Some(p),
                _ => return Err(bad("invalid port")),
            },
        };
        let default_port = match scheme.as_str() {
            "https" => 443,
            "http" if is_loopback_literal(host) => 80,
            "http" => {
                return Err(bad(
                    "http:// is allowed only to a loopback address (127.0.0.1, [::1]); use https:// for other hosts",
                ));
            }
            _ => return Err(bad("scheme must be https (or http to loopback)")),
        };
        let host_port = format!("{host}:{}", port.unwrap_or(default_port));
        let shown = format!("{scheme}://{host_port}{}", uri.path());
        Ok(Target { uri, shown, host: host_port })
    }
}

/// `127.0.0.0/8` or `::1`, written as an address (not a name).
fn is_loopback_literal(host: &str) -> bool {
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn load_roots(path: &std::path::Path) -> Result<RootCerts, SinkError> {
    let shown = path.display();
    let pem = std::fs::read(path).map_err(|e| SinkError(format!("webhook CA file {shown}: {e}")))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {} // Keys and other items are ignored; only certificates are roots.
            Err(e) => return Err(SinkError(format!("webhook CA file {shown}: {e}"))),
        }
    }
    if certs.is_empty() {
        return Err(SinkError(format!("webhook CA file {shown}: no certificate found")));
    }
    Ok(RootCerts::new_with_certs(&certs))
}
