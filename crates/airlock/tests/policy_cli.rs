//! `airlock policy check | explain | schema` run as a subprocess against a copy of the policy fixture
//! (`crates/airlock-policy/tests/fixtures`), in a throwaway directory with its own `HOME`, `AIRLOCK_HOME` and
//! workspace, and an otherwise empty environment (no `AIRLOCK_PROFILE` from the developer's shell).
//!
//! Exit codes (from `main.rs`): 0 ok, 2 usage, 4 not found (no config), 8 config fails `policy check`,
//! 9 `policy explain` denied.
//!
//! Positions (`airlock.toml:LINE:COL`) are computed from the fixture text, so editing the fixture does not
//! silently turn these tests into checks of stale numbers.

mod common;

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{BIN, Run};
use serde_json::Value;

/// A Monday, inside the shell tool's Mon-Fri 09:00-17:00 UTC schedule.
const MONDAY_10: &str = "2026-11-23T10:00:00Z";
/// The same instant in unix seconds.
const MONDAY_10_UNIX: &str = "1795428000";
/// A Sunday, outside the schedule.
const SUNDAY_10: &str = "2026-11-22T10:00:00Z";
/// Stands in for a credential someone put in a URL; it must never be printed.
const CANARY: &str = "SUPERSECRET123";

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../airlock-policy/tests/fixtures")
}

fn fixture_toml() -> String {
    std::fs::read_to_string(fixture_dir().join("airlock.toml")).expect("fixture airlock.toml")
}

fn fixture_cedar() -> String {
    std::fs::read_to_string(fixture_dir().join("policies/site.cedar")).expect("fixture site.cedar")
}

/// 1-based line and column of the first `needle` at or after the first `anchor` in `text`.
fn pos_after(text: &str, anchor: &str, needle: &str) -> (usize, usize) {
    let start = text.find(anchor).unwrap_or_else(|| panic!("{anchor:?} not in the fixture"));
    let i = start + text[start..].find(needle).unwrap_or_else(|| panic!("{needle:?} not after {anchor:?}"));
    let line = text[..i].matches('\n').count() + 1;
    let column = i - text[..i].rfind('\n').map_or(0, |n| n + 1) + 1;
    (line, column)
}

/// 1-based line and column of the first `needle` in `text`.
fn pos(text: &str, needle: &str) -> (usize, usize) {
    pos_after(text, "", needle)
}

fn loc(file: &str, (line, column): (usize, usize)) -> String {
    format!("{file}:{line}:{column}")
}

/// A temp dir holding `airlock.toml`, `policies/site.cedar`, an empty workspace `ws/`, a `home/` for `$HOME`
/// and an `airlock-home/` for `$AIRLOCK_HOME` (no config in it unless a test puts one there).
struct Site {
    tmp: tempfile::TempDir,
}

