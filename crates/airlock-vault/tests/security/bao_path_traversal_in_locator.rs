//! Attack: a `bao://` locator crafted to make the OpenBao backend call another endpoint than the KV secret it
//! names: `..` segments (`/v1/secret/data/a/../../sys/seal` is `sys/seal` to a server that cleans paths, and
//! OpenBao answers such a path with a redirect to the cleaned one), their percent-encoded forms (`%2e%2e`, `%2F`),
//! query or fragment characters, a reserved mount (`sys`, `auth`), a locator built without the parser, a list
//! prefix, a namespace, and a server that redirects. The attacker writes configuration (a locator) or controls
//! the answer to one request; they do not hold the token.
//!
//! Defence: locators are checked when parsed and again by the backend; every segment is percent-encoded, so
//! whatever a segment holds stays one segment of the KV name; reserved mounts are refused; redirects are never
//! followed. The server is a recording stub on 127.0.0.1 that answers every KV read with 404: each request that
//! reaches it must target `/v1/secret/data/...` or `/v1/secret/metadata/...` (or the token lookup), and none may
//! decode to a path with a `.` or `..` segment.

#![cfg(feature = "openbao")]

#[path = "../common/http_stub.rs"]
mod http_stub;

use airlock_crypto::SecretBytes;
use airlock_vault::backend::breaker::BreakerPolicy;
use airlock_vault::backend::openbao::{BaoAuth, BaoBackend, BaoConfig};
use airlock_vault::backend::{BackendError, Expect, Locator, SecretBackend};
use http_stub::Stub;

const TOKEN: &str = "s.traversal-test-token-0123456789";

