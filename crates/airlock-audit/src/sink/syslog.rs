//! Syslog export: audit records as RFC 5424 messages over UDP (RFC 5426), TCP (RFC 6587) or TLS (RFC 5425).
//!
//! Why syslog: it is what every SIEM and log pipeline already accepts, so an operator can get the log off the
//! box without running anything of ours on the other side. The message body is either a CEF line
//! ([`super::cef`]) or the OCSF event as compact JSON.
//!
//! # Message
//!
//! `<PRI>1 TIMESTAMP HOSTNAME airlock PROCID MSGID [airlock@32473 seq="42"] MSG`
//!
//! - PRI = facility × 8 + severity. Facility is configured ([`parse_facility`]); severity comes from the
//!   record's OCSF `severity_id` ([`syslog_severity`]):
//!
//!   | OCSF | 1 Informational | 2 Low | 3 Medium | 4 High | 5 Critical | 6 Fatal | 0 Unknown, 99 Other, missing |
//!   |------|-----------------|-------|----------|--------|------------|---------|------------------------------|
//!   | syslog | 6 Informational | 5 Notice | 4 Warning | 3 Error | 2 Critical | 1 Alert | 5 Notice |
//!
//!   Emergency (0) is left for "the system is unusable", which no single audit record means. Unknown is treated
//!   as Low, as in CEF. Checkpoints are Informational.
//! - TIMESTAMP: when the log accepted the record (`logged_ms`), RFC 3339 in UTC with milliseconds; for a
//!   checkpoint, when it was sent. The event's own time is in the body (CEF `rt`, OCSF `time`).
//! - HOSTNAME: `gethostname`, or `-` if that is not 1-255 printable ASCII characters.
//! - MSGID: `audit` for records, `checkpoint` for checkpoints.
//! - Structured data: one element, `airlock@32473`, with `seq` (the log sequence number) for records or `size`
//!   (the tree size) for checkpoints, and `truncated="true"` when MSG was cut (UDP only, below). 32473 is the
//!   private enterprise number IANA reserves for documentation (RFC 5612); a deployment that wants its own can
//!   register one. Values are escaped per RFC 5424 §6.3.3 (`"`, `\`, `]`).
//! - MSG: no UTF-8 BOM. RFC 5424 allows MSG without one (MSG-ANY); the text is UTF-8 regardless, and a BOM in
//!   front of `CEF:0|` or `{` breaks CEF parsers that match the prefix and JSON parsers (RFC 8259 forbids it).
//! - Checkpoints (only when `wants_checkpoints`): CEF as [`super::cef`]'s checkpoint line, whose `\n` escapes
//!   are lossless; OCSF as `{"checkpoint":{"size":N,"note":"..."}}`. Either way the C2SP note can be recovered
//!   byte for byte and its signature checked.
//!
//! # Transports
//!
//! - UDP: one datagram per message, at most [`UDP_MAX_MESSAGE`] bytes; a longer MSG is cut at a UTF-8 character
//!   boundary (and never between a backslash and what it escapes) and flagged `truncated="true"`. UDP gives no
//!   delivery guarantee at all; the cut record is whole in the local log.
//! - TCP and TLS: octet-counting framing (`<len> <message>`, RFC 6587 §3.4.1), which survives newlines and
//!   needs no cut. TLS is rustls (TLS 1.2 and 1.3), verifying the server's certificate against `ca_pem`, or the
//!   system bundle, for `server_name`. A batch is written only after the handshake has verified the server.
//!
//! The connection is opened on first use, kept, and dropped on any error so that the next attempt reconnects;
//! `deliver` then returns `Err` and the [`super::SinkWorker`] retries the batch. Connect, read and write have
//! timeouts so a dead peer cannot hold the worker. Before reusing a stream the sink checks whether the peer has
//! closed it, which catches a restarted receiver; a peer that dies mid-write can still lose what the kernel had
//! accepted (plain syslog has no acknowledgements: RELP would). `airlock audit export` replays any gap.

use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use super::{ExportItem, Sink, SinkError, cef};

