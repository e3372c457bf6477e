//! Reading the server name from a TLS ClientHello, without terminating TLS.
//!
//! Why: a CONNECT tunnel is approved for one host, but what travels inside is opaque. A tool could CONNECT to an
//! allowed host and then open TLS to another name through it (domain fronting, or a shared CDN address). The
//! broker therefore reads the ClientHello the client sends first and refuses the tunnel unless its SNI names the
//! approved host; anything that is not a TLS ClientHello is refused too.
//!
//! The parser is strict and bounded: at most [`MAX_HELLO`] bytes, records of type handshake only, one
//! ClientHello, every length checked against what is left. It never allocates more than the bytes it was given.

/// Largest ClientHello accepted (post-quantum key shares make them a few KiB; 16 KiB leaves room).
pub const MAX_HELLO: usize = 16 * 1024;

/// What a buffer of client bytes turned out to hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hello {
    /// More bytes are needed.
    Incomplete,
    /// A complete ClientHello, with its server name if it sent one (lowercase, as sent).
    Complete { server_name: Option<String> },
    /// Not a TLS ClientHello, or a malformed one.
    Invalid(&'static str),
}

/// Parses the ClientHello at the start of `buf` (TLS records, possibly several).
pub fn parse(buf: &[u8]) -> Hello {
    if buf.first().is_some_and(|b| *b != 0x16) {
        return Hello::Invalid("the tunnel did not start with a TLS handshake");
    }
    // Reassemble the handshake stream from consecutive handshake records, up to the end of the ClientHello.
    let mut handshake = Vec::new();
    let mut rest = buf;
    while rest.len() >= 5 {
        if rest[0] != 0x16 {
            return Hello::Invalid("the ClientHello is interleaved with other TLS records");
        }
        if rest[1] != 0x03 {
            return Hello::Invalid("unknown TLS record version");
        }
        let len = u16::from_be_bytes([rest[3], rest[4]]) as usize;
        if len == 0 || len > 16384 {
            return Hello::Invalid("bad TLS record length");
        }
        if rest.len() < 5 + len {
            break;
        }
        handshake.extend_from_slice(&rest[5..5 + len]);
        rest = &rest[5 + len..];
        if handshake.len() >= 4 && handshake.len() >= 4 + body_len(&handshake) {
            break;
        }
    }
    if handshake.len() < 4 {
        return Hello::Incomplete;
    }
    if handshake[0] != 0x01 {
        return Hello::Invalid("the first handshake message is not a ClientHello");
    }
    let len = body_len(&handshake);
    if len > MAX_HELLO {
        return Hello::Invalid("ClientHello too large");
    }
    if handshake.len() < 4 + len {
        return Hello::Incomplete;
    }
    match server_name(&handshake[4..4 + len]) {
        Ok(server_name) => Hello::Complete { server_name },
        Err(why) => Hello::Invalid(why),
    }
}

/// The length field of a handshake message header (3 bytes after the type).
fn body_len(handshake: &[u8]) -> usize {
    u32::from_be_bytes([0, handshake[1], handshake[2], handshake[3]]) as usize
}

/// A bounds-checked reader over a byte slice.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if self.0.len() < n {
            return Err("truncated ClientHello");
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<usize, &'static str> {
        Ok(self.take(1)?[0] as usize)
    }
    fn u16(&mut self) -> Result<usize, &'static str> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]) as usize)
    }
    fn vec8(&mut self) -> Result<&'a [u8], &'static str> {
        let n = self.u8()?;
        self.take(n)
    }
    fn vec16(&mut self) -> Result<&'a [u8], &'static str> {
        let n = self.u16()?;
        self.take(n)
    }
}

