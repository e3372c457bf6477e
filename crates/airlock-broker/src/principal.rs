//! Who is asking: every connection and every request is attributed to an agent, a tool and a run.
//!
//! Why it matters: policy decides per agent and tool, rate limits and egress budgets count per run, and the audit
//! log must name who did what. A request nobody can be attributed to is refused (407), never served as "anyone".
//!
//! Three ways to be attributed, strongest first:
//! - a **per-run Unix socket**: the supervisor creates one socket per sandboxed run and bind-mounts only that one
//!   into the sandbox, so the socket itself says who is calling ([`Attribution::Fixed`]);
//! - a **per-agent token** in `Proxy-Authorization` (`Basic` with the token as password, or `Bearer`): looked up by
//!   a keyed hash, so lookup time does not depend on how much of a token matched ([`TokenTable`]);
//! - the **peer's credentials** on a Unix socket: only the broker's own user (or root) may connect at all.

use std::collections::HashMap;
use std::fmt;

use airlock_crypto::{Key32, kdf};
use base64::Engine as _;
use zeroize::Zeroizing;

/// An agent running a tool in one run.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Principal {
    pub agent: String,
    pub tool: String,
    pub run: String,
}

impl Principal {
    pub fn new(agent: &str, tool: &str, run: &str) -> Principal {
        Principal { agent: agent.to_string(), tool: tool.to_string(), run: run.to_string() }
    }
}

impl fmt::Debug for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}@{}", self.agent, self.tool, self.run)
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Per-agent proxy tokens. Holds keyed hashes of tokens, never the tokens.
pub struct TokenTable {
    key: Key32,
    by_tag: HashMap<[u8; 32], Principal>,
}

impl fmt::Debug for TokenTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenTable({} tokens)", self.by_tag.len())
    }
}

impl Default for TokenTable {
    fn default() -> Self {
        TokenTable::new()
    }
}

/// Tokens shorter than this are refused when added: a proxy token must not be guessable.
pub const MIN_TOKEN_LEN: usize = 16;

impl TokenTable {
    pub fn new() -> TokenTable {
        TokenTable { key: Key32::random(), by_tag: HashMap::new() }
    }

    /// Registers `token` for `principal`. Refuses short tokens.
    pub fn add(&mut self, token: &[u8], principal: Principal) -> Result<(), String> {
        if token.len() < MIN_TOKEN_LEN {
            return Err(format!("a proxy token must be at least {MIN_TOKEN_LEN} bytes"));
        }
        self.by_tag.insert(kdf::hmac_sha256(&self.key, token), principal);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.by_tag.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_tag.is_empty()
    }

    /// The principal a `Proxy-Authorization` value names, if any.
    pub fn authenticate(&self, header: &[u8]) -> Option<&Principal> {
        let token = token_of(header)?;
        self.by_tag.get(&kdf::hmac_sha256(&self.key, &token))
    }
}

/// The token in `Basic base64(user:token)` or `Bearer token`. The user name of Basic is ignored: the token alone
/// says who is calling, and clients differ in what they put there.
fn token_of(header: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let text = std::str::from_utf8(header).ok()?.trim();
    let (scheme, rest) = text.split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(Zeroizing::new(rest.as_bytes().to_vec()));
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = Zeroizing::new(base64::engine::general_purpose::STANDARD.decode(rest).ok()?);
        let colon = decoded.iter().position(|b| *b == b':')?;
        return Some(Zeroizing::new(decoded[colon + 1..].to_vec()));
    }
    None
}

/// How a listener attributes the connections it accepts.
#[derive(Debug, Clone)]
pub enum Attribution {
    /// Everything on this listener is this principal (a per-run socket, or `airlock proxy --agent --tool`).
    Fixed(Principal),
    /// Each request must carry a token from the table.
    Token(std::sync::Arc<TokenTable>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_and_bearer_tokens_name_their_principal() {
        let mut t = TokenTable::new();
        t.add(b"tok-aaaaaaaaaaaaaaaa", Principal::new("a", "curl", "r1")).unwrap();
        let basic =
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("anything:tok-aaaaaaaaaaaaaaaa"));
        assert_eq!(t.authenticate(basic.as_bytes()).unwrap().agent, "a");
        assert_eq!(t.authenticate(b"Bearer tok-aaaaaaaaaaaaaaaa").unwrap().tool, "curl");
        assert_eq!(t.authenticate(b"bearer   tok-aaaaaaaaaaaaaaaa ").unwrap().run, "r1");
        assert!(t.authenticate(b"Bearer tok-aaaaaaaaaaaaaaab").is_none());
        assert!(t.authenticate(b"Digest tok-aaaaaaaaaaaaaaaa").is_none());
        assert!(t.authenticate(b"Basic !!!").is_none());
        assert!(t.authenticate(b"").is_none());
    }

    #[test]
    fn short_tokens_are_refused_and_debug_shows_no_token() {
        let mut t = TokenTable::new();
        assert!(t.add(b"short", Principal::new("a", "b", "c")).is_err());
        t.add(b"0123456789abcdef-secret", Principal::new("a", "b", "c")).unwrap();
        assert!(!format!("{t:?}").contains("secret"));
        assert_eq!(t.len(), 1);
    }
}
