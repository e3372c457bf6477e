//! Attack: a tool writes one enormous line (no newline for 64 MiB), hoping the redactor buffers it all (memory) or
//! gives up on it (a token at the end gets through). The stream holds back at most a batch of windows plus one chunk, and
//! the token at the end is still masked.

use std::sync::Arc;

use airlock_redact::{MaskStyle, StreamRedactor};

use crate::common::{GITHUB_TOKEN, contains, scanner};

#[test]
fn flood_the_stream_with_one_endless_line() {
    let s = scanner();
    let chunk = vec![b'a'; 1 << 20];
    let mut stream = StreamRedactor::new(Arc::clone(&s), MaskStyle::Label);
    let mut out = Vec::new();
    let mut emitted = 0u64;
    for _ in 0..64 {
        out.clear();
        assert!(stream.push(&chunk, &mut out).is_empty());
        emitted += out.len() as u64;
        assert!(
            stream.held() <= airlock_redact::stream::SCAN_BATCH * s.hold() + chunk.len(),
            "held {} bytes",
            stream.held()
        );
    }
    out.clear();
    let mut found = stream.push(format!(" {GITHUB_TOKEN}").as_bytes(), &mut out);
    found.extend(stream.finish(&mut out));
    emitted += out.len() as u64;
    assert_eq!(found.len(), 1);
    assert!(!contains(&out, GITHUB_TOKEN.as_bytes()));
    assert_eq!(found[0].line, 1);
    assert_eq!(found[0].start, 64 << 20 | 1);
    // Everything else came out, unchanged in length.
    assert_eq!(emitted, (64u64 << 20) + 1 + "[REDACTED:github-pat-classic]".len() as u64);
}
