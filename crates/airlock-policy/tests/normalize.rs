//! Canonical forms: one host, path or program has one spelling, and the spellings an attacker would reach for
//! either normalise to the same thing or are refused.

use std::path::{Path, PathBuf};

use airlock_policy::normalize::{
    HostName, HostPattern, HostPatternKind, NormalizeError, PortSpec, Scheme, Target, dir_ancestors, normalize_fs_path,
    normalize_fs_pattern, path_has_prefix, resolve_program,
};
use proptest::prelude::*;

fn host(text: &str) -> HostName {
    HostName::parse(text).unwrap_or_else(|e: NormalizeError| panic!("{text:?} should parse: {e}"))
}

fn pattern(text: &str) -> HostPattern {
    HostPattern::parse(text).unwrap_or_else(|e: NormalizeError| panic!("{text:?} should parse: {e}"))
}

fn target(text: &str) -> Target {
    Target::parse(text).unwrap_or_else(|e: NormalizeError| panic!("{text:?} should parse: {e}"))
}

/// Matches with the default port of https, as most requests arrive.
fn matches_on_443(pattern: &HostPattern, name: &str) -> bool {
    pattern.matches(&host(name), 443, true)
}

// ---------------------------------------------------------------------------------------------------------------
// Hosts
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn host_uppercase_becomes_lowercase() {
    assert_eq!(host("API.GitHub.COM"), HostName::Domain("api.github.com".to_owned()));
}

#[test]
fn host_international_name_equals_its_punycode() {
    assert_eq!(host("Bücher.Example"), host("xn--bcher-kva.example"));
    assert_eq!(host("Bücher.Example").as_text(), "xn--bcher-kva.example");
}

#[test]
fn host_single_trailing_dot_is_dropped() {
    assert_eq!(host("api.openai.com."), host("api.openai.com"));
    assert_eq!(host("api.openai.com.").to_string(), "api.openai.com");
}

#[test]
fn host_with_empty_labels_is_refused() {
    for bad in ["a..b", "example.com..", ".example.com", "."] {
        assert!(HostName::parse(bad).is_err(), "{bad:?} should be refused");
    }
}

#[test]
fn host_empty_is_refused() {
    let error: NormalizeError = HostName::parse("").unwrap_err();
    assert_eq!(error.what, "host");
}

#[test]
fn host_label_over_63_bytes_is_refused_with_a_specific_reason() {
    let long_label: String = "a".repeat(64);
    let error: NormalizeError = HostName::parse(&format!("{long_label}.com")).unwrap_err();
    assert!(error.to_string().contains("host label longer than 63 characters"), "{error}");
    assert!(HostName::parse(&format!("{}.com", "a".repeat(63))).is_ok());
}

#[test]
fn host_name_over_253_bytes_is_refused() {
    let name: String = vec!["abcdefghi"; 26].join("."); // 26 * 10 - 1 = 259
    let error: NormalizeError = HostName::parse(&name).unwrap_err();
    assert!(error.reason.contains("longer than 253"), "{error}");
}

#[test]
fn host_label_with_leading_or_trailing_hyphen_is_refused() {
    assert!(HostName::parse("-a.example.com").is_err());
    assert!(HostName::parse("a-.example.com").is_err());
    assert!(HostName::parse("a-b.example.com").is_ok());
}

#[test]
fn host_with_underscore_or_other_punctuation_is_refused() {
    for bad in ["a_b.example.com", "a!b.com", "a$b.com", "a b.com", "a/b.com"] {
        assert!(HostName::parse(bad).is_err(), "{bad:?} should be refused");
    }
}

#[test]
fn host_star_is_only_for_patterns() {
    let error: NormalizeError = HostName::parse("*.example.com").unwrap_err();
    assert!(error.reason.contains("only allowed in host patterns"), "{error}");
    assert!(HostName::parse("%2a.example.com").is_err(), "an encoded '*' is still a '*'");
}

#[test]
fn host_ipv4_number_forms_normalise_to_dotted_quad() {
    for spelling in ["0x7f.1", "2130706433", "127.1", "127.0.0.1", "0177.0.0.1", "127.0.0.1."] {
        assert_eq!(host(spelling), HostName::Ipv4([127, 0, 0, 1].into()), "{spelling}");
    }
    assert_eq!(host("0x7f.1").to_string(), "127.0.0.1");
}

#[test]
fn host_invalid_ipv4_is_refused_rather_than_read_as_a_name() {
    assert!(HostName::parse("1.2.3.256").is_err());
    assert!(HostName::parse("example.123").is_err());
}

