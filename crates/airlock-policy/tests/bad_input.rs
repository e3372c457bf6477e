//! Bad input: every kind of mistake in `airlock.toml` or a `.cedar` file is refused with a diagnostic that names the
//! file, the line and the column of the mistake, a message that says what is wrong, and a stable `code`. Nothing
//! starts half configured: each case checks that no engine is built at all, and that `policy check` agrees.

mod common;

use std::path::Path;
use std::time::Duration;

use airlock_policy::{ConfigError, Diagnostic, Profile, Severity};
use common::{Setup, diag, line_col};

/// Loads `s` with `profile`, expecting a refusal; `check` must refuse it with the same findings.
fn refused(s: &Setup, profile: Option<&str>) -> ConfigError {
    let err = s.load_err(profile);
    assert!(err.diagnostics.iter().any(|d| d.severity == Severity::Error), "{err:#?}");
    let report = airlock_policy::check(&s.config, &s.opts(profile));
    assert!(!report.ok(), "check passed a config that does not load: {report:#?}");
    assert_eq!(report.policies, 0);
    assert_eq!(report.diagnostics, err.diagnostics, "check and load disagree");
    assert!(airlock_policy::PolicyStore::open(&s.config, s.opts(profile)).is_err(), "the store started anyway");
    err
}

/// Writes `text` as the config and expects it refused with `code`, returning that diagnostic.
fn refused_with(text: &str, profile: Option<&str>, code: &str) -> (Setup, Diagnostic) {
    let s = Setup::with_config(text);
    let err = refused(&s, profile);
    let d = diag(&err, code).clone();
    assert_eq!(d.severity, Severity::Error, "{d}");
    (s, d)
}

#[track_caller]
fn assert_at(d: &Diagnostic, file: &Path, (line, column): (usize, usize)) {
    assert_eq!(d.file, file, "wrong file: {d}");
    assert_eq!((d.line, d.column), (line, column), "wrong position: {d}");
}

#[track_caller]
fn assert_says(d: &Diagnostic, words: &str) {
    assert!(d.message.contains(words), "message {:?} should contain {words:?}", d.message);
}

// --- TOML ------------------------------------------------------------------------------------------------------

#[test]
fn malformed_toml_points_at_the_offending_character() {
    let text = "version = 1\n\n[agents.a]\ntools = [\"web\",, \"x\"]\n";
    let (s, d) = refused_with(text, None, "toml");
    assert_at(&d, &s.config, (4, 16));
    assert_says(&d, "extra comma in array");

    let text = "version = 1\n[tools.web\nx = 1\n";
    let (s, d) = refused_with(text, None, "toml");
    assert_at(&d, &s.config, (2, 11));
    assert_says(&d, "unclosed table");
}

#[test]
fn unknown_nested_key_is_named_with_its_position() {
    let text = r#"version = 1

[agents.a]
tools = ["web"]

[[tools.web.network]]
hosts = ["a.example"]

[[tools.web.network]]
hots = ["b.example"]
"#;
    let (s, d) = refused_with(text, None, "toml");
    assert_at(&d, &s.config, line_col(text, "hots"));
    assert_eq!(d.line, 10);
    assert_says(&d, "unknown key `hots`");
    assert_says(&d, "expected one of `hosts`");

    // Deeper still, and at the top level.
    let text = "version = 1\n[tools.web.fs]\nread = [\"/tmp\"]\ndeny_path = [\"/etc\"]\n";
    let (s, d) = refused_with(text, None, "toml");
    assert_at(&d, &s.config, (4, 1));
    assert_says(&d, "unknown key `deny_path`");
    let text = "version = 1\nnetwrok = {}\n";
    let (s, d) = refused_with(text, None, "toml");
    assert_at(&d, &s.config, (2, 1));
    assert_says(&d, "unknown key `netwrok`");
}

#[test]
fn duplicate_key_points_at_the_second_definition() {
    let text = "version = 1\n[agents.a]\ntools = [\"web\"]\nmax_risk = 5\nmax_risk = 6\n[tools.web]\n";
    let (s, d) = refused_with(text, None, "toml");
    assert_at(&d, &s.config, (5, 1));
    assert_says(&d, "duplicate key");

    let text = "version = 1\n[agents.a]\ntools = [\"web\"]\n[agents.a]\nmax_risk = 6\n[tools.web]\n";
    let (s, d) = refused_with(text, None, "toml");
    assert_at(&d, &s.config, (4, 9));
    assert_says(&d, "duplicate key");
}

#[test]
fn bad_size_unit_points_at_the_value() {
    let text = "version = 1\n[limits]\nmemory = \"12 parsecs\"\n";
    let (s, d) = refused_with(text, None, "toml");
    assert_at(&d, &s.config, (3, 10));
    assert_says(&d, "unknown size unit \"parsecs\"");

    let text = r#"version = 1
[agents.a]
tools = ["web"]
[[tools.web.network]]
hosts = ["a.example"]
max_request_bytes = "lots"
"#;
    let (s, d) = refused_with(text, None, "toml");
    assert_at(&d, &s.config, (6, 21));
    assert_says(&d, "size \"lots\" must start with a number");
}

#[test]
fn negative_size_points_at_the_value() {
    let text = "version = 1\n[limits]\nmemory = -5\n";
    let (s, d) = refused_with(text, None, "toml");
    assert_at(&d, &s.config, (3, 10));
    assert_says(&d, "a size cannot be negative");
}

