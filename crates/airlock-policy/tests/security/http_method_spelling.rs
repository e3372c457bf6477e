//! Attack: spell the method so that a rule check and the server read it differently: lower case (`get`, which a
//! case-sensitive check would refuse or, worse, a deny would miss), or a whole request line (`GET /x HTTP/1.1`)
//! or header injection smuggled in the method field.
//!
//! Defence: methods are upper-cased, then must be a plain token (A-Z, `-`, `_`); anything else is refused before any
//! rule. So `get` is decided exactly as `GET`, `delete` is refused as `DELETE`, and an injected request line never
//! reaches a rule.

use airlock_policy::Request;

use super::assert_allowed_by;
use crate::common::Setup;

const URL: &str = "https://api.github.com/repos/a";

#[test]
fn lowercase_method_is_normalised_to_uppercase() {
    let s = Setup::new();
    let e = s.engine();
    let m = |method: &str| e.decide(&Request::http("orchestrator", "web_fetch", method, URL)).decision;
    let canonical = m("GET");
    assert_allowed_by(&canonical, "tool.web_fetch.network.0");
    assert_eq!(*m("get"), *canonical);
    assert_eq!(*m("Get"), *canonical);
    let del = m("delete");
    assert!(!del.allowed && del.policies.is_empty(), "{del:?}");
    assert_eq!(del.reason, "method DELETE is not allowed for api.github.com by tool web_fetch (allowed: GET, HEAD)");
}

#[test]
fn method_carrying_a_request_line_or_header_is_refused() {
    let s = Setup::new();
    let e = s.engine();
    for method in ["GET /x HTTP/1.1", "GET\r\nX-Evil: 1", "GET ", " GET", "G\0ET", "", "GET/", "GÉT", &"A".repeat(33)]
    {
        let d = e.decide(&Request::http("orchestrator", "web_fetch", method, URL)).decision;
        assert!(!d.allowed, "{method:?}: {d:?}");
        assert!(d.policies.is_empty(), "{method:?}: {d:?}");
        assert_eq!(d.reason, "invalid HTTP method", "{method:?}");
    }
}