#[test]
fn host_ipv4_mapped_ipv6_normalises_to_ipv4() {
    assert_eq!(host("[::ffff:127.0.0.1]"), HostName::Ipv4([127, 0, 0, 1].into()));
    assert_eq!(host("[::FFFF:7f00:1]"), HostName::Ipv4([127, 0, 0, 1].into()));
}

#[test]
fn host_ipv6_is_bracketed_and_compressed() {
    assert_eq!(host("[0:0:0:0:0:0:0:1]").to_string(), "[::1]");
    assert_eq!(host("[2001:DB8::1]").to_string(), "[2001:db8::1]");
}

#[test]
fn host_unbracketed_ipv6_is_refused_with_a_hint() {
    let error: NormalizeError = HostName::parse("::1").unwrap_err();
    assert!(error.reason.contains("brackets"), "{error}");
}

#[test]
fn host_with_a_port_is_refused() {
    assert!(HostName::parse("example.com:443").is_err());
}

#[test]
fn host_percent_encoding_is_decoded_by_the_whatwg_host_parser() {
    // url's host parser percent-decodes before IDNA, so the encoded spelling is the same host, not a new one.
    assert_eq!(host("api%2eopenai%2ecom"), host("api.openai.com"));
    // An encoded '/' or '%' decodes to a forbidden host character and is refused.
    assert!(HostName::parse("api%2fopenai.com").is_err());
    assert!(HostName::parse("api%252eopenai.com").is_err());
}

#[test]
fn host_fullwidth_and_ideographic_dots_are_label_separators() {
    assert_eq!(host("api\u{FF0E}openai\u{FF0E}com"), host("api.openai.com"));
    assert_eq!(host("api\u{3002}openai\u{3002}com"), host("api.openai.com"));
}

#[test]
fn host_fullwidth_letters_fold_to_ascii() {
    assert_eq!(host("\u{FF41}pi.openai.com"), host("api.openai.com"));
}

#[test]
fn host_as_text_round_trips() {
    for text in ["api.github.com", "127.0.0.1", "[::1]", "xn--bcher-kva.example"] {
        assert_eq!(host(text).as_text(), text);
        assert_eq!(host(&host(text).as_text()), host(text));
    }
}

#[test]
fn host_parent_domains_nearest_first() {
    assert_eq!(host("a.b.example.com").parent_domains(), vec!["b.example.com", "example.com", "com"]);
    assert!(host("localhost").parent_domains().is_empty());
    assert!(host("[::1]").parent_domains().is_empty());
}

// ---------------------------------------------------------------------------------------------------------------
// Host patterns
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn pattern_exact_does_not_match_a_name_that_merely_starts_with_it() {
    let allowed: HostPattern = pattern("api.openai.com");
    assert!(matches_on_443(&allowed, "api.openai.com"));
    assert!(matches_on_443(&allowed, "API.OpenAI.com."));
    assert!(!matches_on_443(&allowed, "api.openai.com.evil.io"));
    assert!(!matches_on_443(&allowed, "evil-api.openai.com"));
}

#[test]
fn pattern_wildcard_matches_subdomains_at_any_depth() {
    let wildcard: HostPattern = pattern("*.example.com");
    assert!(matches_on_443(&wildcard, "a.example.com"));
    assert!(matches_on_443(&wildcard, "x.y.example.com"));
}

#[test]
fn pattern_wildcard_does_not_match_the_apex_or_lookalikes() {
    let wildcard: HostPattern = pattern("*.example.com");
    assert!(!matches_on_443(&wildcard, "example.com"));
    assert!(!matches_on_443(&wildcard, "badexample.com"));
    assert!(!matches_on_443(&wildcard, "example.com.evil.io"));
}

#[test]
fn pattern_wildcard_never_matches_an_ip_address() {
    // The parser refuses "*.0.0.1"; a hand-built pattern shows the matcher would not match an address anyway.
    let wildcard: HostPattern =
        HostPattern { host: HostPatternKind::Subdomains("0.0.1".to_owned()), port: PortSpec::Any };
    assert!(!wildcard.matches(&host("127.0.0.1"), 443, true));
    assert!(!pattern("*.com").matches(&host("[::1]"), 443, true));
}

#[test]
fn pattern_wildcard_over_an_ip_is_refused() {
    let error: NormalizeError = HostPattern::parse("*.0.0.1").unwrap_err();
    assert_eq!(error.what, "host pattern");
    assert!(error.reason.contains("not an IP address"), "{error}");
}

#[test]
fn pattern_misplaced_wildcards_are_refused() {
    for bad in ["api.*.com", "*foo.com", "foo*", "**.x", "*.*.example.com", "*.", "a.*"] {
        assert!(HostPattern::parse(bad).is_err(), "{bad:?} should be refused");
    }
}

