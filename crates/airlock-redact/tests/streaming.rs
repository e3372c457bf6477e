//! Large chunks are scanned in place (only their first bytes join the carry-over window): streaming a few
//! megabytes full of secrets in chunks of many sizes, large and small mixed, must give exactly the masked output
//! and the findings (rule, span, line, column) of redacting the whole text at once.

use std::sync::Arc;

use airlock_redact::{Finding, MaskStyle, PiiSelection, RuleSet, ScanOptions, Scanner, StreamRedactor};

fn scanner() -> Arc<Scanner> {
    let options = ScanOptions { secrets: true, pii: PiiSelection::All, fingerprint_key: Some([5; 32]) };
    Arc::new(Scanner::new(RuleSet::builtin(), &options, None).expect("scanner builds"))
}

/// About 3 MB: filler lines, and every built-in rule's positive examples, each many times, at pseudo-random places.
fn text() -> Vec<u8> {
    let examples: Vec<String> = RuleSet::builtin().rules().iter().flat_map(|r| r.spec().positive.clone()).collect();
    let mut x: u64 = 42;
    let mut next = move |n: u64| {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (x >> 33) % n
    };
    let mut out = Vec::new();
    while out.len() < 3 << 20 {
        for _ in 0..next(40) {
            out.extend_from_slice(b"    let value = compute(&input, offset + 1); // ordinary code\n");
        }
        out.extend_from_slice(examples[next(examples.len() as u64) as usize].as_bytes());
        out.push(if next(4) == 0 { b' ' } else { b'\n' });
    }
    out
}

type Seen = Vec<(String, u64, u64, u64, u64)>;

fn seen(findings: &[Finding]) -> Seen {
    findings.iter().map(|f| (f.rule.to_string(), f.start, f.end, f.line, f.column)).collect()
}

fn stream(s: &Arc<Scanner>, data: &[u8], sizes: &mut dyn FnMut() -> usize) -> (Vec<u8>, Seen) {
    let mut st = StreamRedactor::new(Arc::clone(s), MaskStyle::Label);
    let (mut out, mut found) = (Vec::new(), Vec::new());
    let mut at = 0;
    while at < data.len() {
        let end = (at + sizes().max(1)).min(data.len());
        found.extend(st.push(&data[at..end], &mut out));
        at = end;
    }
    found.extend(st.finish(&mut out));
    (out, seen(&found))
}

#[test]
fn large_and_mixed_chunks_give_exactly_the_whole_buffer_result() {
    let s = scanner();
    let data = text();
    let (whole, findings) = s.redact(&data, &MaskStyle::Label);
    let want = seen(&findings);
    assert!(want.len() > 1000, "the text holds many findings ({})", want.len());
    let junction = 2 * s.hold();
    for size in [junction + 1, junction + 4093, 100_000, 1 << 20] {
        let (out, got) = stream(&s, &data, &mut || size);
        assert!(out == whole, "chunks of {size} bytes: output differs");
        assert_eq!(got, want, "chunks of {size} bytes");
    }
    let mut x: u64 = 7;
    let mut mixed = || {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        match (x >> 33) % 3 {
            0 => ((x >> 40) % 300) as usize,
            1 => junction + ((x >> 40) % 5000) as usize,
            _ => ((x >> 40) % 200_000) as usize,
        }
    };
    let (out, got) = stream(&s, &data, &mut mixed);
    assert!(out == whole, "mixed chunks: output differs");
    assert_eq!(got, want, "mixed chunks");
}

/// A stream's cut can fall inside a word. The scan that resumes there must still see the byte before it: a token
/// glued to a word (`xqk_...`) has no word boundary in front, whole or streamed. One rule with a short window makes
/// the cut land at every place as the first chunk grows; with a batch of one the stream scans at every push.
#[test]
fn a_scan_resuming_at_a_cut_sees_the_byte_before_it() {
    let mut set = RuleSet::empty();
    set.add_toml(
        "test.toml",
        r#"
[[rule]]
id = "qk-token"
family = "test"
description = "qk_ then 16 alphanumerics, on a word boundary"
keywords = ["qk_"]
regex = '''\b(?P<secret>qk_[A-Za-z0-9]{16})\b'''
max_len = 19
positive = ["qk_Ab3dEf6hIj9kLm2n"]
negative = ["xqk_Ab3dEf6hIj9kLm2n"]

[[rule]]
id = "line-key"
family = "test"
description = "ZKEY= at the start of a line"
keywords = ["zkey"]
regex = '''(?m:^)ZKEY=(?P<secret>[a-z0-9]{12})'''
max_len = 17
positive = ["ZKEY=m3n8b5v2c7x4"]
negative = ["x ZKEY=m3n8b5v2c7x4"]
"#,
    )
    .expect("rules load");
    let options = ScanOptions { secrets: true, pii: PiiSelection::None, fingerprint_key: Some([5; 32]) };
    let s = Arc::new(Scanner::new(set, &options, None).expect("scanner builds"));
    let text =
        b"padding padding xqk_Ab3dEf6hIj9kLm2n and qk_Zz9yXx8wVv7uTt6s; xZKEY=m3n8b5v2c7x4\nZKEY=q7w2e9r4t1y6 end";
    let (whole, findings) = s.redact(text, &MaskStyle::Label);
    assert_eq!(findings.len(), 2, "only the token on a boundary and the key at a line start");
    for first in 0..=text.len() {
        let mut st = StreamRedactor::new(Arc::clone(&s), MaskStyle::Label).with_batch(1);
        let mut out = Vec::new();
        let mut found = st.push(&text[..first], &mut out);
        for byte in text[first..].chunks(1) {
            found.extend(st.push(byte, &mut out));
        }
        found.extend(st.finish(&mut out));
        assert!(out == whole, "first chunk of {first} bytes: {}", String::from_utf8_lossy(&out));
        assert_eq!(seen(&found), seen(&findings), "first chunk of {first} bytes");
    }
}
