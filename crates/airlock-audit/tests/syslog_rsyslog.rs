//! The syslog sink against a real rsyslog, so that "a SIEM can read it" is tested against a receiver someone
//! else wrote rather than against our own parser.
//!
//! Each test starts its own `rsyslogd` on loopback with a private config in a temporary directory: UDP, TCP and
//! TLS (gtls) inputs on free ports, bound to a ruleset that writes one tab-separated line per message (facility,
//! severity, app name, procid, msgid, structured data, MSG, raw message). Messages rsyslog logs about itself go
//! to a separate file, shown when a test fails. No imuxsock or imklog is loaded, so neither /dev/log nor the
//! kernel log nor any system rsyslog is touched, and the pid file lives in the temporary directory; that works
//! as root and as a normal user. The daemon is killed on drop.
//!
//! rsyslogd is required: scripts/test.sh installs the Debian packages `rsyslog` and `rsyslog-gnutls`. A missing
//! binary fails the tests instead of skipping them.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use airlock_audit::sink::cef::to_cef;
use airlock_audit::sink::syslog::{Format, SyslogSink, Transport, syslog_severity};
use airlock_audit::sink::{ExportItem, ExportRecord, Sink, SinkOptions, SinkWorker};
use serde_json::{Value, json};

const LOCAL4: u8 = 20;
const LOGGED_MS: i64 = 1_767_225_600_123;
const LOGGED_RFC3339: &str = "2026-01-01T00:00:00.123Z";

// ---------------------------------------------------------------------------------------------------------------
// rsyslog under test

fn rsyslogd() -> PathBuf {
    let found = ["/usr/sbin/rsyslogd", "/sbin/rsyslogd", "/usr/local/sbin/rsyslogd"]
        .iter()
        .map(PathBuf::from)
        .chain(std::env::var_os("PATH").iter().flat_map(std::env::split_paths).map(|d| d.join("rsyslogd")))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| {
        panic!(
            "rsyslogd not found: these tests need a real rsyslog. Install the Debian packages rsyslog and \
             rsyslog-gnutls (scripts/test.sh does: apt-get install --no-install-recommends rsyslog rsyslog-gnutls)"
        )
    })
}

/// A test CA, a server certificate it signed for 127.0.0.1 and localhost, and an unrelated CA.
struct Pki {
    ca: PathBuf,
    other_ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn make_pki(dir: &Path) -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};
    let new_ca = |name: &str| {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap();
        (cert, Issuer::new(params, key))
    };
    let (ca, issuer) = new_ca("airlock syslog test CA");
    let (other_ca, _) = new_ca("airlock syslog test CA (not the server's)");
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, "localhost");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, &issuer).unwrap();
    let pki = Pki {
        ca: dir.join("ca.pem"),
        other_ca: dir.join("other-ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
    };
    std::fs::write(&pki.ca, ca.pem()).unwrap();
    std::fs::write(&pki.other_ca, other_ca.pem()).unwrap();
    std::fs::write(&pki.cert, cert.pem()).unwrap();
    std::fs::write(&pki.key, key.serialize_pem()).unwrap();
    pki
}

struct Rsyslog {
    dir: tempfile::TempDir,
    pki: Pki,
    child: Option<Child>,
    starts: u32,
    udp: u16,
    tcp: u16,
    tls: u16,
}

/// One line of rsyslog's output file.
#[derive(Debug, Clone)]
struct Line {
    facility: u8,
    severity: u8,
    app: String,
    procid: String,
    msgid: String,
    sd: String,
    msg: String,
    raw: String,
}