#[test]
fn pattern_star_alone_matches_every_host() {
    let everything: HostPattern = pattern("*");
    assert_eq!(everything.host, HostPatternKind::Any);
    assert!(matches_on_443(&everything, "anything.example"));
    assert!(matches_on_443(&everything, "10.0.0.1"));
}

#[test]
fn pattern_international_name_is_stored_as_punycode() {
    let idn: HostPattern = pattern("bücher.example");
    assert_eq!(idn.host, HostPatternKind::Exact(HostName::Domain("xn--bcher-kva.example".to_owned())));
    assert!(matches_on_443(&idn, "xn--bcher-kva.example"));
    assert_eq!(pattern("*.Bücher.Example").to_string(), "*.xn--bcher-kva.example");
}

#[test]
fn pattern_without_port_matches_only_the_default_port() {
    let no_port: HostPattern = pattern("api.github.com");
    assert_eq!(no_port.port, PortSpec::Default);
    assert!(no_port.matches(&host("api.github.com"), 443, true));
    assert!(no_port.matches(&host("api.github.com"), 80, true));
    assert!(!no_port.matches(&host("api.github.com"), 8443, false));
    // Port 443 on plain http is not http's default: a pattern without a port does not admit it.
    assert!(!no_port.matches(&host("api.github.com"), 443, false));
}

#[test]
fn pattern_exact_port_matches_only_that_port() {
    let on_8443: HostPattern = pattern("api.github.com:8443");
    assert_eq!(on_8443.port, PortSpec::Exact(8443));
    assert!(on_8443.matches(&host("api.github.com"), 8443, false));
    assert!(!on_8443.matches(&host("api.github.com"), 443, true));
}

#[test]
fn pattern_any_port_matches_every_port() {
    let any_port: HostPattern = pattern("*.example.com:*");
    assert_eq!(any_port.port, PortSpec::Any);
    assert!(any_port.matches(&host("a.example.com"), 1, false));
    assert!(any_port.matches(&host("a.example.com"), 443, true));
}

#[test]
fn pattern_port_zero_and_out_of_range_are_refused() {
    for bad in ["h:0", "h:65536", "h:99999999999", "h:", "h:http", "h:-1"] {
        assert!(HostPattern::parse(bad).is_err(), "{bad:?} should be refused");
    }
    assert_eq!(pattern("h:65535").port, PortSpec::Exact(65535));
}

#[test]
fn pattern_ip_literals_with_ports() {
    let v4: HostPattern = pattern("10.0.0.1:80");
    assert_eq!(v4.host, HostPatternKind::Exact(HostName::Ipv4([10, 0, 0, 1].into())));
    assert!(v4.matches(&host("10.0.0.1"), 80, true));
    let v6: HostPattern = pattern("[::1]:8080");
    assert!(v6.matches(&host("[::1]"), 8080, false));
    assert!(HostPattern::parse("::1:8080").is_err());
}

#[test]
fn pattern_display_is_canonical() {
    assert_eq!(pattern("*.Example.COM.:8443").to_string(), "*.example.com:8443");
    assert_eq!(pattern("*.example.com:*").to_string(), "*.example.com:*");
    assert_eq!(pattern("[::1]:8080").to_string(), "[::1]:8080");
    assert_eq!(pattern("*").to_string(), "*");
    assert_eq!(pattern(&pattern("0x7f.1:80").to_string()), pattern("127.0.0.1:80"));
}

// ---------------------------------------------------------------------------------------------------------------
// URLs
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn url_userinfo_confusion_is_refused_without_echoing_it() {
    let error: NormalizeError = Target::parse("https://api.openai.com@evil.io/").unwrap_err();
    assert_eq!(error.what, "url");
    assert!(!error.to_string().contains("api.openai.com@"), "{error}");
    assert!(!error.to_string().contains("api.openai.com"), "{error}");
}

#[test]
fn url_password_is_never_echoed() {
    let error: NormalizeError = Target::parse("https://u:SECRETPW@h/").unwrap_err();
    assert!(!error.to_string().contains("SECRETPW"), "{error}");
    let error: NormalizeError = Target::parse("https://u:SECRETPW@h:99999/").unwrap_err();
    assert!(!error.to_string().contains("SECRETPW"), "{error}");
    let error: NormalizeError = Target::parse("u:SECRETPW@h").unwrap_err();
    assert!(!error.to_string().contains("SECRETPW"), "{error}");
}

#[test]
fn url_empty_userinfo_is_refused() {
    assert!(Target::parse("https://@api.openai.com/").is_err());
    assert!(Target::parse("https://:@api.openai.com/").is_err());
}