/// The structured-data ID's enterprise number: IANA's example number, reserved for documentation.
pub const ENTERPRISE_ID: u32 = 32473;
/// Largest UDP datagram sent. 8 KiB is rsyslog's default `maxMessageSize` and well under what loopback and
/// jumbo-less paths carry after IP fragmentation; RFC 5426 only guarantees 480 (IPv4) / 1180 (IPv6) bytes.
pub const UDP_MAX_MESSAGE: usize = 8192;
/// Where the CA bundle is read from when a TLS transport names none (Debian's ca-certificates).
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
const APP_NAME: &str = "airlock";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Write timeout, and read timeout during the TLS handshake.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Where messages go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    Udp(SocketAddr),
    Tcp(SocketAddr),
    /// `server_name` is what the server's certificate must be valid for (a DNS name or an IP address);
    /// `ca_pem` holds the trusted CA certificates, `None` for [`SYSTEM_CA_BUNDLE`].
    Tls {
        addr: SocketAddr,
        server_name: String,
        ca_pem: Option<PathBuf>,
    },
}

/// What MSG holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One CEF line ([`super::cef::to_cef`]).
    Cef,
    /// The OCSF event as compact JSON.
    Ocsf,
}

/// RFC 5424 facility names (as syslog.conf and rsyslog spell them) and numbers.
const FACILITIES: [(&str, u8); 24] = [
    ("kern", 0),
    ("user", 1),
    ("mail", 2),
    ("daemon", 3),
    ("auth", 4),
    ("syslog", 5),
    ("lpr", 6),
    ("news", 7),
    ("uucp", 8),
    ("cron", 9),
    ("authpriv", 10),
    ("ftp", 11),
    ("ntp", 12),
    ("audit", 13),
    ("alert", 14),
    ("clock", 15),
    ("local0", 16),
    ("local1", 17),
    ("local2", 18),
    ("local3", 19),
    ("local4", 20),
    ("local5", 21),
    ("local6", 22),
    ("local7", 23),
];

/// A facility by name (`auth`, `daemon`, `local0`..`local7`, ...; case-insensitive) or number (0-23).
pub fn parse_facility(name: &str) -> Result<u8, SinkError> {
    let name = name.trim();
    if let Ok(n) = name.parse::<u8>()
        && n <= 23
    {
        return Ok(n);
    }
    FACILITIES.iter().find(|(f, _)| f.eq_ignore_ascii_case(name)).map(|&(_, n)| n).ok_or_else(|| {
        SinkError(format!("unknown syslog facility {name:?}: use a name such as auth, daemon, local0..local7, or 0-23"))
    })
}

/// The syslog severity (0 Emergency .. 7 Debug) for an OCSF `severity_id`; see the module docs for the table.
pub fn syslog_severity(severity_id: Option<i64>) -> u8 {
    match severity_id {
        Some(1) => 6,
        Some(2) => 5,
        Some(3) => 4,
        Some(4) => 3,
        Some(5) => 2,
        Some(6) => 1,
        _ => 5,
    }
}

/// A [`Sink`] that sends records (and optionally checkpoints) to a syslog receiver.
pub struct SyslogSink {
    transport: Transport,
    format: Format,
    facility: u8,
    wants_checkpoints: bool,
    hostname: String,
    procid: String,
    /// Built once in `new`, so a bad CA file or server name is a configuration error, not a retry loop.
    tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    /// The open connection, if any. `None` after an error: the next delivery reconnects.
    conn: Option<Conn>,
}

enum Conn {
    Udp(UdpSocket),
    Tcp(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl std::fmt::Debug for SyslogSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyslogSink")
            .field("transport", &self.transport)
            .field("format", &self.format)
            .field("facility", &self.facility)
            .field("wants_checkpoints", &self.wants_checkpoints)
            .field("connected", &self.conn.is_some())
            .finish_non_exhaustive()
    }
}

impl SyslogSink {
    /// Checks the configuration (facility 0-23; for TLS the server name and CA file) without connecting.
    pub fn new(
        transport: Transport,
        format: Format,
        facility: u8,
        wants_checkpoints: bool,
    ) -> Result<SyslogSink, SinkError> {
        if facility > 23 {
            return Err(SinkError(format!("syslog facility {facility} is out of range (0-23)")));
        }
        let tls = match &transport {
            Transport::Tls { server_name, ca_pem, .. } => {
                let name = ServerName::try_from(server_name.clone())
                    .map_err(|e| SinkError(format!("syslog TLS server name {server_name:?}: {e}")))?;
                let ca = ca_pem.as_deref().unwrap_or(Path::new(SYSTEM_CA_BUNDLE));
                Some((Arc::new(client_config(ca)?), name))
            }
            _ => None,
        };
        Ok(SyslogSink {
            transport,
            format,
            facility,
            wants_checkpoints,
            hostname: hostname(),
            procid: std::process::id().to_string(),
            tls,
            conn: None,
        })
    }