#[test]
fn unsupported_version_points_at_the_version_key() {
    let text = "# comment\nversion = 2\n";
    let (s, d) = refused_with(text, None, "version");
    assert_eq!(d.file, s.config);
    assert_says(&d, "unsupported config version 2");
    assert_eq!(d.line, 2, "should point at `version = 2`: {d}");
    assert!(d.column == 1 || d.column == 11, "key or value column: {d}");
}

// --- Profiles --------------------------------------------------------------------------------------------------

#[test]
fn conflicting_profile_flag_and_environment_are_refused() {
    let s = Setup::new();
    let opts = s.opts_with_env(Some("dev"), Some("prod"));
    let err = airlock_policy::load_engine(&s.config, &opts).expect_err("flag and env disagree");
    let d = diag(&err, "profile");
    // Nothing in the file is wrong: the whole-file position (0, 0) on the config it was loading.
    assert_at(d, &s.config, (0, 0));
    assert_says(d, "conflicting profiles: --profile dev but AIRLOCK_PROFILE=prod");
    assert!(!airlock_policy::check(&s.config, &opts).ok());
    // When they agree, it loads.
    assert!(airlock_policy::load_engine(&s.config, &s.opts_with_env(Some("dev"), Some("dev"))).is_ok());
}

#[test]
fn unknown_profile_from_the_command_line_or_environment_is_refused() {
    let s = Setup::new();
    for (opts, words) in [
        (s.opts(Some("staging")), "--profile: unknown profile \"staging\": expected dev, prod, ide or test"),
        (s.opts_with_env(None, Some("Prod")), "AIRLOCK_PROFILE: unknown profile \"Prod\""),
    ] {
        let err = airlock_policy::load_engine(&s.config, &opts).expect_err(words);
        let d = diag(&err, "profile");
        assert_at(d, &s.config, (0, 0));
        assert_says(d, words);
    }
}

#[test]
fn unknown_default_profile_in_the_file_points_at_its_line() {
    let text = "version = 1\ndefault_profile = \"staging\"\n";
    let (s, d) = refused_with(text, None, "profile");
    assert_eq!(d.file, s.config);
    assert_says(&d, "default_profile: unknown profile \"staging\"");
    assert_eq!(d.line, 2, "should point at `default_profile = \"staging\"`: {d}");
    assert!(d.column == 1 || d.column == 19, "key or value column: {d}");
}

#[test]
fn prod_with_block_private_off_is_a_profile_conflict_at_that_line() {
    let text = "version = 1\n[network]\nblock_private = false\n";
    let (s, d) = refused_with(text, Some("prod"), "profile-conflict");
    assert_eq!(d.file, s.config);
    assert_says(&d, "network.block_private = false conflicts with profile prod: only dev may turn it off");
    assert_eq!(d.line, 3, "should point at `block_private = false`: {d}");
    assert!(d.column == 1 || d.column == 17, "key or value column: {d}");
    // dev may.
    assert!(s.load(Some("dev")).is_ok());
}

#[test]
fn prod_overlay_turning_block_private_off_points_at_the_overlay() {
    let text = "version = 1\n\n[profiles.prod.network]\nblock_private = false\n";
    let (s, d) = refused_with(text, Some("prod"), "profile-conflict");
    assert_eq!(d.file, s.config);
    assert_eq!(d.line, 4, "should point at the overlay's `block_private = false`: {d}");
}

// --- Model -----------------------------------------------------------------------------------------------------

#[test]
fn invalid_glob_points_at_the_pattern() {
    let text = "version = 1\n[agents.a]\ntools = [\"web\"]\n[tools.web.fs]\nread = [\"/tmp\", \"/a/[b\"]\n";
    let (s, d) = refused_with(text, None, "glob");
    assert_at(&d, &s.config, line_col(text, "\"/a/[b\""));
    assert_eq!((d.line, d.column), (5, 17));
    assert_says(&d, "invalid glob \"/a/[b\"");
    assert_says(&d, "unclosed character class");
}

#[test]
fn reference_to_an_unknown_secret_in_a_webhook_token() {
    let text = r#"version = 1
[[audit.sinks]]
type = "webhook"
url = "https://siem.example/x"
token = "Bearer ${secret:NOPE}"
"#;
    let (s, d) = refused_with(text, None, "unknown-secret");
    assert_at(&d, &s.config, (5, 9));
    assert_says(&d, "reference to secret \"NOPE\", which is not declared under [secrets]");
}

#[test]
fn reference_to_an_unconfigured_store_in_a_webhook_token() {
    let sink = "[[audit.sinks]]\ntype = \"webhook\"\nurl = \"https://siem.example/x\"\n";
    let text = format!("version = 1\n{sink}token = \"Bearer ${{secret:bao://secret/siem#token}}\"\n");
    let (s, d) = refused_with(&text, None, "reference");
    assert_at(&d, &s.config, (5, 9));
    assert_says(&d, "\"bao://secret/siem#token\" needs a [backends.bao] table");

    let text = format!("version = 1\n{sink}token = \"${{secret:s3://bucket/key}}\"\n");
    let (_, d) = refused_with(&text, None, "reference");
    assert_says(&d, "unknown scheme \"s3\"");

    // Stores that need no table, and bao once it has one, load.
    let text = format!("version = 1\n{sink}token = \"${{secret:env://SIEM_TOKEN}}\"\n");
    Setup::with_config(&text).load(None).expect("env:// needs no [backends] table");
    let text = format!(
        "version = 1\n[backends.bao]\naddress = \"https://bao.example.com:8200\"\nauth = {{ method = \"token\" }}\n\
         {sink}token = \"${{secret:bao://secret/siem#token}}\"\n"
    );
    Setup::with_config(&text).load(None).expect("a configured store loads");
}