#[test]
fn url_query_is_kept_but_never_displayed() {
    let with_query: Target = target("https://h/a?token=SECRETQ");
    assert_eq!(with_query.query.as_deref(), Some("token=SECRETQ"));
    assert_eq!(with_query.to_string(), "https://h/a");
    assert!(!format!("{with_query}").contains("SECRETQ"));
}

#[test]
fn url_errors_never_echo_the_query() {
    for bad in [
        "https://h//a?token=SECRETQ",
        "https://h/a%2fb?token=SECRETQ",
        "https://h:0/?token=SECRETQ",
        "https://bad_host/?token=SECRETQ",
        "ftp://h/?token=SECRETQ",
        "https://h/%zz?token=SECRETQ",
        "https://h:99999/?token=SECRETQ",
    ] {
        let error: NormalizeError = Target::parse(bad).unwrap_err();
        assert!(!error.to_string().contains("SECRETQ"), "{bad}: {error}");
    }
}

#[test]
fn url_errors_do_not_echo_the_path() {
    let error: NormalizeError = Target::parse("https://h/botSECRETP//x").unwrap_err();
    assert!(!error.to_string().contains("SECRETP"), "{error}");
}

#[test]
fn url_fragment_is_dropped() {
    let with_fragment: Target = target("https://h/a#frag");
    assert_eq!(with_fragment.path, "/a");
    assert_eq!(with_fragment.query, None);
}

#[test]
fn url_dot_dot_is_resolved() {
    assert_eq!(target("https://h/repos/../admin").path, "/admin");
    assert_eq!(target("https://h/repos/./x").path, "/repos/x");
}

#[test]
fn url_encoded_dot_dot_is_resolved_and_escapes_the_prefix() {
    // The url crate treats %2e and %2E spellings of "." and ".." as dot segments and resolves them.
    for spelling in ["%2e%2e", "%2E%2E", ".%2e", "%2e.", "%2E%2e"] {
        let resolved: Target = target(&format!("https://h/repos/{spelling}/admin"));
        assert_eq!(resolved.path, "/admin", "{spelling}");
        assert!(!path_has_prefix(&resolved.path, "/repos/"), "{spelling}");
    }
}

#[test]
fn url_encoded_slash_is_refused() {
    assert!(Target::parse("https://h/repos%2f..%2fadmin").is_err());
    assert!(Target::parse("https://h/repos%2F..%2Fadmin").is_err());
}

#[test]
fn url_encoded_backslash_and_nul_are_refused() {
    assert!(Target::parse("https://h/a%5cb").is_err());
    assert!(Target::parse("https://h/a%5Cb").is_err());
    assert!(Target::parse("https://h/a%00b").is_err());
}

#[test]
fn url_backslash_is_a_separator() {
    // For http(s), the url crate reads '\' as '/', so "\..\" is a dot segment too.
    assert_eq!(target("https://h/repos\\x").path, "/repos/x");
    assert_eq!(target("https://h/repos\\..\\admin").path, "/admin");
}

#[test]
fn url_empty_segments_are_refused() {
    assert!(Target::parse("https://h//admin").is_err());
    assert!(Target::parse("https://h/a//b").is_err());
    assert!(Target::parse("https://h/a\\\\b").is_err());
}

#[test]
fn url_trailing_slash_is_kept() {
    assert_eq!(target("https://h/repos/").path, "/repos/");
    assert_eq!(target("https://h").path, "/");
}

#[test]
fn url_unreserved_escapes_are_decoded() {
    assert_eq!(target("https://h/rep%6fs/x").path, "/repos/x");
    assert_eq!(target("https://h/rep%6Fs/x"), target("https://h/repos/x"));
}

#[test]
fn url_other_escapes_get_uppercase_hex() {
    assert_eq!(target("https://h/a%3fb").path, "/a%3Fb");
    assert_eq!(target("https://h/caf%c3%a9").path, target("https://h/café").path);
}

#[test]
fn url_malformed_escape_is_refused() {
    assert!(Target::parse("https://h/a%zz").is_err());
    assert!(Target::parse("https://h/a%").is_err());
}

#[test]
fn url_other_schemes_are_refused_and_named() {
    let error: NormalizeError = Target::parse("ftp://h/x").unwrap_err();
    assert!(error.reason.contains("\"ftp\""), "{error}");
    let error: NormalizeError = Target::parse("file:///etc/passwd").unwrap_err();
    assert!(error.reason.contains("\"file\""), "{error}");
    assert!(Target::parse("javascript:alert(1)").is_err());
}

#[test]
fn url_relative_is_refused() {
    assert!(Target::parse("/repos/x").is_err());
    assert!(Target::parse("api.openai.com/v1").is_err());
    assert!(Target::parse("").is_err());
}