    /// The full syslog message for one item (without TCP framing), or `None` for a checkpoint nobody asked for.
    fn render(&self, item: &ExportItem) -> Option<Vec<u8>> {
        let mut origin = None;
        let (severity, timestamp, msgid, sd_name, sd_value, msg) = match item {
            ExportItem::Record(r) => {
                let msg = match self.format {
                    Format::Cef => cef::to_cef(&r.event),
                    Format::Ocsf => r.event.to_string(),
                };
                let severity = syslog_severity(r.event.get("severity_id").and_then(serde_json::Value::as_i64));
                origin = r.event.pointer("/metadata/log_name").and_then(serde_json::Value::as_str);
                (severity, rfc3339_ms(r.logged_ms), "audit", "seq", r.seq, msg)
            }
            ExportItem::Checkpoint { size, note } => {
                if !self.wants_checkpoints {
                    return None;
                }
                let msg = match self.format {
                    Format::Cef => cef::checkpoint_to_cef(*size, note),
                    Format::Ocsf => serde_json::json!({"checkpoint": {"size": size, "note": note}}).to_string(),
                };
                let now = jiff::Timestamp::now().as_millisecond();
                (6, rfc3339_ms(now), "checkpoint", "size", *size, msg)
            }
        };
        let pri = u16::from(self.facility) * 8 + u16::from(severity);
        let head = |truncated: bool| {
            let mut sd = vec![(sd_name, sd_value.to_string())];
            if let Some(o) = origin {
                sd.push(("log", o.to_owned()));
            }
            if truncated {
                sd.push(("truncated", "true".to_owned()));
            }
            format!("<{pri}>1 {timestamp} {} {APP_NAME} {} {msgid} {} ", self.hostname, self.procid, sd_element(&sd))
        };
        let mut out = head(false);
        if matches!(self.transport, Transport::Udp(_)) && out.len() + msg.len() > UDP_MAX_MESSAGE {
            out = head(true);
            out.push_str(truncate_escaped(&msg, UDP_MAX_MESSAGE.saturating_sub(out.len())));
        } else {
            out.push_str(&msg);
        }
        Some(out.into_bytes())
    }

    fn connect(&self) -> Result<Conn, SinkError> {
        let addr = self.addr();
        let io_err = |what: &str, e: io::Error| SinkError(format!("{}: {what}: {e}", self.describe()));
        match &self.transport {
            Transport::Udp(_) => {
                let local: SocketAddr = if addr.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
                let sock = UdpSocket::bind(local).map_err(|e| io_err("bind", e))?;
                sock.connect(addr).map_err(|e| io_err("connect", e))?;
                sock.set_write_timeout(Some(IO_TIMEOUT)).map_err(|e| io_err("set timeout", e))?;
                Ok(Conn::Udp(sock))
            }
            Transport::Tcp(_) => Ok(Conn::Tcp(tcp_connect(addr).map_err(|e| io_err("connect", e))?)),
            Transport::Tls { .. } => {
                let (config, name) = self.tls.as_ref().expect("TLS config is built in new() for a TLS transport");
                let sock = tcp_connect(addr).map_err(|e| io_err("connect", e))?;
                let conn = ClientConnection::new(Arc::clone(config), name.clone())
                    .map_err(|e| SinkError(format!("{}: TLS: {e}", self.describe())))?;
                let mut tls = StreamOwned::new(conn, sock);
                // Finish the handshake (and so verify the server) before any record is handed to rustls.
                while tls.conn.is_handshaking() {
                    match tls.conn.complete_io(&mut tls.sock) {
                        Ok((0, 0)) => {
                            return Err(SinkError(format!("{}: TLS handshake: connection closed", self.describe())));
                        }
                        Ok(_) => {}
                        Err(e) => return Err(io_err("TLS handshake", e)),
                    }
                }
                Ok(Conn::Tls(Box::new(tls)))
            }
        }
    }