impl Site {
    fn new() -> Self {
        let tmp = tempfile::Builder::new().prefix("airlock-policy-it-").tempdir().expect("temp dir");
        let root = tmp.path();
        std::fs::create_dir_all(root.join("policies")).expect("policies dir");
        std::fs::write(root.join("airlock.toml"), fixture_toml()).expect("copy airlock.toml");
        std::fs::write(root.join("policies/site.cedar"), fixture_cedar()).expect("copy site.cedar");
        for d in ["ws", "home", "airlock-home"] {
            std::fs::create_dir(root.join(d)).expect("dir");
        }
        Site { tmp }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    fn config(&self) -> PathBuf {
        self.path("airlock.toml")
    }

    fn ws(&self) -> PathBuf {
        self.path("ws")
    }

    /// `airlock ARGS` run in the site's root directory.
    fn cmd<I, S>(&self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Cmd {
            args: args.into_iter().map(|a| a.as_ref().to_owned()).collect(),
            dir: self.tmp.path().to_path_buf(),
            env: vec![
                ("HOME".into(), self.path("home").into()),
                ("AIRLOCK_HOME".into(), self.path("airlock-home").into()),
            ],
        }
    }

    /// `airlock [--json] policy check FILE --workspace WS`.
    fn check(&self, json: bool, file: &Path) -> Cmd {
        let pre: &[&str] = if json { &["--json"] } else { &[] };
        self.cmd(pre).args(["policy", "check"]).arg(file).arg("--workspace").arg(self.ws())
    }

    /// `airlock [--json] policy explain --config CONFIG --workspace WS ARGS`.
    fn explain(&self, json: bool, args: &[&str]) -> Cmd {
        let pre: &[&str] = if json { &["--json"] } else { &[] };
        self.cmd(pre)
            .args(["policy", "explain", "--config"])
            .arg(self.config())
            .arg("--workspace")
            .arg(self.ws())
            .args(args)
    }
}

struct Cmd {
    args: Vec<OsString>,
    dir: PathBuf,
    env: Vec<(OsString, OsString)>,
}

impl Cmd {
    fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.args.push(a.as_ref().to_owned());
        self
    }
    fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }
    fn env(mut self, k: &str, v: impl AsRef<OsStr>) -> Self {
        self.env.retain(|(key, _)| key != k);
        self.env.push((k.into(), v.as_ref().to_owned()));
        self
    }
    fn dir(mut self, d: &Path) -> Self {
        self.dir = d.to_path_buf();
        self
    }

    fn run(self) -> Run {
        let out = Command::new(BIN)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .args(&self.args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .output()
            .expect("run airlock");
        Run { args: self.args, code: out.status.code(), stdout: out.stdout, stderr: out.stderr }
    }

    /// Runs the command and asserts its exit code.
    fn expect(self, code: i32) -> Run {
        let r = self.run();
        assert_eq!(
            r.code,
            Some(code),
            "airlock {:?} exited {:?}, expected {code}\nstdout:\n{}\nstderr:\n{}",
            r.args,
            r.code,
            r.out(),
            r.err()
        );
        r
    }
}

/// Asserts stderr is nothing but JSON error objects (what `--json` promises) and returns their codes.
fn json_error_codes(r: &Run) -> Vec<u64> {
    r.err()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("stderr line is not JSON ({e}): {l}"));
            assert!(v["error"]["message"].is_string(), "error without a message: {v}");
            v["error"]["code"].as_u64().unwrap_or_else(|| panic!("error without a code: {v}"))
        })
        .collect()
}

fn wildcard_pos() -> (usize, usize) {
    pos(&fixture_toml(), "\"*.wikipedia.org\"")
}

// ---------------------------------------------------------------------------------------------------------------
// policy check
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn check_fixture_is_ok_in_dev() {
    let s = Site::new();
    let r = s.check(false, &s.config()).expect(0);
    r.out_has("ok (profile dev");
    // Outside prod the wildcard host is only a warning, still with its position.
    r.out_has(&format!("{}: warning[wildcard-host]", loc("airlock.toml", wildcard_pos())));
    r.out_has("1 warning)");
    assert!(r.err().is_empty(), "a passing check writes nothing to stderr: {}", r.err());

    // The same through `./airlock.toml` found in the current directory.
    let r = s.cmd(["policy", "check", "--workspace"]).arg(s.ws()).expect(0);
    r.out_has("airlock.toml: ok (profile dev");
}

#[test]
fn check_prod_rejects_wildcard_host_at_its_position() {
    let s = Site::new();
    let (line, column) = wildcard_pos();
    assert_eq!(column, 10, "fixture layout: the wildcard is the first value of its hosts array");
    let r = s.check(false, Path::new("airlock.toml")).args(["--profile", "prod"]).expect(8);
    r.out_has(&format!("airlock.toml:{line}:{column}: error[wildcard-host]"));
    r.out_has("*.wikipedia.org");
    r.out_has("airlock.toml: rejected (1 error)");
    assert!(!r.out().contains("ok (profile"), "{}", r.out());

    // With an absolute path the position is reported against that path.
    let r = s.check(false, &s.config()).args(["--profile", "prod"]).expect(8);
    r.out_has(&format!("{}:{line}:{column}: error[wildcard-host]", s.config().display()));
}