#[test]
fn tool_using_an_unknown_secret() {
    let text = r#"version = 1
[agents.a]
tools = ["web"]
[tools.web]
secrets = ["GH", "NOPE"]
[[tools.web.network]]
hosts = ["api.github.com"]
[secrets.GH]
hosts = ["api.github.com"]
"#;
    let (s, d) = refused_with(text, None, "unknown-secret");
    assert_at(&d, &s.config, line_col(text, "\"NOPE\""));
    assert_eq!((d.line, d.column), (5, 18));
    assert_says(&d, "tool web uses secret \"NOPE\", which is not declared under [secrets]");
}

#[test]
fn tool_listing_a_secret_twice() {
    // It used to be an internal error ("12 policies generated but 11 parsed"): each grant is a policy named after
    // the secret, and the repeat produced a second policy with the same id.
    let text = r#"version = 1
[agents.a]
tools = ["web"]
[tools.web]
secrets = ["GH", "GH"]
[[tools.web.network]]
hosts = ["api.github.com"]
[secrets.GH]
hosts = ["api.github.com"]
"#;
    let (_s, d) = refused_with(text, None, "duplicate");
    assert_eq!((d.line, d.column), (5, 18));
    assert_says(&d, "tool web lists secret \"GH\" twice");
}

#[test]
fn unknown_role_tool_and_parent_agent_each_point_at_the_name() {
    let text = "version = 1\n[agents.a]\nroles = [\"ghost\"]\ntools = [\"nope\"]\nparent = \"nobody\"\n";
    let s = Setup::with_config(text);
    let err = refused(&s, None);
    let role = diag(&err, "unknown-role");
    assert_at(role, &s.config, (3, 10));
    assert_says(role, "agent a has role \"ghost\", which is not defined under [roles]");
    let tool = diag(&err, "unknown-tool");
    assert_at(tool, &s.config, (4, 10));
    assert_says(tool, "unknown tool \"nope\": it is not defined under [tools]");
    let parent = diag(&err, "unknown-agent");
    assert_at(parent, &s.config, (5, 10));
    assert_says(parent, "agent a has parent \"nobody\", which is not defined under [agents]");
    // Diagnostics come in file order.
    let lines: Vec<usize> = err.diagnostics.iter().map(|d| d.line).collect();
    assert!(lines.is_sorted(), "{lines:?}");
}

#[test]
fn unknown_tool_and_agent_in_rate_limits_and_roles() {
    let text = "version = 1\n[roles.r]\ntools = [\"ghost\"]\n[rate_limits.agents.nobody]\nburst = 1\n";
    let s = Setup::with_config(text);
    let err = refused(&s, None);
    let tool = diag(&err, "unknown-tool");
    assert_at(tool, &s.config, (3, 10));
    let agent = diag(&err, "unknown-agent");
    assert_at(agent, &s.config, line_col(text, "nobody"));
    assert_says(agent, "rate limit for unknown agent \"nobody\"");
}

#[test]
fn budgets_refuse_zeros_bad_host_patterns_and_distinct_hosts_per_host() {
    let text = "version = 1\n[budgets]\nrun = { egress_bytes = 0, requests = 5 }\n\
                [budgets.hosts.\"bad host\"]\nrequests = 1\n\
                [budgets.hosts.\"api.example.com\"]\ndistinct_hosts = 3\n\
                [budgets.hosts.\"*.example.org\"]\nrequests = 0\n";
    let s = Setup::with_config(text);
    let err = refused(&s, None);
    let budget: Vec<&Diagnostic> = err.diagnostics.iter().filter(|d| d.code == "budget").collect();
    assert_eq!(budget.len(), 3, "{err:#?}");
    assert_eq!(budget[0].line, 3, "points at the run budget: {}", budget[0]);
    assert_says(budget[0], "budgets.run.egress_bytes is 0: a budget of 0 blocks everything");
    assert_at(budget[1], &s.config, line_col(text, "\"api.example.com\""));
    assert_says(budget[1], "distinct_hosts: only meaningful per run");
    assert_at(budget[2], &s.config, line_col(text, "\"*.example.org\""));
    assert_says(budget[2], "budgets.hosts.\"*.example.org\".requests is 0");
    assert_at(diag(&err, "host-pattern"), &s.config, line_col(text, "\"bad host\""));
    // Written as a table of its own, the run budget is pointed at by its header.
    let (_, d) = refused_with("version = 1\n[budgets.run]\nrequests = 0\n", None, "budget");
    assert_eq!(d.line, 2, "{d}");
    // Unknown keys in a budget are refused like everywhere else.
    let (_, d) = refused_with("version = 1\n[budgets.run]\nrequest = 5\n", None, "toml");
    assert_says(&d, "unknown key `request`");
}

