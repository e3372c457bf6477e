//! Attack: a tool prints a private key, a token and a vault value one byte per write (an unbuffered `print` loop),
//! so that no single write holds more than a byte of any of them. The carry-over window still sees each whole.

use crate::common::{GITHUB_TOKEN, VAULT_VALUE, contains, scanner, stream};

/// An RSA key made for this test with `openssl genpkey -algorithm rsa` and never used anywhere: test data, not a
/// credential.
const PRIVATE_KEY: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7jky9A8Y3GG91\n\
kcjbKVkz1xMy02D65dcIzd3aQ9xcjstced1QwMJBXqrRaSJ/fgv9Lg1O1Nnws+Tx\n\
NsV4/LqYBwmKZF7XM5X/V1PRaBh6ybd5n/w8k2Pg2HAsEIbXe/8pFK8L+w00/YXy\n\
Dsuhz7Kvd3XGJCVGHYAmAVRclhFfSnyVVgc9YrYPQXfdJwMdjYB4DqkXrmZvcr8c\n\
hUkqQHZR3rsoJ4ll8UaHM+FPPibCzQWWjs1bXs0QWeXvSCf1wDMEkdnELk9vAB8m\n\
7d+HVjr38DAgj8iA/GV4nHjKnzlUEIwlP50W9Tc7nvdbGBn1tnvzbR4SqJxOF1mR\n\
AAKrc2hPAgMBAAECggEAAO1fK8ANBtC0HFywJYU6z6rMiX/KBvOD8KMz6ZRUTpDW\n\
KIrhsTiCvVf+eDKQ3Rh+bq3/mtgqi6oYA6lFqKd3NLE0Nt7wKRg0MaL44xwkotbE\n\
dXF5CcOgxsfLJiyevgn65PUZOHHxSsXGF8BC+XXRaFSq3GPpW0NiEs4G4L5NL69o\n\
Z7Il9zUhDSXwjj1x7r852+do+q0N4EjnSNZ/95OA8jmBwAisehmSQWJkEgn34EoD\n\
R218p74+G8VGpRvKin/JFa8tw4114reWZNex4BSgaqJRSVr3ay5ISscUmtRYWIsL\n\
BINMjZqto7nWvTAKSREetK0TZrGiCl1h/m6OTV12YQKBgQD2xOyV6oc2sWd6nVQX\n\
NiMlLT+BwtMVn7eVompQxMWtEf9ocChfbgUfhr/glfxMZ+xQfentHuHU0dmf3c5g\n\
44a45GLz32cF2fPjzJEfZHBdkh66ZLGhikRDG4fDMf3Y+pzm6rSeSbmkLsOuCJHZ\n\
gjAaoVTK2xuufYMmqDS/CwcBuwKBgQDCklhTztT405ZFzHchewsQILhVFzNfjlM0\n\
vjnwb2EW5XC5zDR9HDriS8tY4LuZXIu3HlweeWiLMlhwbl2cLNSriEV1Hke7ODrC\n\
6hg7krLndp70aX65z3MFFOKhH8f0MNkg1ry4jqFOx7zk9KyYEgT6xAufQDcD8KO3\n\
y+pKApWwfQKBgFlwLDN1ykYHbHLjXNwA0iIiUTctrqXSuo4wTIozl1XQBRsMM4XK\n\
8W5ov1id49CphdvylvtLSxyAZnjrwmYZcPXISRkMqmFTinLQ7PRMyfEQCbUS09Kx\n\
s2YDL2SO1Ot0gbOr84S/QdqA3IlSL9J+vgKY4IuZeGH4ubUkF+H6FDMLAoGAKkz2\n\
twG4e4BEo1gYbkb52L/EU3t/x76BiG3y2rrcOMYZA8vJfYmto5Um2GPDZUwhc+Y9\n\
0MJEYD7Jy2ezIkj8024E67lxjtpirA2IxyrVikzXsftdebgIIYqw2qa2KfiUu/bz\n\
gIxBtYbnIj+vZkBEpOAKRs0HKOwgK81BWmXFdWECgYEAnOC1aYpL52dYcivAuiAo\n\
USeDepwbSrMoF1oJ9vMn4O7oHG9Vvg/M+HpuEKfD2zN+s0cpd2DgvNsOvfn0lQEj\n\
MBhhumBtth4FrGM4+DlzWw21iBaz8G/NC8kDfG9LdFcBLajYpuWy1/JiwCLXvWPd\n\
yXqVjifvjDRonCM//JnJ+Xc=\n\
-----END PRIVATE KEY-----\n\
";

#[test]
fn print_a_private_key_one_byte_at_a_time() {
    let s = scanner();
    let mut text = format!("{PRIVATE_KEY}token={GITHUB_TOKEN}\nvalue=").into_bytes();
    text.extend_from_slice(VAULT_VALUE);
    text.extend_from_slice(b"\n");
    let chunks: Vec<&[u8]> = text.chunks(1).collect();
    let (out, rules) = stream(&s, &chunks);
    let shown = String::from_utf8_lossy(&out);
    // The key's body is masked; the BEGIN and END lines stay and say what was there. No line of the body survives.
    let body: Vec<&str> = PRIVATE_KEY.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(body.len() > 20, "a whole key, not a stub");
    for line in body {
        assert!(!shown.contains(line), "a line of the key reached the output: {shown}");
    }
    assert!(shown.contains("-----BEGIN PRIVATE KEY-----"), "{shown}");
    assert!(!contains(&out, GITHUB_TOKEN.as_bytes()), "{shown}");
    assert!(!contains(&out, VAULT_VALUE), "{shown}");
    assert_eq!(rules, ["private-key-pkcs8", "github-pat-classic", "known-value"]);
}
