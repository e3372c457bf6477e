//! Attack: a tool running in a sandbox (started through the daemon) reaches the daemon's API socket or the audit
//! log's socket, to act with the daemon's authority or to forge records.
//! Defence: the sandbox sees its workspace and system directories only; AIRLOCK_HOME, with both sockets, the vault
//! and the agent store, is not there at all.

use crate::common::daemon::{Daemon, RUNNABLE, events, run_body};

#[test]
fn daemon_socket_reached_from_inside_a_sandbox() {
    let d = Daemon::start_with(RUNNABLE, &[]);
    let home = d.al.home.display().to_string();
    let script = format!(
        "for f in {home}/airlock.sock {home}/audit.sock {home}/agents.json {home}/vault.airlock {home}; do \
         if [ -e \"$f\" ]; then echo \"visible $f\"; else echo \"hidden $f\"; fi; done; \
         echo probe > {home}/airlock.sock 2>/dev/null && echo wrote || echo refused"
    );
    let ev = events(&d.call(Some("worker"), "POST", "/v1/runs", Some(&run_body(&d, &["sh", "-c", &script], ""))));
    let out: String = ev.iter().filter(|e| e["event"] == "stdout").map(|e| e["data"].as_str().unwrap()).collect();
    assert!(!out.contains("visible"), "the sandbox can see the daemon's home:\n{out}");
    assert_eq!(out.matches("hidden").count(), 5, "{out}");
    assert!(out.contains("refused"), "{out}");
    assert_eq!(ev.last().unwrap()["event"], "exit");
}
