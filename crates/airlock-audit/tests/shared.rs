//! The log shared by several processes: one owner serving clients on a Unix socket, records from both in one
//! verifiable log, handover when the owner closes, and a server that survives bad requests.
//!
//! The log's lock is a `flock`, held per open file description, so two opens in one test process contend just
//! as two processes do: an owner and a client can live in the same test.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use airlock_audit::shared::{MAX_REQUEST_BYTES, OpenLog};
use airlock_audit::{Append, AuditError, AuditLog, Event, Options, SharedLog, reader};
use common::*;

struct Home {
    _dir: tempfile::TempDir,
    log: PathBuf,
    socket: PathBuf,
}

fn home() -> Home {
    let dir = tempfile::tempdir().unwrap();
    Home { log: dir.path().join("audit"), socket: dir.path().join("audit.sock"), _dir: dir }
}

fn opener(dir: &Path) -> OpenLog {
    let dir = dir.to_path_buf();
    Box::new(move |lock_timeout| AuditLog::open(&dir, signer(), Options { lock_timeout, ..opts() }, vec![]))
}

fn tagged(who: &str, i: u64) -> Event {
    event(i).message(format!("{who} {i}"))
}

/// How many times each message occurs in the log.
fn messages(dir: &Path) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    reader::for_each(dir, |r| {
        if let Some(m) = r.event.get("message").and_then(|m| m.as_str()) {
            *seen.entry(m.to_owned()).or_insert(0) += 1;
        }
        true
    })
    .unwrap();
    seen
}

fn assert_each_once(seen: &HashMap<String, usize>, who: &str, n: u64) {
    for i in 0..n {
        let m = format!("{who} {i}");
        assert_eq!(seen.get(&m), Some(&1), "{m:?} should be in the log exactly once");
    }
}

fn assert_verifies(dir: &Path) {
    let r = verify(dir);
    assert!(r.ok(), "{}", describe(&r));
    assert_eq!(r.unsigned_records, 0, "the final checkpoint covers everything");
}

/// One request line over a raw connection, and the reply line.
fn exchange(conn: &mut BufReader<UnixStream>, line: &[u8]) -> serde_json::Value {
    conn.get_mut().write_all(line).unwrap();
    let mut reply = String::new();
    conn.read_line(&mut reply).unwrap();
    serde_json::from_str(&reply).unwrap_or_else(|e| panic!("reply {reply:?}: {e}"))
}

fn raw_request(event: &Event, durable: bool) -> Vec<u8> {
    let mut line = serde_json::to_vec(&serde_json::json!({"durable": durable, "event": event.to_value()})).unwrap();
    line.push(b'\n');
    line
}

#[test]
fn an_owner_and_a_client_write_one_log() {
    let h = home();
    let owner = SharedLog::open(&h.socket, opener(&h.log)).unwrap();
    assert!(owner.is_owner());
    let mode = std::fs::metadata(&h.socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the socket is for this user only");
    let client = SharedLog::open(&h.socket, opener(&h.log)).unwrap();
    assert!(!client.is_owner(), "the lock is taken, so the second open connects");

    let (owner, client) = (Arc::new(owner), Arc::new(client));
    let writers: Vec<_> = [("owner", Arc::clone(&owner)), ("client", Arc::clone(&client))]
        .into_iter()
        .map(|(who, log)| {
            std::thread::spawn(move || {
                let mut seqs = Vec::new();
                for i in 0..100 {
                    // Both kinds of append, through the trait the broker uses.
                    let log: &dyn Append = &*log;
                    let r = if i % 2 == 0 { log.append(tagged(who, i)) } else { log.append_buffered(tagged(who, i)) };
                    seqs.push(r.unwrap().seq);
                }
                seqs
            })
        })
        .collect();
    let mut seqs: Vec<u64> = writers.into_iter().flat_map(|w| w.join().unwrap()).collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), 200, "every record got its own sequence number");

    Arc::into_inner(client).unwrap().close().unwrap();
    Arc::into_inner(owner).unwrap().close().unwrap();
    assert!(!h.socket.exists(), "the owner removes its socket when it closes");
    assert_verifies(&h.log);
    let seen = messages(&h.log);
    assert_each_once(&seen, "owner", 100);
    assert_each_once(&seen, "client", 100);
    assert_eq!(verify(&h.log).tree_size(), 202, "opened + 200 + closed");
}

