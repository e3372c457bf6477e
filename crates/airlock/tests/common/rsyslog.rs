//! A real rsyslog on loopback, as the SIEM's collector in tests of `[[audit.sinks]] type = "syslog"` through the
//! `airlock` binary (crates/airlock-audit/tests/syslog_rsyslog.rs tests the sink itself, with UDP and TLS too).
//!
//! One `rsyslogd -n` with a private config in a temporary directory: a TCP input (RFC 6587 octet counting, which is
//! what the sink sends) on a free 127.0.0.1 port, bound to a ruleset that writes one tab-separated line per message
//! (hostname, app name, procid, msgid, structured data, MSG). Its own messages go to another file, shown when a wait
//! fails. No imuxsock or imklog: neither /dev/log, the kernel log nor any system rsyslog is touched. Killed on drop.
//!
//! rsyslogd is required (scripts/test.sh installs the Debian package `rsyslog`): a missing binary fails.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Rsyslog {
    dir: tempfile::TempDir,
    child: Child,
    /// The TCP input's port on 127.0.0.1.
    pub tcp: u16,
}

/// One message as rsyslog parsed it.
#[derive(Debug, Clone)]
pub struct Line {
    pub hostname: String,
    pub app: String,
    pub procid: String,
    pub msgid: String,
    pub sd: String,
    pub msg: String,
}

impl Line {
    /// MSG as JSON (the sink's `format = "ocsf"`), or `None` if it is not.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_str(self.msg.trim()).ok()
    }
}

fn rsyslogd() -> PathBuf {
    ["/usr/sbin/rsyslogd", "/sbin/rsyslogd", "/usr/local/sbin/rsyslogd"]
        .iter()
        .map(PathBuf::from)
        .chain(std::env::var_os("PATH").iter().flat_map(std::env::split_paths).map(|d| d.join("rsyslogd")))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "rsyslogd not found: this test needs a real rsyslog (scripts/test.sh installs it: apt-get install \
                 --no-install-recommends rsyslog rsyslog-gnutls)"
            )
        })
}

impl Rsyslog {
    /// rsyslog, accepting TCP on a free loopback port (a few tries, in case the port is taken in between).
    pub fn start() -> Rsyslog {
        let bin = rsyslogd();
        let mut last = String::new();
        for attempt in 0..3 {
            let dir = tempfile::tempdir().unwrap();
            std::fs::create_dir(dir.path().join("work")).unwrap();
            let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let d = dir.path().display();
            let conf = dir.path().join("rsyslog.conf");
            std::fs::write(
                &conf,
                format!(
                    r#"global(workDirectory="{d}/work" maxMessageSize="64k")
module(load="imtcp")
template(name="airlock" type="string"
         string="%hostname%\t%app-name%\t%procid%\t%msgid%\t%structured-data%\t%msg%\n")
ruleset(name="airlock") {{
    action(type="omfile" file="{d}/out.log" template="airlock")
}}
input(type="imtcp" address="127.0.0.1" port="{tcp}" ruleset="airlock")
*.* action(type="omfile" file="{d}/internal.log")
"#
                ),
            )
            .unwrap();
            let check = Command::new(&bin).arg("-N1").arg("-f").arg(&conf).output().unwrap();
            assert!(
                check.status.success(),
                "rsyslogd -N1 rejected the test config:\n{}{}",
                String::from_utf8_lossy(&check.stdout),
                String::from_utf8_lossy(&check.stderr)
            );
            let log = std::fs::File::create(dir.path().join("rsyslogd.stderr")).unwrap();
            let child = Command::new(&bin)
                .arg("-n")
                .arg("-f")
                .arg(&conf)
                .arg("-i")
                .arg(dir.path().join("rsyslogd.pid"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("rsyslogd starts");
            let mut r = Rsyslog { dir, child, tcp };
            match r.wait_ready() {
                Ok(()) => return r,
                Err(e) => last = format!("try {attempt}: {e}\n{}", r.diagnostics()),
            }
        }
        panic!("rsyslogd did not come up in 3 tries: {last}");
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Err(format!("rsyslogd exited: {status}"));
            }
            let addr = ([127, 0, 0, 1], self.tcp).into();
            if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("port {} never accepted", self.tcp));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The path of the file every received message is written to.
    pub fn output(&self) -> PathBuf {
        self.dir.path().join("out.log")
    }

    /// Every whole line written so far (rsyslog may be halfway through the last one).
    pub fn lines(&self) -> Vec<Line> {
        let text = std::fs::read_to_string(self.output()).unwrap_or_default();
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        complete
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.splitn(6, '\t').collect();
                assert_eq!(f.len(), 6, "unexpected output line ({} bytes)", l.len());
                Line {
                    hostname: f[0].into(),
                    app: f[1].into(),
                    procid: f[2].into(),
                    msgid: f[3].into(),
                    sd: f[4].into(),
                    msg: f[5].into(),
                }
            })
            .collect()
    }

    /// Waits (at most `within`) until `done` holds for what has arrived, and returns it; panics naming `what`.
    pub fn wait_until(&self, within: Duration, what: &str, done: impl Fn(&[Line]) -> bool) -> Vec<Line> {
        let deadline = Instant::now() + within;
        loop {
            let lines = self.lines();
            if done(&lines) {
                return lines;
            }
            assert!(
                Instant::now() < deadline,
                "rsyslog did not receive {what} within {within:?} ({} lines so far)\n{}",
                lines.len(),
                self.diagnostics()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// rsyslog's own messages and its config, for failure messages.
    pub fn diagnostics(&self) -> String {
        let mut out = String::new();
        for name in ["internal.log", "rsyslogd.stderr", "rsyslog.conf"] {
            let text = std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
            out.push_str(&format!("--- {name}\n{text}"));
        }
        out
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