#[test]
fn url_port_zero_is_refused() {
    assert!(Target::parse("https://h:0/").is_err());
    assert!(Target::parse("https://h:65536/").is_err());
}

#[test]
fn url_default_ports_are_filled_in() {
    let https: Target = target("https://h/");
    assert_eq!((https.scheme, https.port, https.default_port), (Scheme::Https, 443, true));
    let http: Target = target("HTTP://h/");
    assert_eq!((http.scheme, http.port, http.default_port), (Scheme::Http, 80, true));
    let explicit_default: Target = target("https://h:443/");
    assert!(explicit_default.default_port);
    assert_eq!(explicit_default.to_string(), "https://h/");
    let other: Target = target("http://h:443/");
    assert_eq!((other.port, other.default_port), (443, false));
    assert_eq!(other.to_string(), "http://h:443/");
}

#[test]
fn url_host_follows_host_rules() {
    assert_eq!(target("https://API.OpenAI.com./v1").host, host("api.openai.com"));
    assert_eq!(target("http://0x7f.1/").host, HostName::Ipv4([127, 0, 0, 1].into()));
    assert_eq!(target("https://api%2eopenai%2ecom/").host, host("api.openai.com"));
    assert_eq!(target("https://api\u{FF0E}openai\u{FF0E}com/").host, host("api.openai.com"));
    assert_eq!(target("http://[::ffff:127.0.0.1]/").host, HostName::Ipv4([127, 0, 0, 1].into()));
    assert!(Target::parse("https://a..b/").is_err());
    assert!(Target::parse("https://a_b.com/").is_err());
}

#[test]
fn url_with_spaces_or_control_characters_is_refused() {
    assert!(Target::parse("https://h/a b").is_err());
    assert!(Target::parse("https://ex\tample.com/").is_err());
    assert!(Target::parse(" https://h/").is_err());
}

#[test]
fn url_display_is_canonical() {
    assert_eq!(target("HTTPS://API.GitHub.com:443/rep%6fs/x?q=1#f").to_string(), "https://api.github.com/repos/x");
    assert_eq!(target("https://[::1]:8443/").to_string(), "https://[::1]:8443/");
}

#[test]
fn authority_parses_as_https_root() {
    let connect: Target = Target::from_authority("API.GitHub.com:443").unwrap();
    assert_eq!(connect, target("https://api.github.com/"));
    let other: Target = Target::from_authority("[::1]:8443").unwrap();
    assert_eq!((other.port, other.default_port, other.path.as_str()), (8443, false, "/"));
}

#[test]
fn authority_refuses_userinfo_paths_and_missing_ports() {
    let error: NormalizeError = Target::from_authority("u:SECRETPW@h:443").unwrap_err();
    assert!(!error.to_string().contains("SECRETPW"), "{error}");
    assert!(Target::from_authority("h").is_err());
    assert!(Target::from_authority("h:0").is_err());
    assert!(Target::from_authority("h:443/x").is_err());
    assert!(Target::from_authority("::1:443").is_err());
}

#[test]
fn path_prefix_is_segment_aware() {
    for prefix in ["/repos", "/repos/"] {
        assert!(path_has_prefix("/repos", prefix));
        assert!(path_has_prefix("/repos/", prefix));
        assert!(path_has_prefix("/repos/a/b", prefix));
        assert!(!path_has_prefix("/reposX", prefix));
        assert!(!path_has_prefix("/", prefix));
    }
    assert!(path_has_prefix("/", "/"));
    assert!(path_has_prefix("/anything/at/all", "/"));
}

// ---------------------------------------------------------------------------------------------------------------
// Filesystem paths
// ---------------------------------------------------------------------------------------------------------------

/// A temporary directory and its canonical path (the directory itself may sit under a symlinked /tmp).
fn scratch() -> (tempfile::TempDir, String) {
    let dir: tempfile::TempDir = tempfile::tempdir().unwrap();
    let real: String = std::fs::canonicalize(dir.path()).unwrap().into_os_string().into_string().unwrap();
    (dir, real)
}

fn text(path: &Path) -> String {
    path.to_str().unwrap().to_owned()
}

#[test]
fn fs_dot_and_double_slash_and_trailing_slash_are_removed() {
    let (dir, real) = scratch();
    std::fs::create_dir_all(dir.path().join("a/b/c")).unwrap();
    let input: String = format!("{}/a/./b//c/", text(dir.path()));
    assert_eq!(normalize_fs_path(&input).unwrap(), format!("{real}/a/b/c"));
}