#[test]
fn zero_egress_bytes_per_hour_is_refused_where_it_is_written() {
    let text = "version = 1\n[tools.t]\n[rate_limits.tools.t]\negress_bytes_per_hour = \"0MiB\"\n";
    let (s, d) = refused_with(text, None, "budget");
    assert_at(&d, &s.config, (3, 20));
    assert_says(&d, "rate_limits.tools.t.egress_bytes_per_hour is 0");
}

#[test]
fn a_profile_overlay_replaces_the_run_budget_and_adds_host_budgets() {
    let text = "version = 1\n[budgets]\nrun = { requests = 10 }\n[budgets.hosts.\"a.example.com\"]\nrequests = 1\n\
                [profiles.prod.budgets]\nrun = { egress_bytes = \"1MiB\" }\n\
                [profiles.prod.budgets.hosts.\"b.example.com\"]\negress_bytes = 5\n";
    let s = Setup::with_config(text);
    let load = |profile: &str| {
        let opts = s.opts(Some(profile));
        airlock_policy::load::load_file(&s.config, &opts).unwrap().file.budgets
    };
    let dev = load("dev");
    assert_eq!(dev.run.unwrap().get_ref().requests, Some(10));
    assert_eq!(dev.hosts.len(), 1);
    let prod = load("prod");
    let run = prod.run.unwrap().into_inner();
    assert_eq!((run.requests, run.egress_bytes), (None, Some(airlock_policy::config::Size(1 << 20))));
    let hosts: Vec<&str> = prod.hosts.keys().map(|k| k.get_ref().as_str()).collect();
    assert_eq!(hosts, ["a.example.com", "b.example.com"]);
}

#[test]
fn agent_parent_cycle_is_refused_at_each_agent() {
    let text = "version = 1\n[agents.a]\nparent = \"b\"\n[agents.b]\nparent = \"a\"\n";
    let s = Setup::with_config(text);
    let err = refused(&s, None);
    let cycles: Vec<&Diagnostic> = err.diagnostics.iter().filter(|d| d.code == "agent-cycle").collect();
    assert_eq!(cycles.len(), 2, "{err:#?}");
    assert_at(cycles[0], &s.config, (2, 9));
    assert_says(cycles[0], "agent a is its own ancestor (parent chain loops)");
    assert_at(cycles[1], &s.config, (4, 9));
    assert_says(cycles[1], "agent b is its own ancestor");
    // A self-loop too.
    let (s, d) = refused_with("version = 1\n\n[agents.narcissus]\nparent = \"narcissus\"\n", None, "agent-cycle");
    assert_at(&d, &s.config, (3, 9));
}

// --- Cedar -----------------------------------------------------------------------------------------------------

const WITH_USER_CEDAR: &str = "version = 1\npolicy_files = [\"policies/user.cedar\"]\n";

fn with_cedar(cedar: &str) -> (Setup, std::path::PathBuf) {
    let s = Setup::with_config(WITH_USER_CEDAR);
    let path = s.write_file("policies/user.cedar", cedar);
    (s, path)
}

#[test]
fn cedar_syntax_error_points_into_the_cedar_file() {
    let cedar = "// site rules\n@id(\"a\")\npermit(principal, action, resource);\n\nforbid(principal, action, resource)\nwhen { context.risk_score > };\n";
    let (s, path) = with_cedar(cedar);
    let err = refused(&s, None);
    let d = diag(&err, "cedar-syntax");
    assert_at(d, &path, (6, 29));
    assert_says(d, "unexpected token `}`");
}

#[test]
fn cedar_type_error_points_into_the_cedar_file() {
    let cedar = "@id(\"ok\")\npermit(principal, action, resource);\n\n@id(\"typo\")\nforbid(principal, action == Action::\"exec\", resource)\nwhen { context.nope };\n";
    let (s, path) = with_cedar(cedar);
    let err = refused(&s, None);
    let d = diag(&err, "cedar-type");
    assert_at(d, &path, (6, 8));
    assert_says(d, "policy typo");
    assert_says(d, "attribute `nope` in context");
}

#[test]
fn reserved_policy_id_prefix_is_refused_at_the_policy() {
    for (id, line) in [("airlock.x", 4), ("tool.web.network.0", 4), ("role.admin.permission.0", 4)] {
        let cedar = format!(
            "@id(\"fine\")\nforbid(principal, action, resource) when {{ context.risk_score > 99 }};\n\n@id(\"{id}\")\nforbid(principal, action, resource) when {{ context.risk_score > 98 }};\n"
        );
        let (s, path) = with_cedar(&cedar);
        let err = refused(&s, None);
        let d = diag(&err, "reserved-id");
        assert_at(d, &path, (line, 1));
        assert_says(d, &format!("policy id \"{id}\" uses a reserved prefix"));
    }
}

// --- Files that are not config files ---------------------------------------------------------------------------

#[test]
fn ten_megabyte_config_is_refused_where_the_limit_is_reached() {
    let s = Setup::new();
    let line = "# padding, padding, padding, padding, padding, padding, padding, padding\n";
    let text = line.repeat((10 << 20) / line.len() + 1);
    assert!(text.len() >= 10 << 20);
    s.write_config(&text);
    let err = refused(&s, None);
    let d = diag(&err, "too-large");
    let limit = airlock_policy::load::MAX_CONFIG_BYTES;
    let before = &text[..limit];
    let expected = (before.matches('\n').count() + 1, limit - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1);
    assert!(expected.0 > 0 && expected.1 > 0);
    assert_at(d, &s.config, expected);
    assert_says(d, "file is larger than the 2048 KiB limit");
}

