//! `[sandbox]`, `[tools.NAME] env` and `[secrets.NAME] env` as `airlock run` sees them in the model: defaults when
//! unset, values as written, and profile overlays replacing what they set.

mod common;

use std::time::Duration;

use airlock_policy::config::GuardToolOutput;
use airlock_policy::model::{AutoPause, Model, SandboxSettings, env_allowed};
use airlock_policy::sandbox::{DEFAULT_ENV, DEFAULT_FORWARD_PORT};
use common::Setup;

fn model(s: &Setup, profile: Option<&str>) -> Model {
    let engine = s.load(profile).unwrap_or_else(|e| panic!("must load under {profile:?}: {e:#?}"));
    engine.compiled().model.clone()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Loads cleanly under every profile (limits set, the tool granted, the secret pinned).
const BASE: &str = r#"version = 1
[limits]
memory = "1GiB"
[agents.a]
tools = ["t"]
[secrets.GH]
hosts = ["api.github.com"]
env = "GITHUB_TOKEN"
[secrets.OTHER]
hosts = ["api.github.com"]
[tools.t]
env = ["AWS_REGION", "MY_TOOL_*"]
secrets = ["GH", "OTHER"]
[[tools.t.network]]
hosts = ["api.github.com"]
"#;

#[test]
fn defaults_apply_when_nothing_is_said() {
    let s = Setup::new();
    let m = model(&s, None);
    assert_eq!(
        m.sandbox,
        SandboxSettings {
            env: strings(DEFAULT_ENV),
            auto_pause: None,
            guard_tool_output: Default::default(),
            forward_port: DEFAULT_FORWARD_PORT,
        }
    );
    assert_eq!(m.sandbox.forward_port, 3128);
    assert_eq!(m.sandbox.env, ["LANG", "LANGUAGE", "LC_*", "TERM", "TZ", "NO_COLOR", "COLORTERM"]);
    assert!(m.tools.values().all(|t| t.env.is_empty()));
    assert!(m.secrets.values().all(|s| s.env.is_none()));
    // What the defaults let through.
    assert!(env_allowed(&m.sandbox.env, "LC_ALL"));
    assert!(!env_allowed(&m.sandbox.env, "USER"));
}

#[test]
fn values_are_taken_as_written() {
    let text = format!(
        "{BASE}[sandbox]\nenv = [\"LANG\", \"XDG_*\"]\nauto_pause = {{ denials = 5, window = \"90s\" }}\nforward_port = 8118\n\
         guard_tool_output = \"strict\"\n"
    );
    let s = Setup::with_config(&text);
    for profile in ["dev", "prod", "ide", "test"] {
        let m = model(&s, Some(profile));
        assert_eq!(
            m.sandbox,
            SandboxSettings {
                env: strings(&["LANG", "XDG_*"]),
                auto_pause: Some(AutoPause { denials: 5, window: Duration::from_secs(90) }),
                guard_tool_output: GuardToolOutput::Strict,
                forward_port: 8118,
            },
            "{profile}"
        );
        let t = &m.tools["t"];
        assert_eq!(t.env, ["AWS_REGION", "MY_TOOL_*"], "only the tool's extras");
        assert_eq!(m.secrets["GH"].env.as_deref(), Some("GITHUB_TOKEN"));
        assert_eq!(m.secrets["OTHER"].env, None);
        // A tool's list is the global one plus its own.
        let all: Vec<String> = m.sandbox.env.iter().chain(&t.env).cloned().collect();
        for (name, passes) in [("LANG", true), ("XDG_RUNTIME_DIR", true), ("MY_TOOL_X", true), ("TERM", false)] {
            assert_eq!(env_allowed(&all, name), passes, "{name}");
        }
    }
}

#[test]
fn window_bounds_are_inclusive_and_an_empty_env_passes_nothing() {
    for (window, secs) in [("1s", 1), ("1000ms", 1), ("1d", 86_400), ("24h", 86_400)] {
        let text = format!("{BASE}[sandbox]\nenv = []\nauto_pause = {{ denials = 1, window = \"{window}\" }}\n");
        let m = model(&Setup::with_config(&text), None);
        assert_eq!(m.sandbox.auto_pause, Some(AutoPause { denials: 1, window: Duration::from_secs(secs) }));
        assert!(m.sandbox.env.is_empty());
        assert!(!env_allowed(&m.sandbox.env, "LANG"));
    }
    let m = model(&Setup::with_config(&format!("{BASE}[sandbox]\nforward_port = 65535\n")), None);
    assert_eq!(m.sandbox.forward_port, 65535);
}

#[test]
fn a_profile_overlay_replaces_the_sandbox_fields_it_sets() {
    let text = format!(
        "{BASE}[sandbox]\nenv = [\"LANG\"]\nauto_pause = {{ denials = 3, window = \"1m\" }}\nforward_port = 8000\n\
         [profiles.prod.sandbox]\nenv = [\"TZ\"]\nauto_pause = {{ denials = 1, window = \"1h\" }}\n\
         guard_tool_output = \"default\"\n\
         [profiles.test.sandbox]\nforward_port = 9000\n"
    );
    let s = Setup::with_config(&text);
    let base = SandboxSettings {
        env: strings(&["LANG"]),
        auto_pause: Some(AutoPause { denials: 3, window: Duration::from_secs(60) }),
        guard_tool_output: GuardToolOutput::Off,
        forward_port: 8000,
    };
    assert_eq!(model(&s, Some("dev")).sandbox, base);
    assert_eq!(model(&s, Some("ide")).sandbox, base);
    assert_eq!(
        model(&s, Some("prod")).sandbox,
        SandboxSettings {
            env: strings(&["TZ"]),
            auto_pause: Some(AutoPause { denials: 1, window: Duration::from_secs(3600) }),
            guard_tool_output: GuardToolOutput::Default,
            forward_port: 8000,
        }
    );
    assert_eq!(model(&s, Some("test")).sandbox, SandboxSettings { forward_port: 9000, ..base });
}

#[test]
fn an_overlay_applies_over_the_defaults_too() {
    let text = format!("{BASE}[profiles.prod.sandbox]\nenv = [\"LANG\", \"CI\"]\n");
    let s = Setup::with_config(&text);
    assert_eq!(model(&s, Some("dev")).sandbox.env, strings(DEFAULT_ENV));
    let prod = model(&s, Some("prod")).sandbox;
    assert_eq!(prod.env, ["LANG", "CI"]);
    assert_eq!((prod.auto_pause, prod.forward_port), (None, DEFAULT_FORWARD_PORT));
}
