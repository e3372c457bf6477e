//! `airlock audit` through the daemon: with an auditor's token, `verify`, `query`, `tail` and `checkpoint` ask the
//! daemon (`GET /v1/audit/verify`, `/records`, `/checkpoint`) and print what the standalone command prints, byte for
//! byte, on the same log.
//!
//! The log is kept still while the two are compared: no checkpoint is signed on a timer (`checkpoint_interval` and
//! `heartbeat` of an hour) and nothing in the comparison writes a record. Small segments make the daemon read the
//! log across several of them, and over a thousand records make `query` and `tail` read it in pages.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Command;
use std::time::Duration;

use common::daemon::Daemon;

const QUIET_AUDIT: &str = r#"[audit]
checkpoint_every = 1000000
checkpoint_interval = "1h"
heartbeat = "1h"
segment_max_size = "64KiB"

[agents.worker]
tools = ["t"]

[tools.t]
"#;

/// How many refused capability calls fill the log: more than one page of records (1000).
const CALLS: usize = 1100;

/// The daemon on a log of more than a thousand records, several segments long.
fn daemon() -> Daemon {
    let d = Daemon::start_with(QUIET_AUDIT, &["--rate", "100000"]);
    // Each call names a tool the policy does not have: refused (403), and each refusal is an audit record. One curl,
    // one connection, so this takes a moment rather than a thousand processes.
    let url = format!("{}/v1/capabilities/example/models", d.url);
    // Each answer's body, then a line with its status.
    let mut args: Vec<String> = ["-s", "-w", "\\n@%{http_code}\\n"].map(String::from).to_vec();
    for h in [format!("Authorization: Bearer {}", d.tokens["worker"]), "X-Airlock-Tool: nope".into()] {
        args.extend(["-H".into(), h]);
    }
    args.extend(
        ["-H", "Content-Type: application/json", "-d", r#"{"method":"GET","path":"/v1/models"}"#].map(String::from),
    );
    args.extend(std::iter::repeat_n(url, CALLS));
    let out = Command::new("curl").args(&args).output().expect("curl runs");
    let codes = String::from_utf8_lossy(&out.stdout);
    assert_eq!(codes.lines().filter(|c| *c == "@403").count(), CALLS, "{codes}");
    // One refusal without a token too: an API record whose actor is "unauthenticated".
    d.call(None, "GET", "/v1/whoami", None).problem(401, "unauthorized");
    let segments = std::fs::read_dir(d.al.home.join("audit/segments")).unwrap().count();
    assert!(segments > 3, "{segments} segment(s)");
    d
}

/// The same command standalone (the vault's passphrase, no token) and through the daemon (an auditor's token, no
/// passphrase): exit code, stdout and stderr.
fn both(d: &Daemon, args: &[&str]) -> [(Option<i32>, String, String); 2] {
    let standalone = d.al.call(args).run();
    let through = d.al.call(args).env_remove("AIRLOCK_PASSPHRASE").env("AIRLOCK_TOKEN", &d.tokens["aud"]).run();
    [standalone, through].map(|r| (r.code, r.out(), r.err()))
}

fn same(d: &Daemon, args: &[&str]) -> String {
    let [standalone, through] = both(d, args);
    if through != standalone {
        // The first line that differs: the outputs run to a thousand lines.
        let lines = |r: &(Option<i32>, String, String)| format!("exit {:?}\n{}{}", r.0, r.1, r.2);
        let (a, b) = (lines(&through), lines(&standalone));
        let at = a.lines().zip(b.lines()).position(|(x, y)| x != y).unwrap_or(a.lines().count().min(b.lines().count()));
        panic!(
            "airlock {args:?}: through the daemon and standalone differ at line {at}:\n  daemon:     {:?}\n  standalone: {:?}",
            a.lines().nth(at),
            b.lines().nth(at)
        );
    }
    standalone.1
}

#[test]
fn audit_commands_through_the_daemon_print_what_they_print_standalone() {
    let d = daemon();
    // What the comparisons compare is worth comparing: the whole log, in pages, and filters that select.
    let verify = same(&d, &["audit", "verify"]);
    assert!(verify.contains(&format!("audit log {}", d.al.home.join("audit").display())), "{verify}");
    assert!(verify.contains("(from the vault)") && verify.ends_with("OK\n"), "{verify}");
    let report: serde_json::Value = serde_json::from_str(&same(&d, &["--json", "audit", "verify"])).unwrap();
    assert_eq!(report["ok"], true, "{report}");
    assert!(report["records"].as_u64().unwrap() > CALLS as u64, "{report}");
    assert!(report.get("note").is_none() && report["latest_checkpoint"].get("note").is_none(), "{report}");
    same(&d, &["audit", "verify", "--max-age", "1h"]);

    let all = same(&d, &["--json", "audit", "query"]);
    let seqs: Vec<u64> = all
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["metadata"]["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>(), "every record once, in order");
    assert!(seqs.len() > CALLS, "{} records", seqs.len());
    assert_eq!(same(&d, &["audit", "query"]).lines().count(), seqs.len());
    let denied = same(&d, &["audit", "query", "--decision", "deny"]);
    assert!(denied.lines().count() > CALLS, "{denied}");
    let anon = same(&d, &["audit", "query", "--actor", "unauthenticated", "--type", "api"]);
    assert_eq!(anon.lines().count(), 1, "{anon}");
    assert!(anon.contains("API request refused: no bearer token"), "{anon}");
    let lifecycle = same(&d, &["--json", "audit", "query", "--type", "lifecycle", "--since", "1h"]);
    assert!(lifecycle.contains("airlock serve"), "{lifecycle}");
    assert_eq!(same(&d, &["audit", "query", "--until", "2000-01-01T00:00:00Z"]), "");

    assert_eq!(same(&d, &["audit", "tail"]).lines().count(), 10);
    assert_eq!(same(&d, &["--json", "audit", "tail", "-n", "3"]).lines().count(), 3);
    // More than a page: the daemon's newest page, and the records before it read forward.
    let long = same(&d, &["audit", "tail", "-n", "1050"]);
    assert_eq!(long.lines().count(), 1050);
    assert_eq!(same(&d, &["audit", "tail", "-n", "0"]), "");

    // A checkpoint saved through the daemon is the one saved standalone, and holds the log to it later.
    let saved = |name: &str, through: bool| {
        let file = d.al.path(name);
        let mut call = d.al.call(["audit", "verify", "--save-checkpoint"]).arg(&file);
        if through {
            call = call.env_remove("AIRLOCK_PASSPHRASE").env("AIRLOCK_TOKEN", &d.tokens["aud"]);
        }
        call.expect(0);
        std::fs::read_to_string(file).unwrap()
    };
    let note = saved("through.note", true);
    assert_eq!(note, saved("standalone.note", false));
    assert!(note.starts_with("airlock/audit/"), "{note}");
    // A trust anchor is checked by the command itself, never by the daemon it is meant to hold to account: with
    // --checkpoint (or --key) it reads the files, so an auditor's token without the vault does not do.
    let anchored = |token: Option<&str>| {
        let mut call = d.al.call(["audit", "verify", "--checkpoint"]).arg(d.al.path("through.note"));
        if let Some(t) = token {
            call = call.env_remove("AIRLOCK_PASSPHRASE").env("AIRLOCK_TOKEN", t);
        }
        call.run()
    };
    assert_eq!(anchored(None).code, Some(0));
    assert_eq!(anchored(Some(&d.tokens["aud"])).code, Some(3), "the vault is needed for the key");

    // The daemon's routes decide who reads the log: an agent may not, and is told so by the daemon.
    for args in [&["audit", "verify"][..], &["audit", "query"], &["audit", "tail"], &["audit", "checkpoint"]] {
        let r = d.al.call(args).env_remove("AIRLOCK_PASSPHRASE").env("AIRLOCK_TOKEN", &d.tokens["worker"]).run();
        assert_eq!(r.code, Some(9), "{args:?}: {}", r.err());
        assert!(r.err().contains("the daemon refused (403)"), "{}", r.err());
    }
    // `audit checkpoint` through the daemon: a signed note the standalone verifier accepts (standalone, the command
    // cannot sign one at all while the daemon holds the log).
    let cp = d.al.call(["audit", "checkpoint"]).env_remove("AIRLOCK_PASSPHRASE").env("AIRLOCK_TOKEN", &d.tokens["aud"]);
    let cp = cp.expect(0).out();
    std::fs::write(d.al.path("fresh.note"), &cp).unwrap();
    d.al.call(["audit", "verify", "--checkpoint"]).arg(d.al.path("fresh.note")).expect(0);
}

#[test]
fn a_tampered_log_fails_the_same_way_through_the_daemon() {
    let d = daemon();
    // Rewrite one refusal in the oldest segment (the writer has long moved on from it).
    let dir = d.al.home.join("audit/segments");
    let mut segments: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    segments.sort();
    let first = &segments[0];
    let text = std::fs::read_to_string(first).unwrap();
    let tampered = text.replacen("tool nope is not in the policy", "tool nope is not in the polic!", 1);
    assert_ne!(text, tampered, "the oldest segment holds a refusal to rewrite");
    std::fs::write(first, tampered).unwrap();

    let [standalone, through] = both(&d, &["audit", "verify"]);
    assert_eq!(through, standalone);
    assert_eq!(standalone.0, Some(10));
    assert!(standalone.2.contains("FAILED: first bad record: seq "), "{}", standalone.2);
    assert!(standalone.2.contains("  problem: seq "), "{}", standalone.2);
    assert!(standalone.2.contains(&first.display().to_string()), "problems name the file: {}", standalone.2);
    let [standalone, through] = both(&d, &["--json", "audit", "verify"]);
    assert_eq!(through, standalone);
    let report: serde_json::Value = serde_json::from_str(&standalone.1).unwrap();
    assert_eq!((report["ok"].clone(), standalone.0), (false.into(), Some(10)), "{report}");
}

#[test]
fn tail_follows_new_records_through_the_daemon() {
    let d = Daemon::start_with(QUIET_AUDIT, &[]);
    let (mut child, _stdin) =
        d.al.call(["audit", "tail", "-f", "-n", "0"])
            .env_remove("AIRLOCK_PASSPHRASE")
            .env("AIRLOCK_TOKEN", &d.tokens["aud"])
            .spawn();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    // Nothing from before it started (-n 0); then each new refusal is printed. Until the first one shows, the
    // command may still be learning where the log ends (and so count a refusal as before it): refuse again.
    let refuse = || d.call(None, "GET", "/v1/whoami", None).problem(401, "unauthorized");
    let mut first = None;
    for _ in 0..60 {
        refuse();
        if let Ok(line) = rx.recv_timeout(Duration::from_secs(1)) {
            first = Some(line);
            break;
        }
    }
    let first = first.expect("no new record was followed");
    assert!(first.contains("API request refused: no bearer token"), "{first}");
    refuse();
    // A generous bound, only so that a broken follow fails instead of hanging the suite.
    let second = rx.recv_timeout(Duration::from_secs(60)).expect("the next record was not followed");
    assert!(second.contains("API request refused: no bearer token"), "{second}");
    assert_ne!(first, second, "each record once");
    let _ = child.kill();
    let _ = child.wait();
}
