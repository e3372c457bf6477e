//! `POST /v1/capabilities/{provider}/{capability}` through the daemon, end to end: the real daemon, curl as the
//! client, and a real HTTPS upstream on loopback (its certificate from a throwaway CA, given to the daemon with
//! `--upstream-ca`, its name pinned with `--resolve`).

mod common;

use common::daemon::{Daemon, Reply};
use common::upstream::{TlsUpstream, capability_policy};
use serde_json::{Value, json};

/// The provider's key, in the daemon's vault. No caller may ever see it.
const VALUE: &str = "exk_CAPABILITYCANARY0123456789abcdefghij";

const MODELS: &str = "/v1/capabilities/example/models";
const LIST: &str = r#"{"method":"GET","path":"/v1/models","headers":{"accept":"application/json"}}"#;

/// The daemon on a policy with provider `example` at `up`, and the key in its vault.
fn daemon(up: &TlsUpstream) -> Daemon {
    let flags = up.daemon_flags();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let d = Daemon::start_with(&capability_policy(up.port), &flags);
    // Set while the daemon runs, as an operator would: the next call's broker must see it.
    d.al.set("EXAMPLE_KEY", VALUE.as_bytes());
    d
}

/// A capability call as `agent`, acting as `tool` (None: no X-Airlock-Tool header).
fn invoke(d: &Daemon, agent: &str, tool: Option<&str>, path: &str, envelope: &str) -> Reply {
    let header = tool.map(|t| format!("X-Airlock-Tool: {t}"));
    let extra: Vec<&str> = header.iter().flat_map(|h| ["-H", h.as_str()]).collect();
    d.curl(Some(agent), "POST", path, Some(envelope), &extra)
}

/// A refusal by the broker: a problem of `kind` (the daemon's type for its status), naming the broker's step.
fn refused(r: &Reply, status: u16, problem: &str, step: &str) -> Value {
    let p = r.problem(status, problem);
    assert_eq!(p["kind"], step, "{p}");
    assert!(p["request_id"].as_str().is_some_and(|id| !id.is_empty()), "{p}");
    assert!(r.headers.to_ascii_lowercase().contains("x-airlock-deny:"), "{}", r.headers);
    p
}

fn assert_no_value(r: &Reply) {
    assert!(
        !r.headers.contains(VALUE) && !r.body.contains(VALUE),
        "the key reached the caller: {} {}",
        r.headers,
        r.body
    );
}