/// Runs `f` on another thread and fails if it takes more than a few seconds (a FIFO read would block forever).
fn within_seconds<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(10)).expect("loading hung (blocked on the file?)")
}

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo").arg(path).status().expect("mkfifo runs");
    assert!(status.success());
}

#[test]
fn config_that_is_a_directory_or_a_fifo_is_refused_without_hanging() {
    let s = Setup::new();
    let dir = s.root().join("dir.toml");
    std::fs::create_dir(&dir).unwrap();
    let fifo = s.root().join("fifo.toml");
    mkfifo(&fifo);
    for path in [dir, fifo] {
        let opts = s.opts(None);
        let p = path.clone();
        let err = within_seconds(move || airlock_policy::load_engine(&p, &opts)).expect_err("not a regular file");
        let d = diag(&err, "read");
        assert_at(d, &path, (0, 0));
        assert_says(d, "not a regular file");
        let opts = s.opts(None);
        let p = path.clone();
        let report = within_seconds(move || airlock_policy::check(&p, &opts));
        assert!(!report.ok());
    }
}

#[test]
fn cedar_file_that_is_a_fifo_is_refused_and_the_config_line_is_named() {
    let s = Setup::with_config("version = 1\npolicy_files = [\"policies/pipe.cedar\"]\n");
    let fifo = s.root().join("policies/pipe.cedar");
    mkfifo(&fifo);
    let (config, opts) = (s.config.clone(), s.opts(None));
    let err = within_seconds(move || airlock_policy::load_engine(&config, &opts)).expect_err("a FIFO is not a policy");
    let d = diag(&err, "read");
    assert_eq!(d.file, fifo);
    assert_says(d, "not a regular file");
    assert_says(d, &format!("(named at {}:2:17)", s.config.display()));
}

// --- Lints -----------------------------------------------------------------------------------------------------

/// Loads cleanly in prod except for the wildcard: limits set, the tool used by an agent.
fn wildcard_config(host: &str) -> String {
    format!(
        "version = 1\n[limits]\nmemory = \"1GiB\"\n[agents.a]\ntools = [\"web\"]\n[[tools.web.network]]\nhosts = [\"{host}\"]\n"
    )
}

/// The wildcard lint is an error in prod (the config is refused) and a warning in dev (it loads, and says so).
fn assert_wildcard_fatal_in_prod_and_a_warning_in_dev(host: &str) {
    let text = wildcard_config(host);
    let s = Setup::with_config(&text);
    let at = line_col(&text, &format!("\"{host}\""));

    let prod = airlock_policy::check(&s.config, &s.opts(Some("prod")));
    assert_eq!(prod.profile, Some(Profile::Prod));
    assert!(!prod.ok(), "{host}: {prod:#?}");
    let errors: Vec<&Diagnostic> = prod.diagnostics.iter().filter(|d| d.severity == Severity::Error).collect();
    assert_eq!(errors.len(), 1, "{host}: only the wildcard is wrong: {errors:#?}");
    assert_eq!(errors[0].code, "wildcard-host");
    assert_at(errors[0], &s.config, at);
    assert_says(errors[0], "tool web allows");
    assert_says(errors[0], host);
    assert!(s.load(Some("prod")).is_err(), "{host}: prod must not start");

    let dev = airlock_policy::check(&s.config, &s.opts(Some("dev")));
    assert_eq!(dev.profile, Some(Profile::Dev));
    assert!(dev.ok(), "{host}: {dev:#?}");
    let e = s.load(Some("dev")).unwrap_or_else(|e| panic!("{host}: dev must start: {e:#?}"));
    let warning = dev.diagnostics.iter().find(|d| d.code == "wildcard-host");
    let warning = warning.unwrap_or_else(|| panic!("{host}: dev should still warn: {:#?}", dev.diagnostics));
    assert_eq!(warning.severity, Severity::Warning);
    assert_at(warning, &s.config, at);
    assert!(e.compiled().warnings.iter().any(|w| w.code == "wildcard-host"));
}

#[test]
fn wildcard_over_a_whole_tld_is_fatal_in_prod_and_a_warning_in_dev() {
    assert_wildcard_fatal_in_prod_and_a_warning_in_dev("*.com");
}

#[test]
fn wildcard_subdomain_host_is_fatal_in_prod_and_a_warning_in_dev() {
    assert_wildcard_fatal_in_prod_and_a_warning_in_dev("*.example.com");
}

#[test]
fn audit_sink_addresses_and_options_are_checked() {
    for (sink, says) in [
        ("type = \"syslog\"\naddress = \"unix:/dev/log\"", "use udp://IP:PORT, tcp://IP:PORT or tls://IP:PORT"),
        ("type = \"syslog\"\naddress = \"tcp://siem.example:514\"", "use udp://IP:PORT"),
        ("type = \"syslog\"\naddress = \"udp://127.0.0.1:0\"", "use udp://IP:PORT"),
        ("type = \"syslog\"\naddress = \"udp://127.0.0.1:514\"\nca = \"ca.pem\"", "apply only to a tls://"),
        ("type = \"file\"\npath = \"x\"\nca = \"ca.pem\"", "`ca` does not apply to a file sink"),
        ("type = \"file\"\npath = \"x\"\nqueue = 0", "`queue` must be at least 1"),
    ] {
        let text = format!("version = 1\n[[audit.sinks]]\n{sink}\n");
        let (_, d) = refused_with(&text, None, "audit-sink");
        assert_says(&d, says);
    }
}