    fn send(&mut self, messages: &[Vec<u8>]) -> Result<(), SinkError> {
        if self.conn.as_mut().is_some_and(|c| !c.still_open()) {
            self.conn = None;
        }
        if self.conn.is_none() {
            self.conn = Some(self.connect()?);
        }
        let describe = self.describe();
        let io_err = |what: &str, e: io::Error| SinkError(format!("{describe}: {what}: {e}"));
        match self.conn.as_mut().expect("connected above") {
            Conn::Udp(sock) => {
                for m in messages {
                    let sent = sock.send(m).map_err(|e| io_err("send", e))?;
                    if sent != m.len() {
                        return Err(SinkError(format!("{describe}: send: datagram cut to {sent} bytes")));
                    }
                }
            }
            Conn::Tcp(sock) => sock.write_all(&octet_counted(messages)).map_err(|e| io_err("write", e))?,
            Conn::Tls(tls) => {
                tls.write_all(&octet_counted(messages)).map_err(|e| io_err("write", e))?;
                // StreamOwned buffers in rustls; flush pushes every TLS record to the socket.
                tls.flush().map_err(|e| io_err("write", e))?;
            }
        }
        Ok(())
    }

    fn addr(&self) -> SocketAddr {
        match &self.transport {
            Transport::Udp(a) | Transport::Tcp(a) | Transport::Tls { addr: a, .. } => *a,
        }
    }
}

impl Sink for SyslogSink {
    fn describe(&self) -> String {
        let scheme = match self.transport {
            Transport::Udp(_) => "udp",
            Transport::Tcp(_) => "tcp",
            Transport::Tls { .. } => "tcp+tls",
        };
        let format = match self.format {
            Format::Cef => "cef",
            Format::Ocsf => "ocsf",
        };
        format!("syslog {scheme}://{} ({format})", self.addr())
    }

    fn deliver(&mut self, items: &[Arc<ExportItem>]) -> Result<(), SinkError> {
        let messages: Vec<Vec<u8>> = items.iter().filter_map(|item| self.render(item)).collect();
        if messages.is_empty() {
            return Ok(());
        }
        let result = self.send(&messages);
        if result.is_err() {
            // Whatever state the stream is in (half a frame written, TLS alert), start clean next time.
            self.conn = None;
        }
        result
    }

    fn wants_checkpoints(&self) -> bool {
        self.wants_checkpoints
    }
}

impl Conn {
    /// False when the peer has closed (or reset) the stream. Syslog receivers never send application data, so
    /// anything readable is either the end of the stream or TLS housekeeping (session tickets), read and dropped.
    fn still_open(&mut self) -> bool {
        match self {
            Conn::Udp(_) => true,
            Conn::Tcp(sock) => with_nonblocking(sock, |sock| {
                let mut buf = [0u8; 512];
                // Bounded: a peer streaming junk at us is treated as alive rather than read forever.
                for _ in 0..64 {
                    match sock.read(&mut buf) {
                        Ok(0) => return false,
                        Ok(_) => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => return false,
                    }
                }
                true
            }),
            Conn::Tls(tls) => {
                let StreamOwned { conn, sock } = &mut **tls;
                with_nonblocking(sock, |sock| {
                    for _ in 0..64 {
                        match conn.read_tls(sock) {
                            Ok(0) => return false,
                            Ok(_) => match conn.process_new_packets() {
                                Ok(state) if state.peer_has_closed() => return false,
                                Ok(state) => {
                                    let mut discard = vec![0u8; state.plaintext_bytes_to_read()];
                                    if conn.reader().read_exact(&mut discard).is_err() {
                                        return false;
                                    }
                                }
                                Err(_) => return false,
                            },
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(_) => return false,
                        }
                    }
                    true
                })
            }
        }
    }
}

impl Drop for Conn {
    /// Ends a TLS session with close_notify, so the receiver can tell a clean close from a cut connection. Best
    /// effort, with a short timeout: the connection may already be dead.
    fn drop(&mut self) {
        if let Conn::Tls(tls) = self {
            tls.conn.send_close_notify();
            let _ = tls.sock.set_write_timeout(Some(Duration::from_millis(200)));
            for _ in 0..4 {
                if !tls.conn.wants_write() || tls.conn.write_tls(&mut tls.sock).is_err() {
                    break;
                }
            }
        }
    }
}