#[test]
fn check_json_reports_diagnostics_with_positions() {
    let s = Site::new();
    let r = s.check(true, &s.config()).args(["--profile", "prod"]).expect(8);
    let v = r.json();
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["profile"], "prod", "{v}");
    assert!(v["errors"].as_u64().expect("errors count") >= 1, "{v}");
    let diags = v["diagnostics"].as_array().expect("diagnostics array");
    assert!(!diags.is_empty(), "{v}");
    for d in diags {
        assert!(d["file"].is_string(), "file: {d}");
        assert!(d["line"].is_u64(), "line: {d}");
        assert!(d["column"].is_u64(), "column: {d}");
        assert!(d["code"].is_string(), "code: {d}");
        assert!(d["message"].as_str().is_some_and(|m| !m.is_empty()), "message: {d}");
        assert!(d["severity"] == "error" || d["severity"] == "warning", "severity: {d}");
    }
    let (line, column) = wildcard_pos();
    let w = diags.iter().find(|d| d["code"] == "wildcard-host").expect("a wildcard-host diagnostic");
    assert_eq!(w["severity"], "error");
    assert_eq!(w["line"], line as u64);
    assert_eq!(w["column"], column as u64);
    assert!(w["file"].as_str().expect("file").ends_with("airlock.toml"), "{w}");
    assert!(w["message"].as_str().expect("message").contains("*.wikipedia.org"), "{w}");
    // With --json, stderr carries only JSON errors.
    assert_eq!(json_error_codes(&r), vec![8]);

    // And in dev: ok, one warning, the same position.
    let v = s.check(true, &s.config()).expect(0).json();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["profile"], "dev", "{v}");
    assert_eq!(v["errors"], 0, "{v}");
    assert_eq!(v["warnings"], 1, "{v}");
    assert!(v["policies"].as_u64().expect("policies count") > 0, "{v}");
    let d = &v["diagnostics"][0];
    assert_eq!((d["code"].as_str(), d["severity"].as_str()), (Some("wildcard-host"), Some("warning")), "{v}");
    assert_eq!(d["line"], line as u64);
}