#[test]
fn audit_intervals_must_have_a_unit_and_be_positive() {
    for (value, says) in
        [("\"10 s\"", "use a number and a unit"), ("\"0s\"", "more than zero"), ("\"1w\"", "use a number")]
    {
        let text = format!("version = 1\n[audit]\nheartbeat = {value}\n");
        let (_, d) = refused_with(&text, None, "toml");
        assert_says(&d, says);
    }
    let (_, d) = refused_with("version = 1\n[audit]\ncheckpoint_every = 0\n", None, "audit");
    assert_says(&d, "at least 1");
}

// --- Sandbox ---------------------------------------------------------------------------------------------------

/// `[sandbox] env = [entry]` is refused with `code`, pointing at the entry; returns the message.
#[track_caller]
fn sandbox_env_refused(entry: &str, code: &str) -> String {
    let text = format!("version = 1\n\n[sandbox]\nenv = [\"LANG\", {entry:?}]\n");
    let (s, d) = refused_with(&text, None, code);
    assert_at(&d, &s.config, line_col(&text, &format!("{entry:?}")));
    assert_eq!((d.line, d.column), (4, 16), "{d}");
    d.message
}

#[test]
fn sandbox_env_entries_must_be_variable_names() {
    for bad in ["BAD-NAME", "1ST", "A B", "*A", "A*B", "LC_**", ""] {
        let m = sandbox_env_refused(bad, "env-name");
        assert!(m.contains(&format!("invalid environment variable name {bad:?}")), "{m}");
        assert!(m.contains("letters, digits and _"), "{m}");
    }
}

#[test]
fn sandbox_env_refuses_a_bare_star() {
    let m = sandbox_env_refused("*", "env-name");
    assert!(m.contains("\"*\" would pass the caller's whole environment through"), "{m}");
}

#[test]
fn sandbox_env_refuses_loader_variables_and_prefixes_that_reach_them() {
    let m = sandbox_env_refused("LD_PRELOAD", "env-name");
    assert_eq!(
        m,
        "\"LD_PRELOAD\" cannot be passed through: it matches LD_*, and it makes the dynamic loader load code the \
         caller chose"
    );
    let m = sandbox_env_refused("LD*", "env-name");
    assert!(m.starts_with("\"LD*\" cannot be passed through: it matches LD_*"), "{m}");
    let m = sandbox_env_refused("DYLD_INSERT_LIBRARIES", "env-name");
    assert!(m.contains("it matches DYLD_*"), "{m}");
    let m = sandbox_env_refused("HTTP*", "env-name");
    assert!(m.contains("it matches HTTP_PROXY, and the sandbox sets it itself"), "{m}");
    let m = sandbox_env_refused("NODE_*", "env-name");
    assert!(m.contains("it matches NODE_EXTRA_CA_CERTS"), "{m}");
}

#[test]
fn sandbox_env_refuses_what_the_sandbox_sets_itself_in_any_case() {
    for name in ["HTTPS_PROXY", "https_proxy", "No_Proxy", "SSL_CERT_FILE", "PATH", "HOME", "TMPDIR"] {
        let m = sandbox_env_refused(name, "env-name");
        assert_eq!(m, format!("{name:?} cannot be passed through: the sandbox sets it itself"));
    }
    let m = sandbox_env_refused("AIRLOCK_X", "env-name");
    assert_eq!(m, "\"AIRLOCK_X\" cannot be passed through: it matches AIRLOCK_*, and the sandbox sets it itself");
}

#[test]
fn sandbox_env_refuses_interpreter_and_shell_injection_variables() {
    for (name, says) in [
        ("BASH_ENV", "shells run code"),
        ("ENV", "shells run code"),
        ("NODE_OPTIONS", "interpreter load code"),
        ("PYTHONPATH", "interpreter load code"),
        ("PERL5OPT", "interpreter load code"),
        ("GIT_SSH_COMMAND", "git reads commands"),
        ("GIT_CONFIG_COUNT", "git reads commands"),
        ("PAGER", "programs run the command it holds"),
    ] {
        let m = sandbox_env_refused(name, "env-name");
        assert!(m.contains(says), "{name}: {m}");
    }
}

#[test]
fn tool_and_secret_env_are_checked_like_sandbox_env() {
    let text = "version = 1\n[tools.t]\nenv = [\"MY_TOOL_*\", \"LD_LIBRARY_PATH\"]\n";
    let (s, d) = refused_with(text, None, "env-name");
    assert_at(&d, &s.config, line_col(text, "\"LD_LIBRARY_PATH\""));
    assert_says(&d, "\"LD_LIBRARY_PATH\" cannot be passed through: it matches LD_*");

    let text = "version = 1\n[secrets.GH]\nhosts = [\"api.github.com\"]\nenv = \"https_proxy\"\n";
    let (s, d) = refused_with(text, None, "env-name");
    assert_at(&d, &s.config, (4, 7));
    assert_says(&d, "\"https_proxy\" cannot be passed through: the sandbox sets it itself");
    // A secret's variable is one name, never a prefix.
    let text = "version = 1\n[secrets.GH]\nhosts = [\"api.github.com\"]\nenv = \"GH_*\"\n";
    let (s, d) = refused_with(text, None, "env-name");
    assert_at(&d, &s.config, (4, 7));
    assert_says(&d, "invalid environment variable name \"GH_*\"");
}