fn stub() -> Stub {
    Stub::start(|r| {
        if r.target == "/v1/auth/token/lookup-self" {
            (200, vec![], r#"{"data":{"ttl":0,"renewable":false}}"#.into())
        } else if r.target.contains("redirect-me") {
            (307, vec![("location".into(), "/v1/sys/seal-status".into())], String::new())
        } else if r.target.starts_with("/v1/sys/") {
            (200, vec![], r#"{"data":{"data":{"f":"reached-sys"}}}"#.into())
        } else {
            (404, vec![], r#"{"errors":[]}"#.into())
        }
    })
}

fn backend(stub: &Stub) -> BaoBackend {
    let mut c = BaoConfig::new(stub.url(), BaoAuth::token(SecretBytes::copy_from(TOKEN.as_bytes())));
    // Every refusal below must come from the checks, not from an open breaker.
    c.breaker = BreakerPolicy { failure_threshold: 0, ..BreakerPolicy::default() };
    BaoBackend::new(c).unwrap()
}

/// The path of a request target, percent-decoded once (as the server decodes it).
fn decoded_path(target: &str) -> String {
    let path = target.split('?').next().unwrap();
    let bytes = path.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn assert_only_kv_requests(stub: &Stub) {
    for r in stub.requests() {
        let allowed = r.target == "/v1/auth/token/lookup-self"
            || r.target.starts_with("/v1/secret/data/")
            || r.target.starts_with("/v1/secret/metadata/");
        assert!(allowed, "a request reached {}", r.target);
        assert!(!r.target.contains('#') && !r.target.contains('?'), "{}", r.target);
        let path = decoded_path(&r.target);
        assert!(
            path.split('/').all(|s| s != ".." && s != "."),
            "{} decodes to {path}, which climbs out of the KV mount",
            r.target
        );
    }
}

#[test]
fn traversal_locators_are_refused_by_the_parser() {
    for text in [
        "bao://secret/a/../../sys/seal-status#f",
        "bao://secret/./a#f",
        "bao://secret//sys#f",
        "bao://../sys/seal#f",
        "vault://secret/a/..#f",
    ] {
        assert!(Locator::parse(text, "default").is_err(), "{text} parsed");
    }
}

#[test]
fn locators_built_without_the_parser_are_checked_again_before_any_request() {
    let stub = stub();
    let b = backend(&stub);
    for (mount, path) in [
        ("secret", "a/../../../sys/seal-status"),
        ("secret", "../sys/seal"),
        ("secret", "a/./b"),
        ("secret", "a//b"),
        ("secret", ""),
        ("secret/../sys", "seal"),
        ("..", "sys/seal"),
        ("sys", "seal-status"),
        ("SYS", "seal-status"),
        ("auth", "token/create"),
        ("identity", "entity"),
        ("cubbyhole", "x"),
        ("secret", "a\r\nX-Injected: 1"),
    ] {
        let l = Locator::Bao { mount: mount.into(), path: path.into(), field: "f".into() };
        let e = b.read(&l).unwrap_err();
        assert!(matches!(e, BackendError::Invalid { .. }), "{mount}/{path}: {e}");
        assert!(b.write(&l, &SecretBytes::copy_from(b"v"), Expect::Any).is_err());
        assert!(b.delete(&l).is_err() && b.metadata(&l).is_err() && b.destroy(&l, &[1]).is_err());
    }
    for prefix in ["secret/../sys", "secret/a/../../", "sys/", "auth", "../secret", "secret//a"] {
        assert!(b.list(prefix).is_err(), "{prefix} listed");
    }
    assert_eq!(stub.requests().len(), 0, "nothing reached the server: {:?}", stub.requests());
}

#[test]
fn percent_encoded_traversal_stays_inside_the_kv_name() {
    let stub = stub();
    let b = backend(&stub);
    for text in [
        "bao://secret/a/%2e%2e/%2e%2e/%2e%2e/sys/seal-status#f",
        "bao://secret/a/%2E%2E/%2E%2E/sys/seal-status#f",
        "bao://secret/a%2F..%2F..%2F..%2Fsys%2Fseal-status#f",
        "bao://secret/%252e%252e/%252e%252e/sys#f",
        "bao://secret/a?list=true#f",
        "bao://secret/a;..;/sys#f",
        "bao://secret/..%00/sys#f",
        "bao://secret/...#f",
        "bao://secret/a\\..\\..\\sys#f",
    ] {
        let l = Locator::parse(text, "default").unwrap_or_else(|e| panic!("{text}: {e}"));
        let e = b.read(&l).unwrap_err();
        assert!(matches!(e, BackendError::NotFound(_)), "{text}: {e}");
        let _ = b.metadata(&l);
        let _ = b.versions(&l);
    }
    // A field is never part of the URL at all.
    let l = Locator::Bao { mount: "secret".into(), path: "a".into(), field: "../../sys/seal#?".into() };
    assert!(matches!(b.read(&l), Err(BackendError::NotFound(_))));
    assert!(stub.requests().len() > 10);
    assert_only_kv_requests(&stub);
    // The dots-only name is sent encoded as itself, one segment.
    assert!(stub.requests().iter().any(|r| r.target == "/v1/secret/data/..."));
    assert!(
        stub.requests()
            .iter()
            .any(|r| r.target == "/v1/secret/data/a/%252e%252e/%252e%252e/%252e%252e/sys/seal-status")
    );
}

#[test]
fn a_redirect_toward_another_endpoint_is_not_followed() {
    let stub = stub();
    let b = backend(&stub);
    let l = Locator::parse("bao://secret/redirect-me#f", "default").unwrap();
    let e = b.read(&l).unwrap_err();
    assert!(e.to_string().contains("redirects are not followed"), "{e}");
    assert!(!format!("{e} {e:?}").contains("reached-sys"));
    assert_only_kv_requests(&stub);
    // The token went to the one request it was meant for, and nowhere else.
    assert!(stub.requests().iter().all(|r| !r.target.starts_with("/v1/sys")));
}

#[test]
fn a_namespace_cannot_carry_a_traversal() {
    let stub = stub();
    for ns in ["../root", "team/../../sys", "team/./x", "team\r\nx-vault-token: other", "a b"] {
        let mut c = BaoConfig::new(stub.url(), BaoAuth::token(SecretBytes::copy_from(TOKEN.as_bytes())));
        c.namespace = Some(ns.into());
        assert!(BaoBackend::new(c).is_err(), "{ns:?} accepted");
    }
    assert_eq!(stub.requests().len(), 0);
}
