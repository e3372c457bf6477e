//! Attack: rely on a user `forbid` that errors at evaluation time (here an integer overflow, which strict
//! validation cannot see). Cedar skips a policy whose condition errors, so without care the forbid would simply
//! vanish and the permit it was meant to override would allow the request.
//!
//! Defence: the engine treats any evaluation error as a deny ("an error never becomes an allow"): the decision is
//! denied and carries the errors, even though a permit matched.

use airlock_policy::Request;

use super::assert_allowed_by;
use crate::common::Setup;

const OVERFLOW: &str = r#"
@id("overflowing-forbid")
forbid(principal, action, resource)
when { (context.risk_score + 1) + 9223372036854775807 > 0 };
"#;

#[test]
fn forbid_that_overflows_denies_instead_of_vanishing() {
    let s = Setup::new();
    let url = "https://api.github.com/repos/a/b";
    // Before: the permit allows it.
    assert_allowed_by(
        &s.engine().decide(&Request::http("orchestrator", "web_fetch", "GET", url)).decision,
        "tool.web_fetch.network.0",
    );
    s.write_file("policies/overflow.cedar", OVERFLOW);
    let e =
        s.load(None).unwrap_or_else(|e| panic!("an overflow is not a validation error, the file must load: {e:#?}"));
    let d = e.decide(&Request::http("orchestrator", "web_fetch", "GET", url)).decision;
    assert!(!d.allowed, "an erroring forbid let the permit through: {d:?}");
    assert!(!d.errors.is_empty(), "{d:?}");
    assert!(d.errors.iter().any(|x| x.contains("overflowing-forbid")), "the error names the policy: {:?}", d.errors);
    assert!(d.reason.starts_with("denied: a policy failed to evaluate"), "{}", d.reason);
}

#[test]
fn forbid_that_errors_by_multiplication_also_denies() {
    let s = Setup::new();
    s.write_file(
        "policies/mul.cedar",
        "@id(\"mul-forbid\")\nforbid(principal, action == Action::\"exec\", resource)\nwhen { (context.minute + 2) * 9223372036854775807 > 0 };\n",
    );
    let e = s.engine();
    let d = e.decide(&Request::exec("orchestrator", "shell", "ls").at(crate::common::monday_at(10, 0))).decision;
    assert!(!d.allowed, "{d:?}");
    assert!(!d.errors.is_empty(), "{d:?}");
    // Other actions are untouched by it.
    let ok = e.decide(&Request::http("orchestrator", "web_fetch", "GET", "https://api.github.com/repos/a")).decision;
    assert_allowed_by(&ok, "tool.web_fetch.network.0");
}