#[test]
fn a_surrogate_variable_cannot_also_be_passed_through_or_shared() {
    let text = r#"version = 1
[sandbox]
env = ["LANG", "GH_*"]
[secrets.GH]
hosts = ["api.github.com"]
env = "GH_TOKEN"
[secrets.GH2]
hosts = ["api.github.com"]
env = "GH_TOKEN"
[tools.t]
secrets = ["GH"]
[tools.u]
env = []
secrets = ["GH2"]
"#;
    let (s, d) = refused_with(text, None, "env-name");
    assert_at(&d, &s.config, (11, 12));
    assert_says(&d, "tool t gets secret GH's surrogate in GH_TOKEN, but env entry \"GH_*\" passes GH_TOKEN through");

    let text = r#"version = 1
[secrets.A]
hosts = ["a.example"]
env = "TOKEN"
[secrets.B]
hosts = ["b.example"]
env = "TOKEN"
[tools.t]
secrets = ["A", "B"]
"#;
    let (s, d) = refused_with(text, None, "env-name");
    assert_at(&d, &s.config, line_col(text, "\"B\"]"));
    assert_says(&d, "tool t gets secrets A and B in the same variable TOKEN");
}

#[test]
fn auto_pause_needs_at_least_one_denial_and_a_window_from_a_second_to_a_day() {
    let text = "version = 1\n[sandbox]\nauto_pause = { denials = 0, window = \"60s\" }\n";
    let (s, d) = refused_with(text, None, "sandbox");
    assert_at(&d, &s.config, (3, 26));
    assert_says(&d, "sandbox.auto_pause.denials must be at least 1");

    // Zero is refused by the duration parser itself, where it is written.
    let text = "version = 1\n[sandbox]\nauto_pause = { denials = 3, window = \"0s\" }\n";
    let (s, d) = refused_with(text, None, "toml");
    assert_eq!((d.file.as_path(), d.line), (s.config.as_path(), 3), "{d}");
    assert_says(&d, "duration \"0s\" must be more than zero");

    for (window, col) in [("500ms", 38), ("2d", 38), ("25h", 38)] {
        let text = format!("version = 1\n[sandbox]\nauto_pause = {{ denials = 3, window = \"{window}\" }}\n");
        let (s, d) = refused_with(&text, None, "sandbox");
        assert_at(&d, &s.config, (3, col));
        assert_says(&d, "sandbox.auto_pause.window must be from 1s to 1d");
    }

    // Both keys are required, and nothing else is accepted.
    let (_, d) = refused_with("version = 1\n[sandbox.auto_pause]\ndenials = 3\n", None, "toml");
    assert_says(&d, "missing field `window`");
    let (_, d) =
        refused_with("version = 1\n[sandbox.auto_pause]\ndenials = 3\nwindow = \"1m\"\nburst = 1\n", None, "toml");
    assert_says(&d, "unknown key `burst`");
}

#[test]
fn forward_port_zero_or_out_of_range_is_refused() {
    let text = "version = 1\n[sandbox]\nforward_port = 0\n";
    let (s, d) = refused_with(text, None, "sandbox");
    assert_at(&d, &s.config, (3, 16));
    assert_says(&d, "sandbox.forward_port must be from 1 to 65535, not 0");

    let text = "version = 1\n[sandbox]\nforward_port = 65536\n";
    let (s, d) = refused_with(text, None, "toml");
    assert_eq!((d.file.as_path(), d.line), (s.config.as_path(), 3), "{d}");
}

#[test]
fn a_profile_overlay_is_checked_where_it_is_written() {
    let text =
        "version = 1\n[sandbox]\nforward_port = 8080\n\n[profiles.prod.sandbox]\nenv = [\"LANG\", \"LD_AUDIT\"]\n";
    let (s, d) = refused_with(text, Some("prod"), "env-name");
    assert_at(&d, &s.config, line_col(text, "\"LD_AUDIT\""));
    // Other profiles do not see the overlay.
    assert!(s.load(Some("dev")).is_ok());
}

// --- Redact ----------------------------------------------------------------------------------------------------

/// `[redact]` with `body` is refused with `code`, pointing at `needle`; returns the message.
#[track_caller]
fn redact_refused(body: &str, needle: &str, code: &str) -> String {
    let text = format!("version = 1\n\n[redact]\n{body}\n");
    let (s, d) = refused_with(&text, None, code);
    assert_at(&d, &s.config, line_col(&text, needle));
    d.message
}

#[test]
fn redact_pii_names_only_known_families() {
    for bad in ["mail", "Email", "ssn", "credit_card", ""] {
        let needle = format!("{bad:?}]");
        let m = redact_refused(&format!("pii = [\"email\", {bad:?}]"), &needle, "redact");
        assert_eq!(
            m,
            format!(
                "unknown personal-data family {bad:?} in redact.pii: the families are email, phone, credit-card, iban, \
                 us-ssn, ip-address"
            )
        );
    }
}