#[test]
fn fs_dot_dot_after_a_symlink_goes_where_the_kernel_goes() {
    let (dir, real) = scratch();
    std::fs::create_dir_all(dir.path().join("d/sub")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("d/sub"), dir.path().join("l")).unwrap();
    let input: String = format!("{}/l/../x", text(dir.path()));
    // Lexically this would be <dir>/x; the kernel goes to the parent of the link's target.
    assert_eq!(normalize_fs_path(&input).unwrap(), format!("{real}/d/x"));
}

#[test]
fn fs_symlink_to_outside_resolves_to_the_target() {
    let (inside, _) = scratch();
    let (outside, outside_real) = scratch();
    std::fs::write(outside.path().join("secret"), b"x").unwrap();
    std::os::unix::fs::symlink(outside.path(), inside.path().join("link")).unwrap();
    let input: String = format!("{}/link/secret", text(inside.path()));
    assert_eq!(normalize_fs_path(&input).unwrap(), format!("{outside_real}/secret"));
}

#[test]
fn fs_dangling_symlink_resolves_to_where_a_write_would_land() {
    let (inside, _) = scratch();
    let (outside, outside_real) = scratch();
    std::os::unix::fs::symlink(outside.path().join("new-file"), inside.path().join("out")).unwrap();
    let input: String = format!("{}/out", text(inside.path()));
    assert_eq!(normalize_fs_path(&input).unwrap(), format!("{outside_real}/new-file"));
}

#[test]
fn fs_nonexistent_tail_is_kept_and_cleaned_as_text() {
    let (dir, real) = scratch();
    let input: String = format!("{}/not/yet/../there/", text(dir.path()));
    assert_eq!(normalize_fs_path(&input).unwrap(), format!("{real}/not/there"));
}

#[test]
fn fs_dot_dot_cannot_climb_above_root() {
    assert_eq!(normalize_fs_path("/../../..").unwrap(), "/");
}

#[test]
fn fs_relative_path_is_refused() {
    let error: NormalizeError = normalize_fs_path("etc/passwd").unwrap_err();
    assert_eq!(error.what, "path");
    assert!(error.reason.contains("not an absolute path"), "{error}");
    assert!(normalize_fs_path("./x").is_err());
    assert!(normalize_fs_path("").is_err());
}

#[test]
fn fs_nul_is_refused() {
    assert!(normalize_fs_path("/etc/passwd\0.txt").is_err());
}

#[test]
fn fs_percent_encoded_traversal_is_refused() {
    assert!(normalize_fs_path("/srv/%2e%2e/etc").is_err());
    assert!(normalize_fs_path("/srv/%2E%2E/etc").is_err());
    assert!(normalize_fs_path("/srv/a%2fb").is_err());
    assert!(normalize_fs_path("/srv/a%5Cb").is_err());
}

#[test]
fn fs_pattern_with_dot_dot_is_refused() {
    let error: NormalizeError = normalize_fs_pattern("/srv/app/../secrets").unwrap_err();
    assert_eq!(error.what, "path pattern");
}

#[test]
fn fs_pattern_keeps_glob_components() {
    let (dir, real) = scratch();
    let input: String = format!("{}/./src//**/*.{{rs,toml}}", text(dir.path()));
    assert_eq!(normalize_fs_pattern(&input).unwrap(), format!("{real}/src/**/*.{{rs,toml}}"));
}

#[test]
fn fs_pattern_resolves_a_symlinked_literal_prefix() {
    let (dir, real) = scratch();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("data"), dir.path().join("link")).unwrap();
    let input: String = format!("{}/link/**", text(dir.path()));
    assert_eq!(normalize_fs_pattern(&input).unwrap(), format!("{real}/data/**"));
    // And a request through the same link lands under the pattern's literal prefix.
    let request: String = normalize_fs_path(&format!("{}/link/file", text(dir.path()))).unwrap();
    assert_eq!(request, format!("{real}/data/file"));
}

#[test]
fn fs_pattern_does_not_resolve_past_a_glob() {
    let (dir, real) = scratch();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("data"), dir.path().join("link")).unwrap();
    let input: String = format!("{}/*/link", text(dir.path()));
    assert_eq!(normalize_fs_pattern(&input).unwrap(), format!("{real}/*/link"));
}

#[test]
fn fs_pattern_trailing_slash_is_removed() {
    assert_eq!(normalize_fs_pattern("/nonexistent-airlock-test/dir/").unwrap(), "/nonexistent-airlock-test/dir");
    assert_eq!(normalize_fs_pattern("/").unwrap(), "/");
    assert_eq!(normalize_fs_pattern("/**").unwrap(), "/**");
}