/// Runs `check` with the socket non-blocking; a socket whose mode cannot be set is treated as broken.
fn with_nonblocking(sock: &mut TcpStream, check: impl FnOnce(&mut TcpStream) -> bool) -> bool {
    if sock.set_nonblocking(true).is_err() {
        return false;
    }
    let open = check(sock);
    sock.set_nonblocking(false).is_ok() && open
}

fn tcp_connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let sock = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
    sock.set_write_timeout(Some(IO_TIMEOUT))?;
    sock.set_read_timeout(Some(IO_TIMEOUT))?;
    sock.set_nodelay(true)?;
    Ok(sock)
}

fn client_config(ca_pem: &Path) -> Result<ClientConfig, SinkError> {
    let shown = ca_pem.display();
    let certs = CertificateDer::pem_file_iter(ca_pem)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| SinkError(format!("syslog TLS: reading CA certificates from {shown}: {e}")))?;
    let mut roots = RootCertStore::empty();
    let (added, _unparsable) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(SinkError(format!("syslog TLS: no usable CA certificate in {shown}")));
    }
    // An explicit provider, so this does not depend on (or fight over) a process-wide default.
    ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
        .map_err(|e| SinkError(format!("syslog TLS: {e}")))
}

/// RFC 6587 octet counting: `<length> <message>` per message, all in one buffer so a batch is one write.
fn octet_counted(messages: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(messages.iter().map(|m| m.len() + 8).sum());
    for m in messages {
        let _ = write!(out, "{} ", m.len());
        out.extend_from_slice(m);
    }
    out
}

/// `[airlock@32473 k="v" ...]` with PARAM-VALUE escaping (RFC 5424 §6.3.3).
fn sd_element(params: &[(&str, String)]) -> String {
    let mut out = format!("[{APP_NAME}@{ENTERPRISE_ID}");
    for (name, value) in params {
        let _ = write!(out, " {name}=\"");
        for c in value.chars() {
            if matches!(c, '"' | '\\' | ']') {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
    }
    out.push(']');
    out
}

/// RFC 3339 UTC with milliseconds, or the NILVALUE `-` for a time RFC 5424 cannot express.
fn rfc3339_ms(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(ts) if (0..=9999).contains(&ts.to_zoned(jiff::tz::TimeZone::UTC).year()) => {
            ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
        }
        _ => "-".to_owned(),
    }
}

/// The local host name if RFC 5424 can carry it (1-255 printable US-ASCII characters), else `-`.
fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| (1..=255).contains(&h.len()) && h.bytes().all(|b| (33..=126).contains(&b)))
        .unwrap_or_else(|| "-".to_owned())
}