#[test]
fn redact_pii_and_disable_refuse_repeats_at_the_repeat() {
    let m = redact_refused("pii = [\"email\", \"iban\", \"email\"]", "\"email\"]", "redact");
    assert_eq!(m, "redact.pii lists \"email\" twice");
    let m = redact_refused("disable = [\"a-rule\", \"b\", \"a-rule\"]", "\"a-rule\"]", "redact");
    assert_eq!(m, "redact.disable lists \"a-rule\" twice");
}

#[test]
fn redact_mask_is_label_or_shape() {
    for bad in ["bold", "Label", "SHAPE", ""] {
        let m = redact_refused(&format!("mask = {bad:?}"), &format!("{bad:?}"), "toml");
        assert!(m.contains(&format!("unknown variant `{bad}`, expected `label` or `shape`")), "{m}");
    }
    let text = "version = 1\n[redact]\nmask = 1\n";
    let (s, d) = refused_with(text, None, "toml");
    assert_at(&d, &s.config, (3, 8));
}

#[test]
fn redact_disable_takes_rule_ids_only() {
    let long = "a".repeat(65);
    for bad in ["Generic-Password", "a_b", "a b", "a.b", "", "ünïcode", long.as_str()] {
        let needle = format!("{bad:?}]");
        let m = redact_refused(&format!("disable = [\"ok-id\", {bad:?}]"), &needle, "redact");
        assert_eq!(m, format!("invalid rule id {bad:?} in redact.disable: use 1-64 of a-z 0-9 -"));
    }
}

#[test]
fn redact_rule_file_paths_cannot_be_empty() {
    for bad in ["", "  "] {
        let needle = format!("{bad:?}]");
        let m = redact_refused(&format!("rules = [\"extra.toml\", {bad:?}]"), &needle, "redact");
        assert_eq!(m, "redact.rules: a rule file path cannot be empty");
    }
}

#[test]
fn redact_refuses_unknown_keys_and_wrong_types() {
    let (_, d) = refused_with("version = 1\n[redact]\npi = [\"email\"]\n", None, "toml");
    assert_says(&d, "unknown key `pi`");
    let (s, d) = refused_with("version = 1\n[redact]\ntool_output = \"yes\"\n", None, "toml");
    assert_eq!((d.file.as_path(), d.line), (s.config.as_path(), 3), "{d}");
    let (s, d) = refused_with("version = 1\n[redact]\npii = \"email\"\n", None, "toml");
    assert_eq!((d.file.as_path(), d.line), (s.config.as_path(), 3), "{d}");
    let (_, d) = refused_with("version = 1\n[profiles.prod.redact]\nmasks = \"shape\"\n", None, "toml");
    assert_says(&d, "unknown key `masks`");
}

#[test]
fn every_redact_mistake_is_reported_at_once() {
    let text = "version = 1\n[redact]\npii = [\"mail\", \"email\", \"email\"]\nrules = [\"\"]\ndisable = [\"X\", \"y\", \"y\"]\n";
    let s = Setup::with_config(text);
    let err = refused(&s, None);
    let found: Vec<(usize, usize)> =
        err.diagnostics.iter().filter(|d| d.code == "redact").map(|d| (d.line, d.column)).collect();
    assert_eq!(found, [(3, 8), (3, 25), (4, 10), (5, 12), (5, 22)], "{err:#?}");
}

#[test]
fn a_redact_profile_overlay_is_checked_where_it_is_written() {
    let text = "version = 1\n[redact]\npii = [\"email\"]\n\n[profiles.prod.redact]\npii = [\"email\", \"ssn\"]\n";
    let (s, d) = refused_with(text, Some("prod"), "redact");
    assert_at(&d, &s.config, line_col(text, "\"ssn\""));
    assert_says(&d, "unknown personal-data family \"ssn\"");
    // Other profiles do not see the overlay.
    assert!(s.load(Some("dev")).is_ok());
}

// --- Secret sources --------------------------------------------------------------------------------------------

#[test]
fn a_secret_source_in_an_unconfigured_or_unknown_store_is_refused() {
    let text = "version = 1\n[secrets.K]\nhosts = [\"api.example.com\"]\nsource = \"bao://secret/app#key\"\n";
    let (s, d) = refused_with(text, None, "source");
    assert_at(&d, &s.config, (4, 10));
    assert_says(&d, "needs a [backends.bao] table");

    let text = "version = 1\n[secrets.K]\nsource = \"s3://bucket/key\"\n";
    let (_, d) = refused_with(text, None, "source");
    assert_says(&d, "unknown scheme \"s3\"");

    let text = "version = 1\n[secrets.K]\nsource = \"OPENAI_API_KEY\"\n";
    let (_, d) = refused_with(text, None, "source");
    assert_says(&d, "expected SCHEME://");

    // Configured, it loads, and the source reaches the model.
    let text = "version = 1\n[backends.bao]\naddress = \"https://bao.example.com:8200\"\nauth = { method = \
                \"approle\", role_id_env = \"R\", secret_id_env = \"S\" }\n[secrets.K]\nsource = \"bao://secret/app#key\"\n";
    let s = Setup::with_config(text);
    let engine = s.load(None).expect("a configured source loads");
    assert_eq!(engine.compiled().model.secrets["K"].source.as_deref(), Some("bao://secret/app#key"));
}