#[test]
fn check_unknown_key_names_it_at_its_line() {
    let s = Site::new();
    let good = fixture_toml();
    let rule = "hosts = [\"uploads.example.com\"]";
    assert_eq!(good.matches(rule).count(), 1, "fixture layout: one network rule for uploads.example.com");
    let bad = good.replace(rule, "hots = [\"uploads.example.com\"]");
    std::fs::write(s.path("bad.toml"), &bad).expect("write bad.toml");
    let (line, column) = pos(&bad, "hots =");

    let r = s.check(false, Path::new("bad.toml")).expect(8);
    r.out_has(&format!("bad.toml:{line}:{column}: error["));
    r.out_has("unknown key `hots`");
    r.out_has("`hosts`"); // the keys that are allowed there, so the typo is obvious
    r.out_has("rejected");

    let v = s.check(true, Path::new("bad.toml")).expect(8).json();
    assert_eq!(v["ok"], false);
    let d = v["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .find(|d| d["message"].as_str().is_some_and(|m| m.contains("hots")))
        .unwrap_or_else(|| panic!("no diagnostic names hots: {v}"))
        .clone();
    assert_eq!((d["line"].as_u64(), d["column"].as_u64()), (Some(line as u64), Some(column as u64)), "{d}");
}

#[test]
fn check_profile_env_and_flag() {
    let s = Site::new();
    // Conflicting: refused, not silently resolved either way.
    let r = s.check(false, &s.config()).args(["--profile", "dev"]).env("AIRLOCK_PROFILE", "prod").expect(8);
    r.out_has("conflicting profiles");
    r.out_has("--profile dev");
    r.out_has("AIRLOCK_PROFILE=prod");

    // The variable alone selects prod (and so the wildcard error).
    s.check(false, &s.config()).env("AIRLOCK_PROFILE", "prod").expect(8).out_has("error[wildcard-host]");
    // Agreeing flag and variable are fine.
    s.check(false, &s.config())
        .args(["--profile", "prod"])
        .env("AIRLOCK_PROFILE", "prod")
        .expect(8)
        .out_has("error[wildcard-host]");
    s.check(false, &s.config()).args(["--profile", "dev"]).env("AIRLOCK_PROFILE", "dev").expect(0);
}

#[test]
fn check_without_a_config_is_not_found() {
    let s = Site::new();
    // Run from the empty workspace: no ./airlock.toml, and none in $AIRLOCK_HOME.
    let r = s.cmd(["policy", "check"]).dir(&s.ws()).expect(4);
    r.err_has("no config");
    r.err_has(&s.path("airlock-home").join("airlock.toml").display().to_string());
    assert!(r.out().is_empty(), "{}", r.out());
    s.cmd(["policy", "explain", "--agent", "orchestrator", "--tool", "shell", "--action", "exec", "--resource", "ls"])
        .dir(&s.ws())
        .expect(4)
        .err_has("no config");

    // Put one in $AIRLOCK_HOME and it is found (with its Cedar files beside it).
    let ah = s.path("airlock-home");
    std::fs::write(ah.join("airlock.toml"), fixture_toml()).expect("copy to AIRLOCK_HOME");
    std::fs::create_dir(ah.join("policies")).expect("policies");
    std::fs::write(ah.join("policies/site.cedar"), fixture_cedar()).expect("copy cedar");
    let r = s.cmd(["policy", "check"]).dir(&s.ws()).expect(0);
    r.out_has(&format!("{}: ok (profile dev", ah.join("airlock.toml").display()));

    // ./airlock.toml wins over $AIRLOCK_HOME: a broken home config is not consulted from the site root.
    std::fs::write(ah.join("airlock.toml"), "version = 2\n").expect("break home config");
    s.cmd(["policy", "check"]).expect(0).out_has("airlock.toml: ok (profile dev");
}

// ---------------------------------------------------------------------------------------------------------------
// policy explain
// ---------------------------------------------------------------------------------------------------------------

const GITHUB: [&str; 6] = ["--agent", "orchestrator", "--tool", "web_fetch", "--action", "http.request"];

#[test]
fn explain_allow_shows_canonical_request_and_the_permitting_policy() {
    let s = Site::new();
    let origin = loc("airlock.toml", pos_after(&fixture_toml(), "[[tools.web_fetch.network]]", "\"api.github.com\""));
    let r = s.explain(false, &GITHUB).args(["--resource", "https://API.GitHub.com./repos/a/b"]).expect(0);
    r.out_has("ALLOW");
    r.out_has("https://api.github.com/repos/a/b");
    r.out_has("tool.web_fetch.network.0");
    r.out_has(&format!("{origin})"));
    r.out_has("permit(");
    r.out_has("agent orchestrator, tool web_fetch, profile dev");
    assert!(!r.out().contains("API.GitHub.com"), "the request is shown canonicalised: {}", r.out());
    assert!(r.err().is_empty(), "{}", r.err());

    let v = s.explain(true, &GITHUB).args(["--resource", "https://API.GitHub.com./repos/a/b"]).expect(0).json();
    assert_eq!(v["allowed"], true, "{v}");
    assert_eq!(v["decision"], "allow", "{v}");
    assert_eq!(v["request"]["resource"], "GET https://api.github.com/repos/a/b", "{v}");
    assert_eq!(v["request"]["agent"], "orchestrator");
    assert_eq!(v["request"]["tool"], "web_fetch");
    assert_eq!(v["request"]["profile"], "dev");
    assert_eq!(v["policies"][0]["id"], "tool.web_fetch.network.0", "{v}");
    assert!(v["policies"][0]["origin"].as_str().expect("origin").ends_with(&origin), "{v}");
    assert!(v["policies"][0]["cedar"].as_str().expect("cedar").contains("permit("), "{v}");
    assert_eq!(v["errors"], serde_json::json!([]));
}

#[test]
fn explain_default_deny_is_a_decision_not_an_error() {
    let s = Site::new();
    let r = s.explain(false, &GITHUB).args(["--resource", "https://evil.example/x"]).expect(9);
    r.out_has("DENY");
    r.out_has("host evil.example is not in tool web_fetch's allowed hosts");
    r.out_has("default deny");
    assert!(r.err().is_empty(), "a denial is the answer, not an error; stderr: {}", r.err());
    r.err_lacks("airlock: error");

    let r = s.explain(true, &GITHUB).args(["--resource", "https://evil.example/x"]).expect(9);
    assert!(r.err().is_empty(), "{}", r.err());
    let v = r.json();
    assert_eq!(v["allowed"], false);
    assert_eq!(v["decision"], "deny");
    assert_eq!(v["reason"], "host evil.example is not in tool web_fetch's allowed hosts");
    assert_eq!(v["policies"], serde_json::json!([]));

    // A subdomain of evil.example is on the global deny list: named, with its position.
    let origin = loc(&s.config().display().to_string(), pos_after(&fixture_toml(), "[network]", "\"*.evil.example\""));
    let r = s.explain(false, &GITHUB).args(["--resource", "https://sub.evil.example/x"]).expect(9);
    r.out_has("DENY");
    r.out_has("host sub.evil.example is on the network deny list");
    r.out_has(&format!("policy:   airlock.network.deny ({origin})"));
    r.out_has("forbid(");
}

#[test]
fn explain_json_exec_deny_names_the_rule_and_its_position() {
    let s = Site::new();
    let toml = fixture_toml();
    let origin = loc("airlock.toml", pos_after(&toml, "[tools.shell.exec]", "\"rm\""));
    let shell = ["--agent", "orchestrator", "--tool", "shell", "--action", "exec"];
    let r = s.explain(true, &shell).args(["--resource", "rm", "--at", MONDAY_10]).expect(9);
    assert!(r.err().is_empty(), "{}", r.err());
    let v = r.json();
    assert_eq!(v["allowed"], false, "{v}");
    assert_eq!(v["decision"], "deny", "{v}");
    let p = &v["policies"][0];
    assert_eq!(p["id"], "tool.shell.exec.deny", "{v}");
    let o = p["origin"].as_str().expect("origin");
    assert!(o.ends_with(&origin), "origin {o} should end with {origin}");
    let cedar = p["cedar"].as_str().expect("cedar text");
    assert!(cedar.contains("forbid(") && cedar.contains("tool.shell.exec.deny"), "{cedar}");
    assert!(v["reason"].as_str().expect("reason").contains("exec deny list"), "{v}");
    assert_eq!((v["request"]["weekday"].as_u64(), v["request"]["minute"].as_u64()), (Some(0), Some(600)), "{v}");

    // ls is allowed at that time; the unix form of the same instant decides the same.
    for at in [MONDAY_10, MONDAY_10_UNIX] {
        let v = s.explain(true, &shell).args(["--resource", "ls", "--at", at]).expect(0).json();
        assert_eq!(v["policies"][0]["id"], "tool.shell.exec.allow", "{v}");
        assert_eq!(v["request"]["weekday"], 0, "{v}");
        assert_eq!(v["request"]["minute"], 600, "{v}");
    }
    // ...and denied on a Sunday by the schedule.
    let r = s.explain(false, &shell).args(["--resource", "ls", "--at", SUNDAY_10]).expect(9);
    r.out_has("tool.shell.schedule");
    r.out_has("only available Mon,Tue,Wed,Thu,Fri 09:00-17:00 UTC");
}

#[test]
fn explain_user_forbid_from_cedar_file() {
    let s = Site::new();
    let (line, column) = pos(&fixture_cedar(), "@id(\"no-git-config\")");
    let git_config = s.ws().join(".git/config");
    let git_config = git_config.to_str().expect("utf-8 temp path");
    let args = ["--agent", "orchestrator", "--tool", "shell", "--action", "fs.read", "--at", MONDAY_10];
    let r = s.explain(false, &args).args(["--resource", git_config]).expect(9);
    r.out_has("DENY");
    r.out_has("policy:   no-git-config (");
    r.out_has(&format!("policies/site.cedar:{line}:{column})"));
    r.out_has("holds repository credentials");
    r.out_has("forbid(principal, action == Action::\"fs.read\", resource)");

    let v = s.explain(true, &args).args(["--resource", git_config]).expect(9).json();
    assert_eq!(v["policies"][0]["id"], "no-git-config", "{v}");
    let o = v["policies"][0]["origin"].as_str().expect("origin");
    assert!(o.ends_with(&format!("policies/site.cedar:{line}:{column}")), "{o}");
    let reason = v["reason"].as_str().expect("reason");
    assert!(reason.contains("holds repository credentials"), "{reason}");
    assert!(reason.contains("/.git/config"), "the {{path}} placeholder is filled in: {reason}");

    // A sibling file in the workspace is readable: the forbid is specific.
    let readme = s.ws().join("README.md");
    s.explain(false, &args).arg("--resource").arg(&readme).expect(0).out_has("ALLOW");

    // The other Cedar forbid: a sub-agent of the orchestrator at high risk.
    let researcher = ["--agent", "researcher", "--tool", "web_fetch", "--action", "http.request"];
    let r =
        s.explain(false, &researcher).args(["--resource", "https://api.github.com/repos/a", "--risk", "55"]).expect(9);
    r.out_has("subagents-low-risk");
    r.out_has(&loc("policies/site.cedar", pos(&fixture_cedar(), "@id(\"subagents-low-risk\")")));
    s.explain(false, &researcher).args(["--resource", "https://api.github.com/repos/a", "--risk", "40"]).expect(0);
}

#[test]
fn explain_home_deny_uses_the_home_it_was_given() {
    let s = Site::new();
    let key = s.path("home").join(".config/private/key");
    let args = ["--agent", "orchestrator", "--tool", "shell", "--action", "fs.read", "--at", MONDAY_10];
    let r = s.explain(false, &args).arg("--resource").arg(&key).expect(9);
    r.out_has("is on the filesystem deny list");
    let origin = loc(&s.config().display().to_string(), pos_after(&fixture_toml(), "[fs]", "\"${HOME}"));
    r.out_has(&format!("policy:   airlock.fs.deny[fs.read] ({origin})"));
}

#[test]
fn explain_never_prints_credentials_from_urls() {
    let s = Site::new();
    let mut transcript = String::new();
    let mut keep = |r: Run| -> Run {
        transcript += &r.out();
        transcript += &r.err();
        r
    };
    for json in [false, true] {
        // Allowed, with the secret in the query: decided on host and path; the query is not shown.
        let url = format!("https://api.github.com/repos/a?token={CANARY}");
        let r = keep(s.explain(json, &GITHUB).args(["--resource", &url]).expect(0));
        assert!(r.out().contains("https://api.github.com/repos/a"), "{}", r.out());

        // Invalid (user info in the URL): denied, the value not echoed in the reason.
        let url = format!("https://u:{CANARY}@api.github.com/");
        let r = keep(s.explain(json, &GITHUB).args(["--resource", &url]).expect(9));
        assert!(r.out().contains("user name or password"), "{}", r.out());

        // A fragment, a denied method, and a secret.use target carrying the value.
        let url = format!("https://api.github.com/repos/a#{CANARY}");
        keep(s.explain(json, &GITHUB).args(["--resource", &url]).expect(0));
        let url = format!("https://api.github.com/repos/a?x=1&token={CANARY}");
        keep(s.explain(json, &GITHUB).args(["--resource", &url, "--method", "POST"]).expect(9));
        let target = format!("https://api.github.com/x?token={CANARY}");
        let secret = ["--agent", "orchestrator", "--tool", "web_fetch", "--action", "secret.use"];
        keep(s.explain(json, &secret).args(["--resource", "GITHUB_TOKEN", "--target", &target]).expect(0));
        let target = format!("https://u:{CANARY}@evil.example/");
        keep(s.explain(json, &secret).args(["--resource", "GITHUB_TOKEN", "--target", &target]).expect(9));
    }
    assert!(!transcript.is_empty());
    assert!(!transcript.contains(CANARY), "the canary leaked into output:\n{transcript}");
}

#[test]
fn explain_usage_errors_exit_2() {
    let s = Site::new();
    let url = "https://api.github.com/repos/a";
    // http.request without --tool: a usage error that says what is missing.
    let r = s.explain(false, &["--agent", "orchestrator", "--action", "http.request", "--resource", url]).expect(2);
    r.err_has("http.request needs --tool");
    assert!(r.out().is_empty(), "no decision is printed for a bad request: {}", r.out());

    // Unknown action: named, with the valid ones listed.
    let r = s.explain(false, &["--agent", "orchestrator", "--tool", "web_fetch", "--action", "http.fetch"]);
    let r = r.args(["--resource", url]).expect(2);
    r.err_has("unknown action \"http.fetch\"");
    r.err_has("http.request");
    assert!(r.out().is_empty(), "{}", r.out());

    // The same under --json: a JSON error on stderr.
    let r = s.explain(true, &["--agent", "orchestrator", "--tool", "web_fetch", "--action", "bogus"]);
    let r = r.args(["--resource", url]).expect(2);
    assert_eq!(json_error_codes(&r), vec![2]);
    assert!(r.out().is_empty(), "{}", r.out());

    // Missing pieces for other actions.
    let secret = ["--agent", "orchestrator", "--tool", "web_fetch", "--action", "secret.use"];
    s.explain(false, &secret).args(["--resource", "GITHUB_TOKEN"]).expect(2).err_has("secret.use needs --target");
    let api = ["--agent", "orchestrator", "--action", "api.call"];
    s.explain(false, &api).args(["--resource", "conversations", "--verb", "read"]).expect(2).err_has("KIND/ID");
    s.explain(false, &api).args(["--resource", "conversations/1"]).expect(2).err_has("api.call needs --verb");
    // Required flags (clap): no --agent.
    s.explain(false, &["--tool", "web_fetch", "--action", "http.request", "--resource", url])
        .expect(2)
        .err_has("--agent");

    // Bad --at values: malformed, impossible dates, and a number too large for the clock (must not panic).
    let shell = ["--agent", "orchestrator", "--tool", "shell", "--action", "exec", "--resource", "ls"];
    for at in [
        "yesterday",
        "2026-11-23 10:00:00",
        "2026-13-01T10:00:00Z",
        "2026-02-30T10:00:00Z",
        "2026-04-31T10:00:00Z",
        "2027-02-29T10:00:00Z",
        "2026-+1-23T10:00:00Z",
        "18446744073709551615",
    ] {
        let r = s.explain(false, &shell).args(["--at", at]).expect(2);
        r.err_has("--at");
        r.err_has("YYYY-MM-DDTHH:MM:SSZ");
    }
    // A real leap day is accepted (2028-02-29 is a Tuesday, inside the schedule).
    let v = s.explain(true, &shell).args(["--at", "2028-02-29T10:00:00Z"]).expect(0).json();
    assert_eq!((v["request"]["weekday"].as_u64(), v["request"]["minute"].as_u64()), (Some(1), Some(600)), "{v}");
}

#[test]
fn explain_refuses_a_config_that_fails_check() {
    let s = Site::new();
    let r = s.explain(false, &GITHUB).args(["--resource", "https://api.github.com/repos/a", "--profile", "prod"]);
    let r = r.expect(8);
    r.err_has("config rejected");
    r.err_has(&format!("airlock.toml:{}:{}: error[wildcard-host]", wildcard_pos().0, wildcard_pos().1));
    assert!(!r.out().contains("ALLOW"), "no decision from a rejected config: {}", r.out());
}

// ---------------------------------------------------------------------------------------------------------------
// policy schema
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn schema_matches_published_file() {
    let s = Site::new();
    let published =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/airlock.schema.json"))
            .expect("docs/airlock.schema.json");
    let r = s.cmd(["policy", "schema"]).expect(0);
    let printed: Value = r.json();
    let expected: Value = serde_json::from_str(&published).expect("published schema is JSON");
    assert_eq!(printed, expected, "`airlock policy schema` differs from docs/airlock.schema.json");
    assert_eq!(r.out(), published, "byte for byte, so `policy schema > docs/airlock.schema.json` is a no-op");
    assert!(printed["$schema"].as_str().is_some_and(|u| u.contains("json-schema.org")), "{printed}");
    assert!(r.err().is_empty(), "{}", r.err());
    // --json changes nothing: the schema already is JSON.
    assert_eq!(s.cmd(["--json", "policy", "schema"]).expect(0).out(), published);
}