/// At most `max` bytes of `msg`, cut at a character boundary and never just after an escaping backslash (which
/// would leave a dangling escape in CEF or JSON).
fn truncate_escaped(msg: &str, max: usize) -> &str {
    if msg.len() <= max {
        return msg;
    }
    let mut end = max;
    while !msg.is_char_boundary(end) {
        end -= 1;
    }
    let cut = &msg[..end];
    let backslashes = cut.bytes().rev().take_while(|&b| b == b'\\').count();
    if backslashes % 2 == 1 { &cut[..cut.len() - 1] } else { cut }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::ExportRecord;
    use serde_json::json;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn record(seq: u64, event: serde_json::Value) -> ExportItem {
        ExportItem::Record(ExportRecord { seq, logged_ms: 1_767_225_600_123, event })
    }

    fn sink(transport: Transport, format: Format) -> SyslogSink {
        SyslogSink::new(transport, format, 20, true).unwrap()
    }

    fn text(sink: &SyslogSink, item: &ExportItem) -> String {
        String::from_utf8(sink.render(item).unwrap()).unwrap()
    }

    #[test]
    fn facilities() {
        assert_eq!(parse_facility("auth").unwrap(), 4);
        assert_eq!(parse_facility("DAEMON").unwrap(), 3);
        assert_eq!(parse_facility("local0").unwrap(), 16);
        assert_eq!(parse_facility(" local7 ").unwrap(), 23);
        assert_eq!(parse_facility("13").unwrap(), 13);
        assert!(parse_facility("24").is_err());
        assert!(parse_facility("local8").is_err());
        assert!(parse_facility("").is_err());
        assert!(SyslogSink::new(Transport::Udp(([127, 0, 0, 1], 514).into()), Format::Cef, 24, false).is_err());
    }

    #[test]
    fn severities() {
        let got: Vec<u8> =
            [None, Some(0), Some(1), Some(2), Some(3), Some(4), Some(5), Some(6), Some(99)].map(syslog_severity).into();
        assert_eq!(got, [5, 5, 6, 5, 4, 3, 2, 1, 5]);
    }

    #[test]
    fn message_layout() {
        let s = sink(Transport::Tcp(([127, 0, 0, 1], 6514).into()), Format::Ocsf);
        let event = json!({"class_uid": 6003, "severity_id": 4, "message": "a\nb"});
        let m = text(&s, &record(42, event.clone()));
        let head = format!(
            "<163>1 2026-01-01T00:00:00.123Z {} airlock {} audit [airlock@32473 seq=\"42\"] ",
            s.hostname,
            std::process::id()
        );
        assert_eq!(m, format!("{head}{event}"));
        assert!(!m.contains('\n'));
        assert!(!m.as_bytes().starts_with(b"\xEF\xBB\xBF"));

        let c = sink(Transport::Udp(([127, 0, 0, 1], 514).into()), Format::Cef);
        let m = text(&c, &record(7, event));
        assert!(m.contains(" audit [airlock@32473 seq=\"7\"] CEF:0|Airlock|Airlock|"), "{m}");
    }

    #[test]
    fn the_log_a_record_came_from_is_in_its_structured_data() {
        let event = json!({"class_uid": 6003, "metadata": {"log_name": "airlock/audit/0123abcd"}});
        for format in [Format::Ocsf, Format::Cef] {
            let m = text(&sink(Transport::Tcp(([127, 0, 0, 1], 6514).into()), format), &record(9, event.clone()));
            assert!(m.contains(" audit [airlock@32473 seq=\"9\" log=\"airlock/audit/0123abcd\"] "), "{m}");
        }
        let m = text(&sink(Transport::Tcp(([127, 0, 0, 1], 6514).into()), Format::Cef), &record(9, event));
        assert!(m.contains("deviceExternalId=airlock/audit/0123abcd"), "{m}");
    }

    #[test]
    fn checkpoints() {
        let note = "example.org/log\n3\nabc=\n\n— example.org/log sig=\n".to_owned();
        let item = ExportItem::Checkpoint { size: 3, note: note.clone() };
        let s = sink(Transport::Tcp(([127, 0, 0, 1], 6514).into()), Format::Ocsf);
        let m = text(&s, &item);
        assert!(m.starts_with("<166>1 "), "{m}");
        let (head, body) = m.split_once(" checkpoint [airlock@32473 size=\"3\"] ").unwrap();
        assert!(head.contains(" airlock "));
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v, json!({"checkpoint": {"size": 3, "note": note}}));

        let c = sink(Transport::Tcp(([127, 0, 0, 1], 6514).into()), Format::Cef);
        assert!(text(&c, &item).contains(" checkpoint [airlock@32473 size=\"3\"] CEF:0|Airlock|Airlock|"));

        let quiet = SyslogSink::new(Transport::Tcp(([127, 0, 0, 1], 6514).into()), Format::Cef, 1, false).unwrap();
        assert!(quiet.render(&item).is_none());
    }

    #[test]
    fn structured_data_escaping() {
        assert_eq!(sd_element(&[("a", "x\"y\\z]w".into())]), r#"[airlock@32473 a="x\"y\\z\]w"]"#);
    }

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_767_225_600_123), "2026-01-01T00:00:00.123Z");
        assert_eq!(rfc3339_ms(-62_198_755_200_000), "-"); // year -1
        assert_eq!(rfc3339_ms(i64::MAX), "-");
    }

    #[test]
    fn udp_cuts_long_messages() {
        let s = sink(Transport::Udp(([127, 0, 0, 1], 514).into()), Format::Cef);
        let long = "é\\".repeat(UDP_MAX_MESSAGE);
        let m = text(&s, &record(1, json!({"message": long})));
        assert!(m.len() <= UDP_MAX_MESSAGE && m.len() > UDP_MAX_MESSAGE - 8, "{}", m.len());
        assert!(m.contains("[airlock@32473 seq=\"1\" truncated=\"true\"]"));
        let tail = m.bytes().rev().take_while(|&b| b == b'\\').count();
        assert_eq!(tail % 2, 0, "no dangling escape");

        // TCP carries it whole.
        let t = sink(Transport::Tcp(([127, 0, 0, 1], 514).into()), Format::Cef);
        assert!(text(&t, &record(1, json!({"message": "x".repeat(100_000)}))).len() > 100_000);
    }

    #[test]
    fn truncation_respects_chars_and_escapes() {
        assert_eq!(truncate_escaped("abc", 10), "abc");
        assert_eq!(truncate_escaped("aé", 2), "a");
        assert_eq!(truncate_escaped("ab\\\\c", 3), "ab");
        assert_eq!(truncate_escaped("ab\\\\c", 4), "ab\\\\");
        assert_eq!(truncate_escaped("日本語", 7), "日本");
    }

    #[test]
    fn framing() {
        assert_eq!(octet_counted(&[b"ab".to_vec(), "é\n".as_bytes().to_vec()]), b"2 ab3 \xC3\xA9\n");
    }

    #[test]
    fn describe_and_config_errors() {
        let s = sink(Transport::Udp(([127, 0, 0, 1], 514).into()), Format::Ocsf);
        assert_eq!(s.describe(), "syslog udp://127.0.0.1:514 (ocsf)");
        let s = sink(Transport::Tcp(([127, 0, 0, 1], 601).into()), Format::Cef);
        assert_eq!(s.describe(), "syslog tcp://127.0.0.1:601 (cef)");

        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let tls = |ca: &Path, name: &str| Transport::Tls {
            addr: ([127, 0, 0, 1], 6514).into(),
            server_name: name.into(),
            ca_pem: Some(ca.to_owned()),
        };
        let err = SyslogSink::new(tls(&missing, "localhost"), Format::Cef, 4, false).unwrap_err();
        assert!(err.0.contains("missing.pem"), "{err}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = SyslogSink::new(tls(&empty, "localhost"), Format::Cef, 4, false).unwrap_err();
        assert!(err.0.contains("no usable CA"), "{err}");
        if Path::new(SYSTEM_CA_BUNDLE).exists() {
            let s = SyslogSink::new(
                Transport::Tls { addr: ([127, 0, 0, 1], 6514).into(), server_name: "localhost".into(), ca_pem: None },
                Format::Cef,
                4,
                false,
            )
            .unwrap();
            assert_eq!(s.describe(), "syslog tcp+tls://127.0.0.1:6514 (cef)");
            let err = SyslogSink::new(tls(Path::new(SYSTEM_CA_BUNDLE), "bad name!"), Format::Cef, 4, false);
            assert!(err.unwrap_err().0.contains("server name"));
        }
    }

    /// A loopback receiver (plain TCP or TLS) that records what it is sent and how many connections it took; with
    /// `hang_up`, it closes each connection (TLS: close_notify first) once it has read one whole message.
    struct Receiver {
        addr: SocketAddr,
        accepts: Arc<AtomicUsize>,
        hung_up: Arc<AtomicUsize>,
        received: Arc<Mutex<Vec<u8>>>,
    }

    impl Receiver {
        fn start(tls: Option<Arc<rustls::ServerConfig>>, hang_up: bool) -> Receiver {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let r = Receiver {
                addr: listener.local_addr().unwrap(),
                accepts: Arc::default(),
                hung_up: Arc::default(),
                received: Arc::default(),
            };
            let (accepts, hung_up, received) =
                (Arc::clone(&r.accepts), Arc::clone(&r.hung_up), Arc::clone(&r.received));
            // The accept loop ends with the test process; each connection is read on its own thread.
            std::thread::spawn(move || {
                for sock in listener.incoming() {
                    let sock = sock.unwrap();
                    sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                    accepts.fetch_add(1, Ordering::SeqCst);
                    let (tls, hung_up, received) = (tls.clone(), Arc::clone(&hung_up), Arc::clone(&received));
                    std::thread::spawn(move || {
                        let mut stream: Box<dyn Read> = match tls {
                            Some(config) => {
                                Box::new(StreamOwned::new(rustls::ServerConnection::new(config).unwrap(), sock))
                            }
                            None => Box::new(sock),
                        };
                        let mut buf = [0u8; 4096];
                        let mut mine = Vec::new();
                        while let Ok(n) = stream.read(&mut buf) {
                            if n == 0 {
                                break;
                            }
                            mine.extend_from_slice(&buf[..n]);
                            received.lock().unwrap().extend_from_slice(&buf[..n]);
                            if hang_up && mine.ends_with(b"}") {
                                break;
                            }
                        }
                        drop(stream);
                        hung_up.fetch_add(1, Ordering::SeqCst);
                    });
                }
            });
            r
        }

        fn text(&self) -> String {
            String::from_utf8_lossy(&self.received.lock().unwrap()).into_owned()
        }
    }

    fn wait_until(cond: impl Fn() -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(std::time::Instant::now() < deadline, "timed out");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// A CA file and a server config with a certificate for 127.0.0.1 signed by it.
    fn tls_server(dir: &Path) -> (PathBuf, Arc<rustls::ServerConfig>) {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&key, &Issuer::new(ca_params, ca_key))
            .unwrap();
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        let key = rustls::pki_types::PrivatePkcs8KeyDer::from(key.serialize_der());
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key.into())
            .unwrap();
        (ca_file, Arc::new(config))
    }

    fn ocsf(seq: u64, marker: &str) -> Arc<ExportItem> {
        Arc::new(record(seq, json!({ "m": marker })))
    }

    /// The stream is reused while the peer keeps it open, and replaced when the peer has closed it: a write into
    /// a closed stream would be accepted by the kernel and lost.
    #[test]
    fn streams_are_reused_and_reopened_after_the_peer_closes() {
        let dir = tempfile::tempdir().unwrap();
        let (ca, server_config) = tls_server(dir.path());
        for tls in [false, true] {
            let transport = |addr| match tls {
                true => Transport::Tls { addr, server_name: "127.0.0.1".into(), ca_pem: Some(ca.clone()) },
                false => Transport::Tcp(addr),
            };
            let config = tls.then(|| Arc::clone(&server_config));

            let keep = Receiver::start(config.clone(), false);
            let mut s = sink(transport(keep.addr), Format::Ocsf);
            s.deliver(&[ocsf(1, "one")]).unwrap();
            // Time for whatever the server sends after the handshake (TLS 1.3 session tickets) to arrive.
            std::thread::sleep(Duration::from_millis(100));
            s.deliver(&[ocsf(2, "two")]).unwrap();
            wait_until(|| keep.text().contains("two"));
            assert_eq!(keep.accepts.load(Ordering::SeqCst), 1, "tls={tls}: one connection for both");
            drop(s);

            let hang = Receiver::start(config, true);
            let mut s = sink(transport(hang.addr), Format::Ocsf);
            s.deliver(&[ocsf(1, "one")]).unwrap();
            wait_until(|| hang.hung_up.load(Ordering::SeqCst) == 1);
            s.deliver(&[ocsf(2, "two")]).unwrap();
            wait_until(|| hang.text().contains("two"));
            assert_eq!(hang.accepts.load(Ordering::SeqCst), 2, "tls={tls}: reconnected");
            let text = hang.text();
            assert!(text.contains(r#"seq="1"] {"m":"one"}"#) && text.contains(r#"seq="2"] {"m":"two"}"#), "{text}");
        }
    }

    #[test]
    fn connection_refused_is_an_error_and_retried() {
        // A port nobody listens on: bind, note it, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut s = sink(Transport::Tcp(([127, 0, 0, 1], port).into()), Format::Cef);
        let item = Arc::new(record(1, json!({"class_uid": 6003})));
        let err = s.deliver(&[Arc::clone(&item)]).unwrap_err();
        assert!(err.0.starts_with(&format!("syslog tcp://127.0.0.1:{port} (cef): connect:")), "{err}");
        assert!(s.conn.is_none());
        // Nothing to send is not a connection attempt.
        assert!(s.deliver(&[]).is_ok());
    }
}