fn server_name(hello: &[u8]) -> Result<Option<String>, &'static str> {
    let mut r = Reader(hello);
    r.take(2)?; // legacy_version
    r.take(32)?; // random
    r.vec8()?; // legacy_session_id
    r.vec16()?; // cipher_suites
    r.vec8()?; // legacy_compression_methods
    if r.0.is_empty() {
        return Ok(None); // no extensions at all
    }
    let mut exts = Reader(r.vec16()?);
    let mut found = None;
    while !exts.0.is_empty() {
        let kind = exts.u16()?;
        let data = exts.vec16()?;
        if kind != 0 {
            continue;
        }
        if found.is_some() {
            return Err("two server_name extensions");
        }
        let mut list = Reader(data);
        let mut names = Reader(list.vec16()?);
        let mut host = None;
        while !names.0.is_empty() {
            let name_type = names.u8()?;
            let name = names.vec16()?;
            if name_type != 0 {
                continue;
            }
            if host.is_some() {
                return Err("two host names in server_name");
            }
            let text = std::str::from_utf8(name).map_err(|_| "server_name is not text")?;
            if text.is_empty() || !text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.') {
                return Err("server_name is not a host name");
            }
            host = Some(text.trim_end_matches('.').to_ascii_lowercase());
        }
        found = Some(host);
    }
    Ok(found.flatten())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ClientHello with the given extensions block.
    fn hello(exts: &[u8]) -> Vec<u8> {
        let mut body = vec![0x03, 0x03];
        body.extend_from_slice(&[7u8; 32]);
        body.push(0); // session id
        body.extend_from_slice(&[0, 2, 0x13, 0x01]); // one cipher suite
        body.extend_from_slice(&[1, 0]); // null compression
        body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
        body.extend_from_slice(exts);
        let mut hs = vec![0x01];
        hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        hs.extend_from_slice(&body);
        hs
    }

    fn sni_ext(name: &str) -> Vec<u8> {
        let mut entry = vec![0u8];
        entry.extend_from_slice(&(name.len() as u16).to_be_bytes());
        entry.extend_from_slice(name.as_bytes());
        let mut list = (entry.len() as u16).to_be_bytes().to_vec();
        list.extend_from_slice(&entry);
        let mut ext = vec![0, 0];
        ext.extend_from_slice(&(list.len() as u16).to_be_bytes());
        ext.extend_from_slice(&list);
        ext
    }

    fn records(hs: &[u8], size: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for chunk in hs.chunks(size) {
            out.extend_from_slice(&[0x16, 0x03, 0x01]);
            out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
            out.extend_from_slice(chunk);
        }
        out
    }

    #[test]
    fn finds_the_server_name_in_one_or_many_records() {
        let mut exts = vec![0, 10, 0, 2, 0, 29]; // another extension first
        exts.extend(sni_ext("API.Example.com."));
        let hs = hello(&exts);
        for size in [hs.len(), 7, 1] {
            let buf = records(&hs, size);
            assert_eq!(parse(&buf), Hello::Complete { server_name: Some("api.example.com".into()) }, "size {size}");
            // Every strict prefix is incomplete, never a wrong answer.
            for cut in [0, 3, 5, buf.len() / 2, buf.len() - 1] {
                assert_eq!(parse(&buf[..cut]), Hello::Incomplete, "size {size} cut {cut}");
            }
        }
    }

    #[test]
    fn no_sni_is_complete_without_a_name() {
        let buf = records(&hello(&[0, 10, 0, 2, 0, 29]), 512);
        assert_eq!(parse(&buf), Hello::Complete { server_name: None });
    }

    #[test]
    fn non_tls_and_malformed_hellos_are_invalid() {
        assert!(matches!(parse(b"GET / HTTP/1.1\r\n\r\n"), Hello::Invalid(_)));
        assert!(matches!(parse(b"SSH-2.0-OpenSSH"), Hello::Invalid(_)));
        // A ServerHello (type 2) where a ClientHello belongs.
        let mut hs = hello(&sni_ext("a.example"));
        hs[0] = 2;
        assert!(matches!(parse(&records(&hs, 512)), Hello::Invalid(_)));
        // A server_name length running past the end.
        let mut ext = sni_ext("a.example");
        let n = ext.len();
        ext[n - 10] = 0x40;
        assert!(matches!(parse(&records(&hello(&ext), 512)), Hello::Invalid(_)));
        // Two server_name extensions.
        let mut two = sni_ext("a.example");
        two.extend(sni_ext("b.example"));
        assert!(matches!(parse(&records(&hello(&two), 512)), Hello::Invalid(_)));
        // A name with a NUL or a slash in it.
        assert!(matches!(parse(&records(&hello(&sni_ext("a.example\0.evil")), 512)), Hello::Invalid(_)));
        assert!(matches!(parse(&records(&hello(&sni_ext("a.example/x")), 512)), Hello::Invalid(_)));
    }

    #[test]
    fn an_oversized_hello_is_refused_not_buffered_for_ever() {
        let big = vec![0u8; MAX_HELLO + 100];
        let mut ext = vec![0xff, 0x01];
        ext.extend_from_slice(&(big.len() as u16).to_be_bytes());
        ext.extend_from_slice(&big);
        let buf = records(&hello(&ext), 16384);
        assert!(matches!(parse(&buf), Hello::Invalid(_)));
    }
}