#[test]
fn a_client_takes_over_when_the_owner_closes() {
    let h = home();
    let owner = SharedLog::open(&h.socket, opener(&h.log)).unwrap();
    let client = SharedLog::open(&h.socket, opener(&h.log)).unwrap();
    assert!(!client.is_owner());
    for i in 0..10 {
        client.append(tagged("client", i)).unwrap();
        owner.append(tagged("owner", i)).unwrap();
    }
    // Acknowledged but not yet durable when the owner closes: the close must still keep it.
    client.append_buffered(tagged("buffered", 0)).unwrap();
    owner.close().unwrap();

    // The connection is gone; the next append takes the lock and writes the log itself.
    client.append(tagged("client", 10)).unwrap();
    assert!(client.is_owner(), "the client became the owner");
    for i in 11..20 {
        client.append(tagged("client", i)).unwrap();
    }
    // And serves the next process.
    let third = SharedLog::open(&h.socket, opener(&h.log)).unwrap();
    assert!(!third.is_owner());
    third.append(tagged("third", 0)).unwrap();
    third.close().unwrap();
    client.close().unwrap();

    assert_verifies(&h.log);
    let seen = messages(&h.log);
    assert_each_once(&seen, "owner", 10);
    assert_each_once(&seen, "client", 20);
    assert_each_once(&seen, "buffered", 1);
    assert_each_once(&seen, "third", 1);
}

#[test]
fn records_in_flight_during_a_handover_are_not_lost() {
    let h = home();
    let owner = SharedLog::open(&h.socket, opener(&h.log)).unwrap();
    let client = Arc::new(SharedLog::open(&h.socket, opener(&h.log)).unwrap());
    assert!(!client.is_owner());
    let done = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let (client, done) = (Arc::clone(&client), Arc::clone(&done));
            std::thread::spawn(move || {
                for i in 0..50 {
                    let e = tagged(&format!("writer-{t}"), i);
                    // Every append must succeed: before the handover, across it, or after it.
                    let r = if i % 2 == 0 { client.append(e) } else { client.append_buffered(e) };
                    r.unwrap_or_else(|err| panic!("writer {t} record {i}: {err}"));
                    done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            })
        })
        .collect();
    // Close the owner while the writers are busy (once some records went through it).
    while done.load(std::sync::atomic::Ordering::SeqCst) < 20 {
        std::thread::yield_now();
    }
    owner.close().unwrap();
    for w in writers {
        w.join().unwrap();
    }
    // If the writers finished before the close, this append is the one that takes over.
    client.append(tagged("after", 0)).unwrap();
    assert!(client.is_owner());
    Arc::into_inner(client).unwrap().close().unwrap();

    assert_verifies(&h.log);
    let seen = messages(&h.log);
    for t in 0..4 {
        for i in 0..50 {
            // A record whose reply was lost in the handover is sent again: it may be there twice, never zero times.
            let m = format!("writer-{t} {i}");
            assert!(seen.get(&m).is_some_and(|&n| (1..=2).contains(&n)), "{m:?} occurs {:?} times", seen.get(&m));
        }
    }
}

