//! A prompt-injected tool calls the typed capability API and tries to make the broker carry the provider's credential
//! somewhere else: a protocol-relative or absolute URL as the path, `..` and its encodings (`%2e%2e`, double
//! encoding), a path outside the capability, a method it does not list, its own credential header, its own `Host`,
//! or an unknown envelope field naming a URL. Every one is refused with a readable denial, and nothing reaches the
//! upstream.

use crate::common::capability_harness;

#[test]
fn the_caller_cannot_choose_the_host_or_leave_the_capability() {
    let h = capability_harness();
    for (envelope, status) in [
        (r#"{"method":"GET","path":"//evil.example.com/quiet"}"#, 400),
        (r#"{"method":"GET","path":"https://evil.example.com/quiet"}"#, 400),
        (r#"{"method":"GET","path":"/quiet/../admin"}"#, 400),
        (r#"{"method":"GET","path":"/quiet/%2e%2e/admin"}"#, 400),
        (r#"{"method":"GET","path":"/admin"}"#, 403),
        (r#"{"method":"DELETE","path":"/quiet"}"#, 405),
        (r#"{"method":"GET","path":"/quiet","headers":{"x-example-key":"mine"}}"#, 400),
        (r#"{"method":"GET","path":"/quiet","headers":{"host":"evil.example.com"}}"#, 400),
        (r#"{"method":"GET","path":"/quiet","url":"https://evil.example.com/"}"#, 400),
    ] {
        let r = h.capability_call("example/things", envelope);
        assert_eq!(r.status, status, "{envelope}: {r:?}");
        assert!(r.headers.contains("x-airlock-deny"), "{envelope}: {}", r.headers);
    }
    assert_eq!(h.tls_count(), 0, "nothing refused may reach the upstream");
    assert_eq!(h.capability_call("nosuch/things", r#"{"method":"GET","path":"/quiet"}"#).status, 404);
    assert_eq!(h.capability_call("example/nosuch", r#"{"method":"GET","path":"/quiet"}"#).status, 404);
}