#[test]
fn an_agent_calls_a_capability_and_only_the_upstream_sees_the_key() {
    let up = TlsUpstream::start();
    let mut d = daemon(&up);
    let r = invoke(&d, "worker", Some("fetch"), MODELS, LIST);
    assert_eq!(r.status, 200, "{} {}", r.headers, r.body);
    assert_eq!(r.content_type, "application/json");
    let head = r.headers.to_ascii_lowercase();
    assert!(head.contains("x-airlock-capability: example/models"), "{head}");
    assert!(head.contains("x-upstream: yes"), "the upstream's own headers pass: {head}");
    assert!(!head.contains("set-cookie"), "the upstream's cookie stays behind: {head}");
    let v = r.json();
    assert_eq!(v["data"][0]["id"], "model-1", "{v}");
    // The upstream echoed the credential it got; the caller gets it masked.
    assert!(v["echo"].as_str().unwrap().contains("REDACTED"), "{v}");
    assert_no_value(&r);

    // The upstream got the real key, from the provider's recipe, and nothing of the caller's own credentials.
    let seen = up.seen();
    assert_eq!(seen.len(), 1, "{seen:#?}");
    assert_eq!(seen[0]["method"], "GET");
    assert_eq!(seen[0]["path"], "/v1/models");
    assert_eq!(seen[0]["headers"]["authorization"], format!("Bearer {VALUE}"));
    assert_eq!(seen[0]["headers"]["accept"], "application/json");
    let sent = seen[0].to_string();
    for token in d.tokens.values() {
        assert!(!sent.contains(token.as_str()), "a daemon token reached the upstream: {sent}");
    }
    assert!(!sent.to_ascii_lowercase().contains("x-airlock-tool"), "{sent}");

    // The upstream's own errors are its answer, passed on as they are (not problem documents), and a second call
    // goes through the same broker.
    let r = invoke(&d, "worker", Some("fetch"), MODELS, r#"{"method":"GET","path":"/v1/models/missing"}"#);
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(r.content_type, "application/json");
    assert_eq!(r.json(), json!({"upstream_error": "no such thing here"}));
    let head = r.headers.to_ascii_lowercase();
    assert!(head.contains("x-airlock-capability: example/models"), "{head}");
    // Its challenge is not passed on: a client would take it for the daemon's own (a bad daemon token).
    assert!(!head.contains("www-authenticate"), "{head}");
    assert_eq!(up.seen().len(), 2);

    // On the record: the calls, as agent worker acting as tool fetch, with the key injected (by name).
    assert_eq!(d.stop(), 0);
    d.al.call(["audit", "verify"]).expect(0);
    let q = d.al.call(["--json", "audit", "query", "--type", "api"]).expect(0);
    let events: Vec<Value> = q.out().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let calls: Vec<&Value> =
        events.iter().filter(|e| e["http_request"]["url"]["hostname"] == "api.example.com").collect();
    assert_eq!(calls.len(), 2, "{events:#?}");
    for e in calls {
        assert_eq!(e["actor"]["user"]["name"], "worker", "{e:#}");
        assert_eq!(e["actor"]["app_name"], "fetch", "{e:#}");
        assert_eq!(e["actor"]["authorizations"][0]["decision"], "allow", "{e:#}");
        assert_eq!(e["unmapped"]["airlock"]["secrets_injected"], json!(["EXAMPLE_KEY"]), "{e:#}");
    }
    assert!(!q.out().contains(VALUE));
    for file in std::fs::read_dir(d.al.home.join("audit/segments")).unwrap() {
        let data = std::fs::read(file.unwrap().path()).unwrap();
        assert!(!data.windows(VALUE.len()).any(|w| w == VALUE.as_bytes()), "the key reached the audit log");
    }
}

#[test]
fn an_answer_cut_off_upstream_is_cut_off_for_the_caller_too() {
    let up = TlsUpstream::start();
    let d = daemon(&up);
    // The answer streams (it is masked as it goes, so its length is not known): a clean end of the daemon's body
    // would pass the first 2,000 bytes off as the whole answer.
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "20", "-X", "POST", "-H", &format!("Authorization: Bearer {}", d.tokens["worker"])])
        .args(["-H", "X-Airlock-Tool: fetch", "-H", "Content-Type: application/json"])
        .args(["--data-binary", r#"{"method":"GET","path":"/v1/models/cut"}"#])
        .arg(format!("{}{MODELS}", d.url))
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "curl took a cut-off answer for a whole one: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    // 18: the head and part of the body came, then the connection closed; 52: it closed before the head was sent
    // (the cut came first); 56: it was reset. Never a clean end.
    let code = out.status.code();
    assert!(matches!(code, Some(18 | 52 | 56)), "{code:?}: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(up.seen().len(), 1);
}

#[test]
fn a_secret_store_that_is_down_is_a_503_with_retry_after_and_nothing_goes_upstream() {
    let up = TlsUpstream::start();
    // The provider's key lives in OpenBao, at an address where nothing listens.
    let policy = capability_policy(up.port).replace(
        "[secrets.EXAMPLE_KEY]\n",
        &format!(
            "{}[secrets.EXAMPLE_KEY]\nsource = \"bao://secret/airlock/example#api_key\"\n",
            common::bao::unreachable_backend("AIRLOCK_BAO_TOKEN")
        ),
    );
    assert!(policy.contains("source = \"bao://"), "{policy}");
    const BAO_TOKEN: &str = "s.STORETOKENCANARY0123456789";
    let flags = up.daemon_flags();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let d = Daemon::start_with_env(&policy, &flags, &[("AIRLOCK_BAO_TOKEN", BAO_TOKEN)]);

    let r = invoke(&d, "worker", Some("fetch"), MODELS, LIST);
    let p = r.problem(503, "unavailable");
    let detail = p["detail"].as_str().unwrap();
    assert!(detail.contains("EXAMPLE_KEY") || detail.contains("bao://secret/airlock/example"), "{p}");
    assert!(detail.contains("unavailable"), "{p}");
    // A temporary outage, not the daemon failing: the caller is told when to try again.
    assert!(r.headers.to_ascii_lowercase().contains("retry-after: 5"), "{}", r.headers);
    assert!(!r.headers.contains(BAO_TOKEN) && !r.body.contains(BAO_TOKEN), "the store's token reached the caller");
    assert!(up.seen().is_empty(), "a call without its credential reached the upstream: {:#?}", up.seen());
}

#[test]
fn a_tool_the_agent_may_not_use_is_refused_with_a_problem() {
    let up = TlsUpstream::start();
    let mut d = daemon(&up);
    // other may use t only.
    let p = invoke(&d, "other", Some("fetch"), MODELS, LIST).problem(403, "forbidden");
    assert!(p["detail"].as_str().unwrap().contains("may not use tool fetch"), "{p}");
    // A tool the policy does not have.
    let p = invoke(&d, "worker", Some("nope"), MODELS, LIST).problem(403, "forbidden");
    assert!(p["detail"].as_str().unwrap().contains("tool nope"), "{p}");
    // A tool the agent may use, but which is not given the provider's secret: the broker refuses.
    let r = invoke(&d, "worker", Some("t"), MODELS, LIST);
    let p = refused(&r, 403, "forbidden", "capability");
    assert!(p["detail"].as_str().unwrap().contains("EXAMPLE_KEY"), "{p}");
    // No tool named, or one named twice, or an invalid name.
    invoke(&d, "worker", None, MODELS, LIST).problem(400, "bad-request");
    let twice = ["-H", "X-Airlock-Tool: fetch", "-H", "X-Airlock-Tool: t"];
    d.curl(Some("worker"), "POST", MODELS, Some(LIST), &twice).problem(400, "bad-request");
    invoke(&d, "worker", Some("a b"), MODELS, LIST).problem(400, "bad-request");
    // An auditor's role does not act.
    invoke(&d, "aud", Some("fetch"), MODELS, LIST).problem(403, "forbidden");
    assert!(up.seen().is_empty(), "nothing reached the upstream: {:#?}", up.seen());

    assert_eq!(d.stop(), 0);
    let q = d.al.call(["--json", "audit", "query", "--type", "api", "--decision", "deny"]).expect(0);
    let events: Vec<Value> = q.out().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let by = |agent: &str, tool: &str| {
        events.iter().any(|e| e["actor"]["user"]["name"] == agent && e["actor"]["app_name"] == tool)
    };
    assert!(by("other", "fetch"), "the grant refusal is on the record: {events:#?}");
    assert!(by("worker", "nope"), "{events:#?}");
    assert!(by("worker", "t"), "the broker's refusal is on the record: {events:#?}");
}

#[test]
fn a_path_or_method_outside_the_capability_is_refused() {
    let up = TlsUpstream::start();
    let d = daemon(&up);
    // /v1/files is another capability's; the models capability does not reach it.
    let r = invoke(&d, "worker", Some("fetch"), MODELS, r#"{"method":"GET","path":"/v1/files"}"#);
    let p = refused(&r, 403, "forbidden", "path");
    assert!(p["detail"].as_str().unwrap().contains("/v1/models"), "it names what the capability allows: {p}");
    for escape in ["/v1/models/../files", "/v1/models/%2e%2e/files", "/v1/models/%252e%252e/files", "/v1//models"] {
        let envelope = json!({"method": "GET", "path": escape}).to_string();
        let r = invoke(&d, "worker", Some("fetch"), MODELS, &envelope);
        assert!(matches!(r.status, 400 | 403), "{escape}: {} {}", r.status, r.body);
        assert_eq!(r.content_type, "application/problem+json", "{escape}: {}", r.body);
        assert_eq!(r.json()["kind"], "path", "{escape}: {}", r.body);
    }
    let r = invoke(&d, "worker", Some("fetch"), MODELS, r#"{"method":"DELETE","path":"/v1/models/m"}"#);
    refused(&r, 405, "method-not-allowed", "method");
    // The caller may not choose where the request goes, nor how it is authenticated.
    let r = invoke(
        &d,
        "worker",
        Some("fetch"),
        MODELS,
        r#"{"method":"GET","path":"/v1/models","headers":{"host":"evil.example"}}"#,
    );
    refused(&r, 400, "bad-request", "envelope");
    let r = invoke(
        &d,
        "worker",
        Some("fetch"),
        MODELS,
        r#"{"method":"GET","path":"/v1/models","headers":{"authorization":"Bearer mine"}}"#,
    );
    refused(&r, 400, "bad-request", "envelope");
    // Not JSON at all: the daemon's own rules for bodies.
    let r = d.curl(Some("worker"), "POST", MODELS, None, &["-H", "X-Airlock-Tool: fetch", "--data-binary", "x"]);
    r.problem(415, "unsupported-media-type");
    assert!(up.seen().is_empty(), "nothing reached the upstream: {:#?}", up.seen());
}

#[test]
fn an_unknown_provider_or_capability_is_not_found() {
    let up = TlsUpstream::start();
    let d = daemon(&up);
    let r = invoke(&d, "worker", Some("fetch"), "/v1/capabilities/nosuch/models", LIST);
    refused(&r, 404, "not-found", "capability");
    let r = invoke(&d, "worker", Some("fetch"), "/v1/capabilities/example/nosuch", LIST);
    let p = refused(&r, 404, "not-found", "capability");
    assert!(p["detail"].as_str().unwrap().contains("files, models"), "it lists what there is: {p}");
    // Names the registry cannot hold name no route at all.
    for path in ["/v1/capabilities/Example/models", "/v1/capabilities/example", "/v1/capabilities/example/models/x"] {
        let p = invoke(&d, "worker", Some("fetch"), path, LIST).problem(404, "not-found");
        assert!(p.get("kind").is_none(), "{p}");
    }
    assert!(up.seen().is_empty(), "{:#?}", up.seen());
}

#[test]
fn a_rotated_key_and_a_reloaded_policy_reach_the_next_call() {
    let up = TlsUpstream::start();
    let d = daemon(&up);
    assert_eq!(invoke(&d, "worker", Some("fetch"), MODELS, LIST).status, 200);
    // The key is rotated by another process: the next call's broker is built from the vault as it now is.
    let rotated = "exk_ROTATEDCANARY0123456789abcdefghijklm";
    d.al.call(["secret", "rotate", "EXAMPLE_KEY", "--raw"]).stdin(rotated.as_bytes()).expect(0);
    let r = invoke(&d, "worker", Some("fetch"), MODELS, LIST);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!r.body.contains(rotated) && !r.body.contains(VALUE), "{}", r.body);
    assert_eq!(up.seen()[1]["headers"]["authorization"], format!("Bearer {rotated}"));
    // The operator withdraws the capability; a reload (SIGHUP) rebuilds the broker for the next call.
    let generation = |d: &Daemon| d.call(None, "GET", "/v1/ready", None).json()["policy_generation"].as_u64().unwrap();
    let before = generation(&d);
    let config = d.al.home.join("airlock.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("[providers.example.capabilities.models]", "[providers.example.capabilities.gone]"),
    )
    .unwrap();
    let sent = std::process::Command::new("kill").args(["-HUP", &d.child.id().to_string()]).status().unwrap();
    assert!(sent.success());
    let mut reloaded = false;
    for _ in 0..200 {
        if generation(&d) > before {
            reloaded = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    assert!(reloaded, "the daemon reloaded the policy");
    let r = invoke(&d, "worker", Some("fetch"), MODELS, LIST);
    refused(&r, 404, "not-found", "capability");
    assert_eq!(up.seen().len(), 2, "only the calls before the reload went out");
}