#[test]
fn the_owner_refuses_oversized_and_malformed_requests_and_keeps_serving() {
    let h = home();
    let owner = SharedLog::open(&h.socket, opener(&h.log)).unwrap();
    let client = SharedLog::open(&h.socket, opener(&h.log)).unwrap();

    // A line longer than the cap: an error, then the connection is closed (the framing is lost).
    let big = UnixStream::connect(&h.socket).unwrap();
    let mut writer = big.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        // The owner stops reading after the cap, so the tail of this write may fail: that is expected.
        let mut line = vec![b'a'; MAX_REQUEST_BYTES + 4096];
        line.push(b'\n');
        let _ = writer.write_all(&line);
    });
    let mut big = BufReader::new(big);
    let mut reply = String::new();
    big.read_line(&mut reply).unwrap();
    let reply: serde_json::Value = serde_json::from_str(&reply).unwrap();
    assert!(reply["error"].as_str().is_some_and(|e| e.contains("longer than")), "{reply}");
    let mut rest = String::new();
    // Closed with the rest of the line unread: Linux reports that as a reset rather than an end of file.
    let after = big.read_line(&mut rest);
    assert!(
        matches!(&after, Ok(0)) || after.as_ref().is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "then the connection is closed: {after:?} {rest:?}"
    );
    sender.join().unwrap();

    // Malformed JSON, a request without an event, an event of no known class: an error each, and the same
    // connection carries on.
    let mut conn = BufReader::new(UnixStream::connect(&h.socket).unwrap());
    for bad in [
        &b"{not json\n"[..],
        b"{\"durable\":true}\n",
        b"{\"durable\":true,\"event\":{\"class_uid\":1234,\"message\":\"forged\"}}\n",
        b"{\"durable\":true,\"event\":[]}\n",
    ] {
        let reply = exchange(&mut conn, bad);
        assert!(reply["error"].is_string(), "{} got {reply}", String::from_utf8_lossy(bad));
        assert!(reply.get("seq").is_none());
    }
    let ok = exchange(&mut conn, &raw_request(&tagged("raw", 0), true));
    assert!(ok["seq"].is_u64() && ok["logged_ms"].is_i64(), "{ok}");
    drop(conn);

    // Other clients were never disturbed.
    client.append(tagged("client", 0)).unwrap();
    owner.append(tagged("owner", 0)).unwrap();
    client.close().unwrap();
    owner.close().unwrap();

    assert_verifies(&h.log);
    let seen = messages(&h.log);
    assert_each_once(&seen, "raw", 1);
    assert_each_once(&seen, "client", 1);
    assert_each_once(&seen, "owner", 1);
    assert!(!seen.contains_key("forged"), "a refused request leaves no record");
}

#[test]
fn a_stale_socket_is_replaced_by_the_next_owner() {
    let h = home();
    // What an owner killed with SIGKILL leaves: a socket file nobody listens on (its lock died with it).
    drop(std::os::unix::net::UnixListener::bind(&h.socket).unwrap());
    assert!(h.socket.exists());
    let owner = SharedLog::open(&h.socket, opener(&h.log)).unwrap();
    assert!(owner.is_owner());
    let client = SharedLog::open(&h.socket, opener(&h.log)).unwrap();
    client.append(tagged("client", 0)).unwrap();
    client.close().unwrap();
    owner.close().unwrap();
    assert_each_once(&messages(&h.log), "client", 1);
}

#[test]
fn without_an_owner_to_reach_or_a_lock_to_take_open_fails_closed() {
    let h = home();
    // Holds the lock but serves nobody (an old-style writer, or an owner that cannot serve).
    let holder = AuditLog::open(&h.log, signer(), opts(), vec![]).unwrap();
    let err = SharedLog::open(&h.socket, opener(&h.log)).unwrap_err();
    assert!(matches!(err, AuditError::Shared { .. }), "{err}");
    assert!(err.to_string().contains("denied"), "{err}");
    holder.close().unwrap();
}

#[test]
fn the_owner_reports_its_lag_and_signs_a_checkpoint_on_demand() {
    let h = home();
    let owner = SharedLog::open(&h.socket, opener(&h.log)).unwrap();
    let client = SharedLog::open(&h.socket, opener(&h.log)).unwrap();
    // A client has no view of the owner's log.
    assert!(client.status().is_none());
    assert!(client.checkpoint().is_none());
    for i in 0..3 {
        client.append(tagged("client", i)).unwrap();
    }
    let before = owner.status().expect("the owner sees its log");
    assert!(before.records > before.checkpoint_size, "records past the last checkpoint: {before:?}");
    let signed = owner.checkpoint().expect("the owner signs").unwrap();
    assert_eq!(signed.checkpoint.size, before.records, "the checkpoint covers every record");
    let after = owner.status().unwrap();
    assert_eq!(after.checkpoint_size, after.records, "nothing left unsigned: {after:?}");
    client.close().unwrap();
    owner.close().unwrap();
    assert_verifies(&h.log);
}