#[test]
fn fs_pattern_relative_or_nul_is_refused() {
    assert!(normalize_fs_pattern("src/**").is_err());
    assert!(normalize_fs_pattern("/a\0b").is_err());
    assert!(normalize_fs_pattern("/a/%2e%2e/b").is_err());
}

#[test]
fn fs_dir_ancestors_run_to_the_root() {
    assert_eq!(dir_ancestors("/srv/app/.git/config"), vec!["/srv/app/.git", "/srv/app", "/srv", "/"]);
    assert!(dir_ancestors("/").is_empty());
}

// ---------------------------------------------------------------------------------------------------------------
// Programs
// ---------------------------------------------------------------------------------------------------------------

fn default_search_path() -> Vec<PathBuf> {
    airlock_policy::normalize::DEFAULT_SEARCH_PATH.iter().map(PathBuf::from).collect()
}

#[test]
fn program_bare_name_resolves_to_an_existing_absolute_path() {
    let resolved: String = resolve_program("sh", &default_search_path()).unwrap();
    assert!(resolved.starts_with('/'), "{resolved}");
    assert!(Path::new(&resolved).is_file(), "{resolved}");
    assert_eq!(std::fs::canonicalize(&resolved).unwrap(), PathBuf::from(&resolved));
}

#[test]
fn program_absolute_path_is_canonicalised() {
    let from_name: String = resolve_program("sh", &default_search_path()).unwrap();
    assert_eq!(resolve_program("/bin/sh", &[]).unwrap(), from_name);
}

#[test]
fn program_symlink_resolves_to_its_target() {
    let (dir, real) = scratch();
    let program: PathBuf = dir.path().join("tool-1.2");
    std::fs::write(&program, b"#!/bin/sh\n").unwrap();
    set_mode(&program, 0o755);
    std::os::unix::fs::symlink(&program, dir.path().join("tool")).unwrap();
    assert_eq!(resolve_program("tool", &[dir.path().to_path_buf()]).unwrap(), format!("{real}/tool-1.2"));
}

#[test]
fn program_relative_path_is_refused() {
    let error: NormalizeError = resolve_program("./sh", &default_search_path()).unwrap_err();
    assert_eq!(error.what, "program");
    assert!(error.reason.contains("relative"), "{error}");
}

#[test]
fn program_missing_is_refused() {
    let error: NormalizeError = resolve_program("/nonexistent/x", &default_search_path()).unwrap_err();
    assert!(error.reason.contains("does not exist"), "{error}");
    let error: NormalizeError =
        resolve_program("airlock-no-such-program-anywhere", &default_search_path()).unwrap_err();
    assert!(error.reason.contains("not found in the search path"), "{error}");
}

#[test]
fn program_empty_or_nul_is_refused() {
    assert!(resolve_program("", &default_search_path()).is_err());
    assert!(resolve_program("s\0h", &default_search_path()).is_err());
}

#[test]
fn program_without_execute_bit_is_refused() {
    let (dir, _) = scratch();
    let script: PathBuf = dir.path().join("script");
    std::fs::write(&script, b"#!/bin/sh\n").unwrap();
    set_mode(&script, 0o644);
    let error: NormalizeError = resolve_program(&text(&script), &[]).unwrap_err();
    assert!(error.reason.contains("not executable"), "{error}");
    let error: NormalizeError = resolve_program("script", &[dir.path().to_path_buf()]).unwrap_err();
    assert!(error.reason.contains("not executable"), "{error}");
}

#[test]
fn program_directory_is_refused() {
    let (dir, _) = scratch();
    let error: NormalizeError = resolve_program(&text(dir.path()), &[]).unwrap_err();
    assert!(error.reason.contains("directory"), "{error}");
}

#[test]
fn program_search_stops_at_the_first_runnable_match() {
    let (first, _) = scratch();
    let (second, second_real) = scratch();
    // Not runnable in the first directory, runnable in the second: the second wins, as in a shell.
    std::fs::write(first.path().join("tool"), b"x").unwrap();
    set_mode(&first.path().join("tool"), 0o644);
    std::fs::write(second.path().join("tool"), b"x").unwrap();
    set_mode(&second.path().join("tool"), 0o755);
    let search: Vec<PathBuf> = vec![first.path().to_path_buf(), second.path().to_path_buf()];
    assert_eq!(resolve_program("tool", &search).unwrap(), format!("{second_real}/tool"));
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

// ---------------------------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------------------------

/// A DNS label that parses: starts with a letter (so no label reads as a number), no hyphen at either end.
fn label() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9]{0,6}(-[a-z0-9]{1,4})?"
}

fn domain() -> impl Strategy<Value = String> {
    prop::collection::vec(label(), 1..4).prop_map(|labels: Vec<String>| labels.join("."))
}

