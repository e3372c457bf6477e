//! Attack: a tool writes a token and a vault value one byte per write (an unbuffered `print` loop). The carry-over
//! window still sees them whole.

use crate::common::{GITHUB_TOKEN, VAULT_VALUE, contains, scanner, stream};

#[test]
fn print_a_private_key_one_byte_at_a_time() {
    let s = scanner();
    let mut text = format!("token={GITHUB_TOKEN}\nvalue=").into_bytes();
    text.extend_from_slice(VAULT_VALUE);
    text.extend_from_slice(b"\n");
    let chunks: Vec<&[u8]> = text.chunks(1).collect();
    let (out, rules) = stream(&s, &chunks);
    assert!(!contains(&out, GITHUB_TOKEN.as_bytes()), "{}", String::from_utf8_lossy(&out));
    assert!(!contains(&out, VAULT_VALUE), "{}", String::from_utf8_lossy(&out));
    assert_eq!(rules, ["github-pat-classic", "known-value"]);
}