impl Rsyslog {
    /// Starts rsyslog on free loopback ports (a few tries, in case another process takes a port in between).
    fn start() -> Rsyslog {
        let bin = rsyslogd();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("work")).unwrap();
        let pki = make_pki(dir.path());
        let mut r = Rsyslog { dir, pki, child: None, starts: 0, udp: 0, tcp: 0, tls: 0 };
        let mut last = String::new();
        for _ in 0..3 {
            (r.udp, r.tcp, r.tls) = (free_udp_port(), free_tcp_port(), free_tcp_port());
            match r.launch(&bin) {
                Ok(()) => return r,
                Err(e) => {
                    last = e;
                    r.stop();
                }
            }
        }
        panic!("rsyslogd did not come up in 3 tries: {last}\n{}", r.diagnostics());
    }

    /// Starts rsyslog again on the same ports (after [`Rsyslog::stop`]).
    fn restart(&mut self) {
        let bin = rsyslogd();
        if let Err(e) = self.launch(&bin) {
            panic!("rsyslogd did not come back on the same ports: {e}\n{}", self.diagnostics());
        }
    }

    fn launch(&mut self, bin: &Path) -> Result<(), String> {
        self.starts += 1;
        let d = self.dir.path();
        let conf = d.join("rsyslog.conf");
        std::fs::write(&conf, self.config()).unwrap();
        let check = Command::new(bin).arg("-N1").arg("-f").arg(&conf).output().unwrap();
        assert!(
            check.status.success(),
            "rsyslogd -N1 rejected the test config:\n{}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
        // A fresh pid file each start: a killed rsyslogd leaves its old one behind.
        let pidfile = d.join(format!("rsyslogd-{}.pid", self.starts));
        let log = std::fs::File::create(d.join(format!("rsyslogd-{}.stderr", self.starts))).unwrap();
        let child = Command::new(bin)
            .arg("-n")
            .arg("-f")
            .arg(&conf)
            .arg("-i")
            .arg(&pidfile)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", bin.display()))?;
        self.child = Some(child);
        self.wait_ready()
    }

    fn config(&self) -> String {
        let d = self.dir.path().display();
        let Pki { ca, cert, key, .. } = &self.pki;
        let (ca, cert, key) = (ca.display(), cert.display(), key.display());
        let (udp, tcp, tls) = (self.udp, self.tcp, self.tls);
        format!(
            r#"global(workDirectory="{d}/work" maxMessageSize="64k")
module(load="imudp")
module(load="imtcp")
template(name="airlock" type="string"
         string="%syslogfacility%\t%syslogseverity%\t%app-name%\t%procid%\t%msgid%\t%structured-data%\t%msg%\t%rawmsg%\n")
ruleset(name="airlock") {{
    action(type="omfile" file="{d}/out.log" template="airlock")
}}
input(type="imudp" address="127.0.0.1" port="{udp}" ruleset="airlock")
input(type="imtcp" address="127.0.0.1" port="{tcp}" ruleset="airlock")
input(type="imtcp" address="127.0.0.1" port="{tls}" ruleset="airlock"
      streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon"
      streamDriver.CAFile="{ca}" streamDriver.CertFile="{cert}" streamDriver.KeyFile="{key}")
# rsyslog's own messages (start, errors) go here, not to the system log.
*.* action(type="omfile" file="{d}/internal.log")
"#
        )
    }

    /// Ready when both TCP ports accept and a UDP probe has come out the other end.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(15);
        for port in [self.tcp, self.tls] {
            loop {
                if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                    return Err(format!("rsyslogd exited: {status}"));
                }
                if TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)).is_ok() {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(format!("port {port} never accepted"));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let probe = format!("probe-{}", self.starts);
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        while Instant::now() < deadline {
            sock.send_to(format!("<14>1 - - - - probe - {probe}").as_bytes(), ("127.0.0.1", self.udp)).unwrap();
            std::thread::sleep(Duration::from_millis(100));
            if self.all_lines().iter().any(|l| l.msgid == "probe" && l.msg == probe) {
                return Ok(());
            }
        }
        Err(format!("UDP probe on port {} never arrived", self.udp))
    }

    /// Kills rsyslog and waits for it to be gone (its ports closed).
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn all_lines(&self) -> Vec<Line> {
        let text = std::fs::read_to_string(self.dir.path().join("out.log")).unwrap_or_default();
        // Only whole lines: rsyslog may be halfway through writing the last one.
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        complete
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.splitn(8, '\t').collect();
                assert_eq!(f.len(), 8, "unexpected output line {l:?}");
                Line {
                    facility: f[0].parse().unwrap(),
                    severity: f[1].parse().unwrap(),
                    app: f[2].into(),
                    procid: f[3].into(),
                    msgid: f[4].into(),
                    sd: f[5].into(),
                    msg: f[6].into(),
                    raw: f[7].into(),
                }
            })
            .collect()
    }

    /// Lines from the sink (not the readiness probes).
    fn lines(&self) -> Vec<Line> {
        self.all_lines().into_iter().filter(|l| l.msgid != "probe").collect()
    }

    /// Waits until at least `n` sink lines are there (bounded), and returns them.
    fn wait_lines(&self, n: usize) -> Vec<Line> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let lines = self.lines();
            if lines.len() >= n {
                return lines;
            }
            assert!(
                Instant::now() < deadline,
                "rsyslog wrote {} of {n} lines in 20 s\n{}",
                lines.len(),
                self.diagnostics()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends a UDP probe and waits for it: everything rsyslog had received before is written by then (it is
    /// one queue), which lets a test assert that something did *not* arrive without sleeping blindly.
    fn barrier(&self, tag: &str) {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            sock.send_to(format!("<14>1 - - - - probe - {tag}").as_bytes(), ("127.0.0.1", self.udp)).unwrap();
            std::thread::sleep(Duration::from_millis(100));
            if self.all_lines().iter().any(|l| l.msgid == "probe" && l.msg == tag) {
                return;
            }
        }
        panic!("probe {tag} never arrived\n{}", self.diagnostics());
    }

    fn diagnostics(&self) -> String {
        let d = self.dir.path();
        let mut out = String::new();
        for name in ["internal.log", "rsyslog.conf"]
            .into_iter()
            .map(String::from)
            .chain((1..=self.starts).map(|n| format!("rsyslogd-{n}.stderr")))
        {
            let text = std::fs::read_to_string(d.join(&name)).unwrap_or_default();
            out.push_str(&format!("--- {name}\n{text}"));
        }
        out
    }

    fn udp(&self) -> Transport {
        Transport::Udp(([127, 0, 0, 1], self.udp).into())
    }

    fn tcp(&self) -> Transport {
        Transport::Tcp(([127, 0, 0, 1], self.tcp).into())
    }

    fn tls(&self) -> Transport {
        self.tls_with("127.0.0.1", &self.pki.ca)
    }

    fn tls_with(&self, server_name: &str, ca: &Path) -> Transport {
        Transport::Tls {
            addr: ([127, 0, 0, 1], self.tls).into(),
            server_name: server_name.into(),
            ca_pem: Some(ca.to_owned()),
        }
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

// ---------------------------------------------------------------------------------------------------------------
// records

fn common(class_uid: i64, activity_id: i64, type_name: &str, severity_id: i64, seq: u64) -> Value {
    json!({
        "class_uid": class_uid, "activity_id": activity_id, "type_uid": class_uid * 100 + activity_id,
        "type_name": type_name, "time": LOGGED_MS - 5, "severity_id": severity_id, "status": "Success",
        "metadata": {"version": "1.8.0", "product": {"name": "Airlock", "vendor_name": "Airlock", "version": "0.1.0"},
            "uid": format!("evt-{seq}"), "sequence": seq, "logged_time": LOGGED_MS},
        "actor": {"user": {"name": "alice"}, "app_name": "agent",
            "authorizations": [{"decision": "allow", "policy": {"uid": "p1", "name": "github"}}]},
    })
}

/// One record of each kind, including one whose message tries to break out of its field and line.
fn sample_events(first_seq: u64) -> Vec<(u64, Value)> {
    let mut api = common(6003, 2, "API Activity: Read", 1, first_seq);
    api["message"] = json!("allowed by policy p1");
    api["http_request"] = json!({"http_method": "GET",
        "url": {"scheme": "https", "hostname": "api.github.com", "port": 443, "path": "/user",
                "query_string": format!("t=hmac-sha256:{}", "ab".repeat(32))}});
    api["dst_endpoint"] = json!({"hostname": "api.github.com", "ip": "140.82.112.5", "port": 443});

    let mut process = common(1007, 1, "Process Activity: Launch", 3, first_seq + 1);
    process["process"] =
        json!({"pid": 4242, "name": "curl", "cmd_line": "curl -d a=b https://x", "file": {"path": "/usr/bin/curl"}});

    let mut finding = common(2004, 1, "Detection Finding: Create", 5, first_seq + 2);
    finding["message"] = json!(
        "blocked | act=allow \\ \"quoted\" ] [x@1 a=\"b\"]\r\nCEF:0|Evil|Evil|1|1|fake|10|act=allow\n<13>1 - - - - - forged – é 日本"
    );
    finding["finding_info"] = json!({"uid": "f-1", "title": "Secret | in body", "types": ["leak"]});

    let mut unknown = common(6002, 3, "Application Lifecycle: Start", 0, first_seq + 3);
    unknown["unmapped"] = json!({"note": "line1\nline2"});

    vec![(first_seq, api), (first_seq + 1, process), (first_seq + 2, finding), (first_seq + 3, unknown)]
}

fn item(seq: u64, event: Value) -> Arc<ExportItem> {
    Arc::new(ExportItem::Record(ExportRecord { seq, logged_ms: LOGGED_MS, event }))
}

fn sd_seq(seq: u64) -> String {
    format!("[airlock@32473 seq=\"{seq}\"]")
}

/// Sends the sample records in both formats and checks what rsyslog made of every one.
fn round_trip(rsyslog: &Rsyslog, transport: Transport) {
    let pid = std::process::id().to_string();
    let mut expected: BTreeMap<u64, (Format, Value)> = BTreeMap::new();
    for (format, first) in [(Format::Cef, 100), (Format::Ocsf, 200)] {
        let mut sink = SyslogSink::new(transport.clone(), format, LOCAL4, false).unwrap();
        let events = sample_events(first);
        let items: Vec<_> = events.iter().map(|(seq, e)| item(*seq, e.clone())).collect();
        sink.deliver(&items).unwrap_or_else(|e| panic!("{e}\n{}", rsyslog.diagnostics()));
        expected.extend(events.into_iter().map(|(seq, e)| (seq, (format, e))));
    }
    let lines = rsyslog.wait_lines(expected.len());
    rsyslog.barrier("after-round-trip");
    let lines_now = rsyslog.lines();
    assert_eq!(lines_now.len(), expected.len(), "one line per record, no more: {lines:#?}");

    for (seq, (format, event)) in &expected {
        let sd = sd_seq(*seq);
        let matching: Vec<&Line> = lines_now.iter().filter(|l| l.sd == sd).collect();
        assert_eq!(matching.len(), 1, "seq {seq}: {lines_now:#?}");
        let line = matching[0];
        let severity = syslog_severity(event["severity_id"].as_i64());
        assert_eq!((line.facility, line.severity), (LOCAL4, severity), "seq {seq}");
        assert_eq!((line.app.as_str(), line.procid.as_str(), line.msgid.as_str()), ("airlock", pid.as_str(), "audit"));
        let pri = u16::from(LOCAL4) * 8 + u16::from(severity);
        assert!(line.raw.starts_with(&format!("<{pri}>1 {LOGGED_RFC3339} ")), "seq {seq}: {}", line.raw);
        assert!(line.raw.ends_with(&format!(" airlock {pid} audit {sd} {}", line.msg)), "seq {seq}: {}", line.raw);
        match format {
            Format::Cef => assert_eq!(line.msg, to_cef(event), "seq {seq}"),
            Format::Ocsf => assert_eq!(serde_json::from_str::<Value>(&line.msg).unwrap(), *event, "seq {seq}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// tests

#[test]
fn udp_records_arrive_intact() {
    let r = Rsyslog::start();
    round_trip(&r, r.udp());
}

#[test]
fn tcp_records_arrive_intact() {
    let r = Rsyslog::start();
    round_trip(&r, r.tcp());
}

#[test]
fn tls_records_arrive_intact() {
    let r = Rsyslog::start();
    round_trip(&r, r.tls());
    // The certificate is valid for the DNS name too.
    let mut sink = SyslogSink::new(r.tls_with("localhost", &r.pki.ca), Format::Cef, LOCAL4, false).unwrap();
    sink.deliver(&[item(300, common(6003, 1, "API Activity: Create", 1, 300))]).unwrap();
    assert!(r.wait_lines(9).iter().any(|l| l.sd == sd_seq(300)));
}

#[test]
fn tcp_framing_survives_1000_records_in_one_batch() {
    let r = Rsyslog::start();
    let mut sink = SyslogSink::new(r.tcp(), Format::Cef, LOCAL4, false).unwrap();
    let items: Vec<_> = (0..1000u64)
        .map(|seq| {
            let mut e = common(6003, 1, "API Activity: Create", 1, seq);
            // Varying lengths, digits and newlines: a framing error would split or merge records.
            e["message"] = json!(format!("{seq}\n{}", "x".repeat((seq as usize * 37) % 700)));
            item(seq, e)
        })
        .collect();
    sink.deliver(&items).unwrap();
    let lines = r.wait_lines(1000);
    r.barrier("after-batch");
    let lines = if lines.len() == 1000 { r.lines() } else { lines };
    let seqs: Vec<String> = lines.iter().map(|l| l.sd.clone()).collect();
    let want: Vec<String> = (0..1000).map(sd_seq).collect();
    assert_eq!(seqs, want, "every record once, in order");
    for (seq, line) in lines.iter().enumerate() {
        assert!(line.msg.contains(&format!("msg={seq}\\n")), "{line:?}");
    }
}

#[test]
fn tls_with_the_wrong_ca_or_name_fails_and_sends_no_plaintext() {
    let r = Rsyslog::start();
    let marker = "plaintext-marker-7f3a";
    let mut event = common(6003, 1, "API Activity: Create", 1, 1);
    event["message"] = json!(marker);
    let batch = [item(1, event)];

    let mut wrong_ca = SyslogSink::new(r.tls_with("127.0.0.1", &r.pki.other_ca), Format::Cef, LOCAL4, false).unwrap();
    let err = wrong_ca.deliver(&batch).unwrap_err();
    assert!(err.0.contains("certificate"), "{err}");
    assert!(err.0.starts_with(&format!("syslog tcp+tls://127.0.0.1:{} (cef): TLS handshake:", r.tls)), "{err}");

    let mut wrong_name = SyslogSink::new(r.tls_with("evil.example", &r.pki.ca), Format::Cef, LOCAL4, false).unwrap();
    let err = wrong_name.deliver(&batch).unwrap_err();
    assert!(err.0.contains("certificate"), "{err}");

    r.barrier("after-wrong-ca");
    assert!(r.lines().is_empty(), "{:#?}", r.lines());

    // What goes on the wire before the server is verified: a TLS ClientHello, never the record.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let capture = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        // Read what the client sends until it has nothing more to say, then hang up (a server that never
        // answers the handshake).
        while let Ok(n) = conn.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
            conn.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        }
        seen
    });
    let mut sink = SyslogSink::new(
        Transport::Tls { addr, server_name: "127.0.0.1".into(), ca_pem: Some(r.pki.ca.clone()) },
        Format::Cef,
        LOCAL4,
        false,
    )
    .unwrap();
    assert!(sink.deliver(&batch).is_err());
    let seen = capture.join().unwrap();
    assert!(seen.len() > 5 && seen[0] == 0x16 && seen[1] == 0x03, "not a TLS handshake record: {seen:?}");
    assert!(!seen.windows(marker.len()).any(|w| w == marker.as_bytes()), "record sent before verification");
}

#[test]
fn checkpoints_are_sent_only_when_wanted() {
    let r = Rsyslog::start();
    let note = "airlock.example/audit\n2\nq6KxJ0RhsO4=\n\n— airlock.example/audit AbCd==\n";
    let checkpoint = Arc::new(ExportItem::Checkpoint { size: 2, note: note.into() });

    let mut quiet = SyslogSink::new(r.tcp(), Format::Cef, LOCAL4, false).unwrap();
    quiet.deliver(std::slice::from_ref(&checkpoint)).unwrap();
    r.barrier("after-quiet");
    assert!(r.lines().is_empty());

    for format in [Format::Cef, Format::Ocsf] {
        let mut sink = SyslogSink::new(r.tcp(), format, LOCAL4, true).unwrap();
        assert!(sink.wants_checkpoints());
        sink.deliver(&[item(1, common(6003, 1, "API Activity: Create", 1, 1)), Arc::clone(&checkpoint)]).unwrap();
    }
    let lines = r.wait_lines(4);
    let cps: Vec<&Line> = lines.iter().filter(|l| l.msgid == "checkpoint").collect();
    assert_eq!(cps.len(), 2, "{lines:#?}");
    for cp in &cps {
        assert_eq!((cp.facility, cp.severity, cp.sd.as_str()), (LOCAL4, 6, "[airlock@32473 size=\"2\"]"));
    }
    // CEF: the note in msg, with its line breaks escaped; unescaping gives it back exactly.
    let cef = &cps[0].msg;
    assert!(cef.starts_with("CEF:0|Airlock|Airlock|"), "{cef}");
    assert_eq!(cef_unescape(cef.split_once(" msg=").unwrap().1), note);
    // OCSF format: a small JSON object.
    let v: Value = serde_json::from_str(&cps[1].msg).unwrap();
    assert_eq!(v, json!({"checkpoint": {"size": 2, "note": note}}));
}

#[test]
fn worker_retries_after_rsyslog_restarts() {
    let mut r = Rsyslog::start();
    for (round, transport) in [r.tcp(), r.tls()].into_iter().enumerate() {
        let base = 1000 * (round as u64 + 1);
        let sink = SyslogSink::new(transport, Format::Cef, LOCAL4, false).unwrap();
        let options = SinkOptions {
            retry_initial: Duration::from_millis(50),
            retry_max: Duration::from_millis(200),
            ..SinkOptions::default()
        };
        let worker = SinkWorker::start(Box::new(sink), options);
        let seen_before = r.lines().len();

        worker.offer(&[item(base, common(6003, 1, "API Activity: Create", 1, base))]);
        let lines = r.wait_lines(seen_before + 1);
        assert!(lines.iter().any(|l| l.sd == sd_seq(base)));
        assert!(wait_for(|| worker.status().delivered == 1), "{:?}", worker.status());

        r.stop();
        let queued: Vec<_> =
            (1..=3).map(|i| item(base + i, common(6003, 1, "API Activity: Create", 1, base + i))).collect();
        worker.offer(&queued);
        assert!(wait_for(|| !worker.status().healthy && worker.status().failures >= 2), "{:?}", worker.status());
        let status = worker.status();
        assert_eq!(status.queued, 3, "{status:?}");
        let error = status.last_error.unwrap_or_default();
        assert!(error.contains("connect"), "{error}");

        r.restart();
        let lines = r.wait_lines(seen_before + 4);
        for i in 1..=3 {
            let n = lines.iter().filter(|l| l.sd == sd_seq(base + i)).count();
            assert_eq!(n, 1, "seq {}: {lines:#?}", base + i);
        }
        assert!(wait_for(|| worker.status().healthy && worker.status().queued == 0), "{:?}", worker.status());
        let status = worker.shutdown(Duration::from_secs(5));
        assert_eq!(status.delivered, 4, "{status:?}");
    }
}

/// Undoes CEF extension-value escaping (`\\`, `\=`, `\n`, `\r`).
fn cef_unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        out.push(if c == '\\' {
            match chars.next().expect("dangling escape") {
                'n' => '\n',
                'r' => '\r',
                other => other,
            }
        } else {
            c
        });
    }
    out
}

/// Polls `cond` for up to 20 seconds.
fn wait_for(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}