fn random_case(text: &str, flips: &[bool]) -> String {
    text.chars()
        .zip(flips.iter().cycle())
        .map(|(c, flip): (char, &bool)| if *flip { c.to_ascii_uppercase() } else { c })
        .collect()
}

fn path_segment() -> impl Strategy<Value = String> {
    // Spellings that must be refused are weighted down so that most generated paths still parse.
    prop_oneof![
        3 => Just("..".to_owned()),
        3 => Just(".".to_owned()),
        3 => Just("%2e%2e".to_owned()),
        3 => Just("%2E%2e".to_owned()),
        3 => Just(".%2e".to_owned()),
        3 => Just("%2e".to_owned()),
        3 => Just("x".to_owned()),
        3 => Just("xy".to_owned()),
        3 => Just("rep%6fs".to_owned()),
        3 => Just("a%3fb".to_owned()),
        3 => Just("...".to_owned()),
        6 => "[a-zA-Z0-9._~-]{1,6}",
        1 => Just("".to_owned()),
        1 => Just("%2f".to_owned()),
        1 => Just("x%2f".to_owned()),
        1 => Just("\\".to_owned()),
    ]
}

fn url_path() -> impl Strategy<Value = String> {
    prop::collection::vec(path_segment(), 0..8).prop_map(|segments: Vec<String>| format!("/{}", segments.join("/")))
}

proptest! {
    #[test]
    fn prop_host_parse_is_idempotent(
        raw in "[a-zA-Z0-9.-]{1,40}",
        flips in prop::collection::vec(any::<bool>(), 1..8),
        trailing_dot in any::<bool>(),
    ) {
        let mut input: String = random_case(&raw, &flips);
        if trailing_dot {
            input.push('.');
        }
        if let Ok(first) = HostName::parse(&input) {
            let again: HostName = HostName::parse(&first.as_text()).expect("canonical text must parse");
            prop_assert_eq!(again, first);
        }
    }

    #[test]
    fn prop_wildcard_matches_strict_subdomains_only(sub in label(), suffix in domain()) {
        let wildcard: HostPattern = HostPattern::parse(&format!("*.{suffix}")).unwrap();
        let below: HostName = HostName::parse(&format!("{sub}.{suffix}")).unwrap();
        prop_assert!(wildcard.matches(&below, 443, true));
        let apex: HostName = HostName::parse(&suffix).unwrap();
        prop_assert!(!wildcard.matches(&apex, 443, true));
        let glued: HostName = HostName::parse(&format!("{sub}{suffix}")).unwrap();
        prop_assert!(!wildcard.matches(&glued, 443, true));
    }

    #[test]
    fn prop_exact_pattern_matches_only_its_own_name(a in domain(), b in domain()) {
        let exact: HostPattern = HostPattern::parse(&a).unwrap();
        let other: HostName = HostName::parse(&b).unwrap();
        prop_assert_eq!(exact.matches(&other, 443, true), HostName::parse(&a).unwrap() == other);
        prop_assert!(exact.matches(&HostName::parse(&a.to_uppercase()).unwrap(), 443, true));
    }

    #[test]
    fn prop_target_path_normalisation_is_idempotent(path in url_path()) {
        if let Ok(first) = Target::parse(&format!("https://h{path}")) {
            let again: Target = Target::parse(&first.to_string()).expect("canonical text must parse");
            prop_assert_eq!(&again.path, &first.path);
            prop_assert_eq!(again, first);
        }
    }

    #[test]
    fn prop_normalised_path_has_no_dot_or_empty_segments(path in url_path()) {
        if let Ok(parsed) = Target::parse(&format!("https://h{path}")) {
            prop_assert!(parsed.path.starts_with('/'));
            let inner: &str = parsed.path.strip_suffix('/').unwrap_or(&parsed.path);
            for segment in inner.split('/').skip(1) {
                prop_assert!(!segment.is_empty(), "empty segment in {}", parsed.path);
                prop_assert!(segment != "." && segment != "..", "dot segment in {}", parsed.path);
                prop_assert!(!segment.eq_ignore_ascii_case("%2e") && !segment.eq_ignore_ascii_case("%2e%2e"));
            }
            prop_assert!(!parsed.path.contains("//"));
            prop_assert!(!parsed.path.contains("/../") && !parsed.path.contains("/./"));
        }
    }

    #[test]
    fn prop_prefix_match_on_normalised_paths_is_segment_aware(path in url_path()) {
        if let Ok(parsed) = Target::parse(&format!("https://h{path}"))
            && path_has_prefix(&parsed.path, "/x/")
        {
            prop_assert!(parsed.path == "/x" || parsed.path.starts_with("/x/"), "{}", parsed.path);
        }
    }
}
