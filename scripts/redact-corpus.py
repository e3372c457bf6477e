#!/usr/bin/env python3
"""Build the corpora for the secret/PII scanner benchmark (scripts/bench-redact.sh).

Python 3 standard library only. Every output is a function of --seed (and of the files found on the machine for
the throughput corpus), so two runs with the same arguments on the same machine write the same bytes.

  redact-corpus.py labelled   --out DIR --split dev|test [--seed N] [--per-kind N]
  redact-corpus.py throughput --out DIR [--seed N] [--size-mb 200] [--planted 300] [--subset-mb 10]
  redact-corpus.py all        --out DIR [--seed N] ...      # both splits and the throughput corpus
  redact-corpus.py selftest                                  # checks the token generators

Layout written under --out:
  labelled/<split>/...                   realistic config/source/log files, one project folder each
  labelled/<split>.labels.jsonl          true secrets and PII: {"file","line","end_line","family","kind","pii"}, plus
                                         "value" and "column" (1-based) for one-line values, "context_lines" for
                                         lines that belong to the secret without holding it (YAML `key: |` line)
  labelled/<split>.negatives.jsonl       planted hard negatives (same fields, "negative": kind)
  throughput/clean/...                   ~size-mb of real source (cargo registry, Python) and logs, as a tree
  throughput/clean.txt                   the same files concatenated (in a seeded random order)
  throughput/clean-10m/ , clean-10m.txt  the first files of clean.txt up to --subset-mb, as a tree and as a file
  throughput/planted/...                 clean/ with --planted secrets inserted at random lines (hard links for
                                         untouched files)
  throughput/planted-only/               hard links to just the planted files (for slow tools)
  throughput/planted.labels.jsonl        labels of the planted secrets (file relative to planted/)
  throughput/manifest.json               sizes, counts, sources

Token formats are written from the public descriptions of each vendor's format (prefix, length, alphabet,
checksum). GitHub classic and npm tokens carry a real CRC32 checksum: 30 random base62 characters, then the CRC32
(IEEE) of those 30 characters (the prefix is not part of it) in base62 (0-9A-Za-z), left-padded with '0' to 6.
Private keys are real DER structures (RSA 2048 with seeded primes, P-256, Ed25519 in openssh-key-v1), so a
scanner that parses them sees valid keys; none of them is used anywhere.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import random
import re
import shutil
import string
import struct
import sys
import time
import zlib

# --------------------------------------------------------------------------------------------------------------
# Alphabets and small helpers
# --------------------------------------------------------------------------------------------------------------

B62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
ALNUM = string.ascii_letters + string.digits
LOWNUM = string.ascii_lowercase + string.digits
HEXL = "0123456789abcdef"
B64URL = ALNUM + "-_"
B64STD = ALNUM + "+/"
AWS_B32 = string.ascii_uppercase + "234567"
UPNUM = string.ascii_uppercase + string.digits


def rs(rng, alphabet, n):
    return "".join(rng.choice(alphabet) for _ in range(n))


def b62(n, width=6):
    out = ""
    while n:
        n, r = divmod(n, 62)
        out = B62[r] + out
    return out.rjust(width, "0")


def crc_token(rng, prefix, good=True):
    """GitHub classic / npm style: prefix + 30 base62 + base62(crc32(30 chars)), padded to 6."""
    body = rs(rng, B62, 30)
    chk = b62(zlib.crc32(body.encode()) & 0xFFFFFFFF)
    if not good:
        while True:
            bad = list(chk)
            i = rng.randrange(6)
            bad[i] = rng.choice(B62.replace(chk[i], ""))
            bad = "".join(bad)
            if bad != chk:
                chk = bad
                break
    return prefix + body + chk


def crc_token_valid(tok):
    """True when a ghp_/gho_/.../npm_ token's checksum matches."""
    body, chk = tok[-36:-6], tok[-6:]
    return b62(zlib.crc32(body.encode()) & 0xFFFFFFFF) == chk


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def wrap(s, n):
    return [s[i : i + n] for i in range(0, len(s), n)]


def seeded(seed, *parts):
    return random.Random(":".join(str(p) for p in (seed,) + parts))


def pick_half(items, split):
    """Disjoint halves of a vocabulary: even indexes for dev, odd for test (both when only one item)."""
    if len(items) < 2:
        return list(items)
    return [x for i, x in enumerate(items) if i % 2 == (0 if split == "dev" else 1)]


# --------------------------------------------------------------------------------------------------------------
# DER and key material (deterministic, pure Python)
# --------------------------------------------------------------------------------------------------------------


def der_len(n):
    if n < 128:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def der(tag, body):
    return bytes([tag]) + der_len(len(body)) + body


def der_int(x):
    return der(0x02, x.to_bytes(max(1, (x.bit_length() + 8) // 8), "big"))


def der_seq(*parts):
    return der(0x30, b"".join(parts))


OID_RSA = bytes.fromhex("06092a864886f70d010101")
OID_ECPUB = bytes.fromhex("06072a8648ce3d0201")
OID_P256 = bytes.fromhex("06082a8648ce3d030107")
DER_NULL = b"\x05\x00"

_SMALL_PRIMES = [p for p in range(3, 2000) if all(p % q for q in range(2, int(p**0.5) + 1))]


def _probable_prime(n, rng):
    for p in _SMALL_PRIMES:
        if n % p == 0:
            return n == p
    d, s = n - 1, 0
    while d % 2 == 0:
        d //= 2
        s += 1
    for _ in range(12):
        a = rng.randrange(2, n - 2)
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def _prime(rng, bits):
    while True:
        c = rng.getrandbits(bits) | (3 << (bits - 2)) | 1
        if _probable_prime(c, rng):
            return c


def rsa_der(rng, bits=2048):
    e = 65537
    while True:
        p, q = _prime(rng, bits // 2), _prime(rng, bits // 2)
        if p == q:
            continue
        phi = (p - 1) * (q - 1)
        if phi % e:
            break
    if p < q:
        p, q = q, p
    n = p * q
    d = pow(e, -1, (p - 1) * (q - 1))
    pkcs1 = der_seq(*(der_int(v) for v in (0, n, e, d, p, q, d % (p - 1), d % (q - 1), pow(q, -1, p))))
    return pkcs1


P256_P = 2**256 - 2**224 + 2**192 + 2**96 - 1
P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
P256_G = (
    0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
    0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5,
)


def _p256_add(P, Q):
    if P is None:
        return Q
    if Q is None:
        return P
    p = P256_P
    if P[0] == Q[0] and (P[1] + Q[1]) % p == 0:
        return None
    if P == Q:
        lam = (3 * P[0] * P[0] - 3) * pow(2 * P[1], -1, p) % p
    else:
        lam = (Q[1] - P[1]) * pow(Q[0] - P[0], -1, p) % p
    x = (lam * lam - P[0] - Q[0]) % p
    return (x, (lam * (P[0] - x) - P[1]) % p)


def p256_mul(k, P=P256_G):
    R = None
    while k:
        if k & 1:
            R = _p256_add(R, P)
        P = _p256_add(P, P)
        k >>= 1
    return R


def ec_keypair(rng):
    d = rng.randrange(1, P256_N)
    X, Y = p256_mul(d)
    pub = b"\x04" + X.to_bytes(32, "big") + Y.to_bytes(32, "big")
    return d, pub


def ec_sec1_der(d, pub, with_params=True):
    parts = [der_int(1), der(0x04, d.to_bytes(32, "big"))]
    if with_params:
        parts.append(der(0xA0, OID_P256))
    parts.append(der(0xA1, der(0x03, b"\x00" + pub)))
    return der_seq(*parts)


ED_Q = 2**255 - 19
ED_D = -121665 * pow(121666, -1, ED_Q) % ED_Q
ED_B = (
    15112221349535400772501151409588531511454012693041857206046113283949847762202,
    46316835694926478169428394003475163141307993866256225615783033603165251855960,
)


def _ed_add(P, Q):
    (x1, y1), (x2, y2) = P, Q
    t = ED_D * x1 * x2 * y1 * y2 % ED_Q
    x3 = (x1 * y2 + x2 * y1) * pow(1 + t, -1, ED_Q) % ED_Q
    y3 = (y1 * y2 + x1 * x2) * pow(1 - t, -1, ED_Q) % ED_Q
    return (x3, y3)


def ed25519_pub(seed):
    h = hashlib.sha512(seed).digest()
    a = int.from_bytes(h[:32], "little")
    a &= (1 << 254) - 8
    a |= 1 << 254
    R, P = (0, 1), ED_B
    while a:
        if a & 1:
            R = _ed_add(R, P)
        P = _ed_add(P, P)
        a >>= 1
    x, y = R
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def pem(label, der_bytes, width=64):
    body = base64.b64encode(der_bytes).decode()
    return [f"-----BEGIN {label}-----"] + wrap(body, width) + [f"-----END {label}-----"]


def gen_pem_rsa(rng):
    return pem("RSA PRIVATE KEY", rsa_der(rng))


def gen_pem_ec(rng):
    d, pub = ec_keypair(rng)
    return pem("EC PRIVATE KEY", ec_sec1_der(d, pub))


def pkcs8_rsa(rng):
    return der_seq(der_int(0), der_seq(OID_RSA, DER_NULL), der(0x04, rsa_der(rng)))


def gen_pem_pkcs8(rng):
    if rng.random() < 0.5:
        return pem("PRIVATE KEY", pkcs8_rsa(rng))
    d, pub = ec_keypair(rng)
    return pem("PRIVATE KEY", der_seq(der_int(0), der_seq(OID_ECPUB, OID_P256), der(0x04, ec_sec1_der(d, pub, False))))


def _ssh_str(b):
    return struct.pack(">I", len(b)) + b


def gen_pem_openssh(rng):
    seed = rng.randbytes(32)
    pk = ed25519_pub(seed)
    comment = f"{rng.choice(USERS)}@{rng.choice(HOSTS)}".encode()
    pub = _ssh_str(b"ssh-ed25519") + _ssh_str(pk)
    check = rng.getrandbits(32)
    priv = struct.pack(">II", check, check) + _ssh_str(b"ssh-ed25519") + _ssh_str(pk) + _ssh_str(seed + pk)
    priv += _ssh_str(comment)
    i = 1
    while len(priv) % 8:
        priv += bytes([i])
        i += 1
    blob = b"openssh-key-v1\0" + _ssh_str(b"none") + _ssh_str(b"none") + _ssh_str(b"") + struct.pack(">I", 1)
    blob += _ssh_str(pub) + _ssh_str(priv)
    return pem("OPENSSH PRIVATE KEY", blob, 70)


def _crc24(data):
    crc = 0xB704CE
    for byte in data:
        crc ^= byte << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
    return crc & 0xFFFFFF


def _pgp_packet(tag, body):
    n = len(body)
    if n < 192:
        ln = bytes([n])
    elif n < 8384:
        n -= 192
        ln = bytes([(n >> 8) + 192, n & 0xFF])
    else:
        ln = b"\xff" + struct.pack(">I", n)
    return bytes([0xC0 | tag]) + ln + body


def gen_pgp(rng):
    seed = rng.randbytes(32)
    pk = ed25519_pub(seed)
    ts = struct.pack(">I", 1600000000 + rng.randrange(150000000))
    oid = bytes.fromhex("2b06010401da470f01")
    pub = b"\x04" + ts + b"\x16" + bytes([len(oid)]) + oid + struct.pack(">H", 263) + b"\x40" + pk
    sec_mpi = struct.pack(">H", 256) + seed
    secret = pub + b"\x00" + sec_mpi + struct.pack(">H", sum(sec_mpi) & 0xFFFF)
    uid = f"{rng.choice(NAMES).title()} {rng.choice(SURNAMES).title()} <{rng.choice(USERS)}@{rng.choice(MAIL_DOMAINS)}>"
    sig = b"\x04\x13\x16\x0a" + rng.randbytes(rng.randrange(110, 140))
    sub = b"\x04" + ts + b"\x12" + rng.randbytes(60)
    data = _pgp_packet(5, secret) + _pgp_packet(13, uid.encode()) + _pgp_packet(2, sig) + _pgp_packet(7, sub)
    data += _pgp_packet(2, b"\x04\x18\x16\x0a" + rng.randbytes(rng.randrange(100, 130)))
    body = base64.b64encode(data).decode()
    chk = base64.b64encode(_crc24(data).to_bytes(3, "big")).decode()
    return ["-----BEGIN PGP PRIVATE KEY BLOCK-----", ""] + wrap(body, 64) + ["=" + chk, "-----END PGP PRIVATE KEY BLOCK-----"]


def gen_public_pem(rng):
    """Hard negative: a public key or a certificate-looking block."""
    d, pub = ec_keypair(rng)
    if rng.random() < 0.6:
        spki = der_seq(der_seq(OID_ECPUB, OID_P256), der(0x03, b"\x00" + pub))
        return pem("PUBLIC KEY", spki)
    tbs = der_seq(der(0xA0, der_int(2)), der_int(rng.getrandbits(120)), der_seq(OID_ECPUB, OID_P256), rng.randbytes(300))
    return pem("CERTIFICATE", der_seq(tbs, der_seq(OID_ECPUB), der(0x03, b"\x00" + rng.randbytes(72))))


def gen_ssh_pub(rng):
    pk = ed25519_pub(rng.randbytes(32))
    blob = base64.b64encode(_ssh_str(b"ssh-ed25519") + _ssh_str(pk)).decode()
    return f"ssh-ed25519 {blob} {rng.choice(USERS)}@{rng.choice(HOSTS)}"


# bech32 (BIP-173) for age secret keys
_BECH = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def _bech_polymod(values):
    gen = [0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3]
    chk = 1
    for v in values:
        b = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            chk ^= gen[i] if (b >> i) & 1 else 0
    return chk


def bech32(hrp, data):
    acc, bits, out = 0, 0, []
    for byte in data:
        acc = (acc << 8) | byte
        bits += 8
        while bits >= 5:
            bits -= 5
            out.append((acc >> bits) & 31)
    if bits:
        out.append((acc << (5 - bits)) & 31)
    exp = [ord(x) >> 5 for x in hrp] + [0] + [ord(x) & 31 for x in hrp]
    pm = _bech_polymod(exp + out + [0] * 6) ^ 1
    chk = [(pm >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_BECH[v] for v in out + chk)


# --------------------------------------------------------------------------------------------------------------
# Vocabularies (low entropy, so filler never looks like a secret)
# --------------------------------------------------------------------------------------------------------------

NAMES = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "oscar",
         "peggy", "rupert", "sybil", "trent", "victor", "walter", "maria", "chen", "priya", "lukas", "sofia", "omar"]
SURNAMES = ["smith", "jones", "garcia", "miller", "davis", "martin", "lopez", "wilson", "anderson", "thomas",
            "moore", "jackson", "white", "harris", "clark", "lewis", "walker", "young", "king", "wright"]
USERS = ["deploy", "ci", "admin", "svc-api", "jenkins", "runner", "ops", "build", "app", "backup"]
HOSTS = ["build-01", "ci-runner", "prod-bastion", "laptop", "web-2", "worker-3", "db-primary", "k8s-node-4"]
MAIL_DOMAINS = ["gmail.com", "outlook.com", "yahoo.com", "proton.me", "acme-corp.com", "globex.io", "initech.net",
                "umbrella-health.org", "fastmail.fm", "hooli.dev"]
APPS = ["billing", "checkout", "inventory", "notifier", "gateway", "search", "ledger", "reports", "auth", "catalog",
        "shipping", "analytics", "scheduler", "mailer", "uploader", "profile"]
DOMAINS = ["acme-corp.com", "globex.io", "initech.net", "hooli.dev", "piedpiper.app", "vandelay.co", "wayne-ent.com"]
WORDS = ["alpha", "beta", "orders", "users", "events", "cache", "queue", "metrics", "assets", "reports", "sessions"]
REGIONS = ["us-east-1", "eu-west-1", "eu-central-1", "ap-southeast-2", "us-west-2"]
LEVELS = ["info", "warn", "debug", "error"]
ENVS = ["production", "staging", "dev", "qa"]


def fill(rng, tmpl):
    def rep(m):
        k = m.group(1)
        if k == "port":
            return str(rng.choice([80, 443, 3000, 5000, 5432, 6379, 8000, 8080, 8443, 9000, 9090]))
        if k == "n":
            return str(rng.choice([5, 10, 30, 60, 100, 120, 250, 300, 500, 1000, 3600]))
        if k == "small":
            return str(rng.randrange(1, 16))
        if k == "app":
            return rng.choice(APPS)
        if k == "App":
            return rng.choice(APPS).title()
        if k == "domain":
            return rng.choice(DOMAINS)
        if k == "host":
            return rng.choice(["db", "redis", "localhost", "postgres", "cache", "mq"]) + rng.choice(["", ".internal", ".svc.cluster.local"])
        if k == "word":
            return rng.choice(WORDS)
        if k == "level":
            return rng.choice(LEVELS)
        if k == "env":
            return rng.choice(ENVS)
        if k == "region":
            return rng.choice(REGIONS)
        if k == "version":
            return f"{rng.randrange(0, 5)}.{rng.randrange(0, 20)}.{rng.randrange(0, 10)}"
        if k == "name":
            return rng.choice(NAMES)
        if k == "ip":
            return f"10.{rng.randrange(0, 255)}.{rng.randrange(0, 255)}.{rng.randrange(1, 255)}"
        if k == "date":
            return f"2025-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"
        if k == "time":
            return f"{rng.randrange(0, 24):02d}:{rng.randrange(0, 60):02d}:{rng.randrange(0, 60):02d}"
        if k == "ms":
            return str(rng.randrange(1, 900))
        if k == "status":
            return str(rng.choice([200, 200, 200, 201, 204, 301, 304, 400, 401, 403, 404, 500, 502]))
        if k == "method":
            return rng.choice(["GET", "GET", "GET", "POST", "PUT", "DELETE", "PATCH"])
        if k == "path":
            return "/" + "/".join(rng.choice(["api", "v1", "v2", "users", "orders", "items", "health", "static",
                                              "search", "cart", "login", "admin"]) for _ in range(rng.randrange(1, 4)))
        return m.group(0)

    return re.sub(r"@@(\w+)@@", rep, tmpl)


# --------------------------------------------------------------------------------------------------------------
# Secret kinds (true positives)
# --------------------------------------------------------------------------------------------------------------


class Kind:
    def __init__(self, name, family, gen, keys, pii=False, shape="token", types=None):
        self.name, self.family, self.gen, self.keys = name, family, gen, keys
        self.pii, self.shape, self.types = pii, shape, types


def _jwt(rng):
    hdr = b64u(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    iat = 1700000000 + rng.randrange(60000000)
    claims = {"sub": str(rng.randrange(10**6, 10**9)), "name": f"{rng.choice(NAMES).title()} {rng.choice(SURNAMES).title()}",
              "role": rng.choice(["admin", "user", "service", "editor"]), "iat": iat, "exp": iat + rng.choice([3600, 86400, 604800])}
    if rng.random() < 0.5:
        claims["iss"] = f"https://auth.{rng.choice(DOMAINS)}"
    body = b64u(json.dumps(claims, separators=(",", ":")).encode())
    sig = b64u(hmac.new(rng.randbytes(32), f"{hdr}.{body}".encode(), hashlib.sha256).digest())
    return f"{hdr}.{body}.{sig}"


def _pw(rng, lo=16, hi=24):
    alpha = ALNUM + "!#%&*+-.:=?@^_~"
    while True:
        s = rs(rng, alpha, rng.randrange(lo, hi + 1))
        if sum(c.isdigit() for c in s) >= 2 and any(c.isupper() for c in s) and any(c.islower() for c in s):
            return s


def _uri_pw(rng):
    return rs(rng, ALNUM + "-_.~", rng.randrange(14, 25))


def _sentry(rng):
    payload = {"iat": round(1700000000 + rng.random() * 6e7, 6), "url": "https://sentry.io",
               "region_url": rng.choice(["https://us.sentry.io", "https://de.sentry.io"]), "org": rng.choice(APPS)}
    enc = base64.b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()
    return f"sntrys_{enc}_{rs(rng, B64STD, 43)}"


def _pypi(rng):
    ident = rs(rng, HEXL, 8) + "-" + rs(rng, HEXL, 4) + "-" + rs(rng, HEXL, 4) + "-" + rs(rng, HEXL, 4) + "-" + rs(rng, HEXL, 12)
    caveat = json.dumps({"version": 1, "permissions": rng.choice(["user", {"projects": [rng.choice(APPS)]}])}).encode()
    data = b"\x02\x01\x08pypi.org\x02" + bytes([len(ident)]) + ident.encode() + b"\x00\x02" + bytes([len(caveat)])
    data += caveat + b"\x00\x00\x06\x20" + rng.randbytes(32)
    return "pypi-" + b64u(data)


def _luhn_digit(digits):
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_ok(num):
    digits = re.sub(r"\D", "", num)
    return _luhn_digit(digits[:-1]) == digits[-1]


def _card(rng, good=True):
    brand = rng.choice(["visa", "visa", "mc", "amex", "discover"])
    if brand == "visa":
        pre, n = "4" + rs(rng, string.digits, 5), 16
    elif brand == "mc":
        pre, n = str(rng.randrange(51, 56)) + rs(rng, string.digits, 4), 16
    elif brand == "amex":
        pre, n = rng.choice(["34", "37"]) + rs(rng, string.digits, 4), 15
    else:
        pre, n = "6011" + rs(rng, string.digits, 2), 16
    body = pre + rs(rng, string.digits, n - len(pre) - 1)
    chk = _luhn_digit(body)
    if not good:
        chk = str((int(chk) + rng.randrange(1, 10)) % 10)
    num = body + chk
    style = rng.randrange(3)
    if style == 0:
        return num
    sep = " " if style == 1 else "-"
    groups = [num[0:4], num[4:10], num[10:]] if n == 15 else wrap(num, 4)
    return sep.join(groups)


IBAN_FORMATS = {"DE": (18, string.digits), "GB": None, "FR": None, "NL": None, "ES": (20, string.digits), "IT": None}


def _iban(rng, good=True):
    cc = rng.choice(["DE", "GB", "FR", "NL", "ES", "IT"])
    if cc == "DE":
        bban = rs(rng, string.digits, 18)
    elif cc == "GB":
        bban = rs(rng, string.ascii_uppercase, 4) + rs(rng, string.digits, 14)
    elif cc == "FR":
        bban = rs(rng, string.digits, 23)
    elif cc == "NL":
        bban = rs(rng, string.ascii_uppercase, 4) + rs(rng, string.digits, 10)
    elif cc == "ES":
        bban = rs(rng, string.digits, 20)
    else:
        bban = rng.choice(string.ascii_uppercase) + rs(rng, string.digits, 10) + rs(rng, string.digits, 12)
    num = int("".join(str(int(c, 36)) for c in bban + cc + "00"))
    chk = 98 - num % 97
    if not good:
        chk = (chk + rng.randrange(1, 90)) % 97 + 2
        if chk == 98 - num % 97:
            chk = chk % 96 + 2
    iban = f"{cc}{chk:02d}{bban}"
    if rng.random() < 0.4:
        iban = " ".join(wrap(iban, 4))
    return iban


def iban_ok(s):
    s = s.replace(" ", "")
    return int("".join(str(int(c, 36)) for c in s[4:] + s[:4])) % 97 == 1


def _ssn(rng, good=True):
    if good:
        area = rng.choice([rng.randrange(1, 666), rng.randrange(667, 900)])
        return f"{area:03d}-{rng.randrange(1, 100):02d}-{rng.randrange(1, 10000):04d}"
    area = rng.choice([0, 666, rng.randrange(900, 1000)])
    return f"{area:03d}-{rng.randrange(0, 100):02d}-{rng.randrange(0, 10000):04d}"


def _email(rng):
    first, last = rng.choice(NAMES), rng.choice(SURNAMES)
    local = rng.choice([f"{first}.{last}", f"{first}{last[0]}", f"{first[0]}{last}", f"{first}_{last}{rng.randrange(1, 99)}"])
    return f"{local}@{rng.choice(MAIL_DOMAINS)}"


def _stripe(rng, pre):
    if rng.random() < 0.5:
        return pre + rs(rng, ALNUM, 24)
    return pre + "51" + rs(rng, ALNUM, 97)


def _vault(rng):
    if rng.random() < 0.3:
        return "hvs." + rs(rng, ALNUM, 24)
    return "hvs.CAESI" + rs(rng, B64URL, 86)


def _aws_pair(rng):
    return [rng.choice(["AKIA", "ASIA"]) + rs(rng, AWS_B32, 16), rs(rng, ALNUM + "/+", 40)]


SECRET_KINDS = [
    Kind("aws-access-key", "aws", _aws_pair, [("aws_access_key_id", "aws_secret_access_key"),
                                              ("aws_access_key", "aws_secret_key"),
                                              ("access_key_id", "secret_access_key"),
                                              ("aws_key_id", "aws_secret")], shape="pair"),
    Kind("github-pat-classic", "github", lambda r: crc_token(r, "ghp_"), ["github_token", "gh_token", "github_pat", "github_access_token", "gh_auth_token", "git_token"]),
    Kind("github-oauth", "github", lambda r: crc_token(r, "gho_"), ["github_oauth_token", "gh_oauth", "oauth_token", "github_user_token"]),
    Kind("github-user-to-server", "github", lambda r: crc_token(r, "ghu_"), ["github_app_user_token", "gh_user_token", "ghu_token", "user_access_token"]),
    Kind("github-server-to-server", "github", lambda r: crc_token(r, "ghs_"), ["github_installation_token", "gh_app_token", "installation_token", "github_app_token"]),
    Kind("github-refresh", "github", lambda r: crc_token(r, "ghr_"), ["github_refresh_token", "gh_refresh", "refresh_token", "gh_app_refresh_token"]),
    Kind("github-pat-fine-grained", "github", lambda r: "github_pat_11" + rs(r, UPNUM, 20) + "_" + rs(r, ALNUM, 59), ["github_token", "gh_pat", "github_pat", "gh_fine_grained_token"]),
    Kind("gitlab-pat", "gitlab", lambda r: "glpat-" + rs(r, B64URL, 20), ["gitlab_token", "gitlab_pat", "ci_job_token_override", "gl_token"]),
    Kind("slack-bot-token", "slack", lambda r: f"xoxb-{rs(r, string.digits, r.randrange(10, 14))}-{rs(r, string.digits, r.randrange(10, 14))}-{rs(r, ALNUM, 24)}", ["slack_bot_token", "slack_token", "bot_token", "slack_api_token"]),
    Kind("slack-user-token", "slack", lambda r: f"xoxp-{rs(r, string.digits, 12)}-{rs(r, string.digits, 12)}-{rs(r, string.digits, 13)}-{rs(r, HEXL, 32)}", ["slack_user_token", "slack_oauth_token", "slack_legacy_token", "slack_admin_token"]),
    Kind("slack-app-token", "slack", lambda r: f"xapp-1-A{rs(r, UPNUM, 10)}-{rs(r, string.digits, 13)}-{rs(r, HEXL, 64)}", ["slack_app_token", "socket_mode_token", "slack_app_level_token", "slack_socket_token"]),
    Kind("slack-webhook", "slack", lambda r: f"https://hooks.slack.com/services/T{rs(r, UPNUM, r.randrange(8, 11))}/B{rs(r, UPNUM, r.randrange(8, 11))}/{rs(r, ALNUM, 24)}", ["slack_webhook_url", "slack_webhook", "alert_webhook", "notify_webhook_url"]),
    Kind("stripe-secret-key", "stripe", lambda r: _stripe(r, "sk_live_"), ["stripe_secret_key", "stripe_api_key", "stripe_key", "stripe_sk"]),
    Kind("stripe-restricted-key", "stripe", lambda r: _stripe(r, "rk_live_"), ["stripe_restricted_key", "stripe_rk", "stripe_reporting_key", "stripe_readonly_key"]),
    Kind("stripe-webhook-secret", "stripe", lambda r: "whsec_" + rs(r, ALNUM, 32), ["stripe_webhook_secret", "webhook_signing_secret", "stripe_endpoint_secret", "stripe_whsec"]),
    Kind("openai-project-key", "openai", lambda r: f"sk-{r.choice(['proj', 'proj', 'svcacct'])}-" + rs(r, B64URL, 74) + "T3BlbkFJ" + rs(r, B64URL, 74), ["openai_api_key", "openai_key", "llm_api_key", "gpt_api_key"]),
    Kind("openai-legacy-key", "openai", lambda r: "sk-" + rs(r, ALNUM, 20) + "T3BlbkFJ" + rs(r, ALNUM, 20), ["openai_api_key", "openai_secret", "openai_token", "chatgpt_key"]),
    Kind("anthropic-api-key", "anthropic", lambda r: "sk-ant-api03-" + rs(r, B64URL, 93) + "AA", ["anthropic_api_key", "claude_api_key", "anthropic_key", "llm_anthropic_key"]),
    Kind("google-api-key", "google", lambda r: "AIza" + rs(r, B64URL, 35), ["google_api_key", "gcp_api_key", "maps_api_key", "youtube_api_key"]),
    Kind("huggingface-token", "huggingface", lambda r: "hf_" + rs(r, string.ascii_letters, 34), ["hf_token", "huggingface_token", "hugging_face_hub_token", "hf_api_token"]),
    Kind("replicate-token", "replicate", lambda r: "r8_" + rs(r, ALNUM, 37), ["replicate_api_token", "replicate_token", "replicate_key", "r8_token"]),
    Kind("groq-api-key", "groq", lambda r: "gsk_" + rs(r, ALNUM, 52), ["groq_api_key", "groq_key", "groq_token", "groq_secret"]),
    Kind("npm-token", "npm", lambda r: crc_token(r, "npm_"), ["npm_token", "npm_auth_token", "node_auth_token", "npm_publish_token"]),
    Kind("pypi-token", "pypi", _pypi, ["pypi_token", "twine_password", "pypi_api_token", "poetry_pypi_token_pypi"]),
    Kind("sendgrid-api-key", "sendgrid", lambda r: "SG." + rs(r, B64URL, 22) + "." + rs(r, B64URL, 43), ["sendgrid_api_key", "sendgrid_key", "smtp_api_key", "email_api_key"]),
    Kind("twilio-api-key", "twilio", lambda r: "SK" + rs(r, HEXL, 32), ["twilio_api_key", "twilio_key_sid", "twilio_api_sid", "twilio_sk"]),
    Kind("telegram-bot-token", "telegram", lambda r: f"{r.randrange(10**8, 10**10)}:AA" + rs(r, B64URL, 33), ["telegram_bot_token", "tg_bot_token", "telegram_token", "bot_api_token"]),
    Kind("discord-webhook", "discord", lambda r: f"https://discord.com/api/webhooks/{r.randrange(10**17, 10**19)}/" + rs(r, B64URL, 68), ["discord_webhook_url", "discord_webhook", "alerts_discord_hook", "discord_notify_url"]),
    Kind("shopify-access-token", "shopify", lambda r: "shpat_" + rs(r, HEXL, 32), ["shopify_access_token", "shopify_admin_token", "shopify_api_token", "shopify_token"]),
    Kind("digitalocean-pat", "digitalocean", lambda r: "dop_v1_" + rs(r, HEXL, 64), ["digitalocean_token", "do_token", "digitalocean_access_token", "doctl_token"]),
    Kind("doppler-token", "doppler", lambda r: "dp.pt." + rs(r, ALNUM, 43), ["doppler_token", "doppler_service_token", "doppler_pat", "doppler_api_token"]),
    Kind("vault-token", "vault", _vault, ["vault_token", "vault_root_token", "hcp_vault_token", "vault_auth_token"]),
    Kind("terraform-cloud-token", "terraform", lambda r: rs(r, LOWNUM, 14) + ".atlasv1." + rs(r, ALNUM + "-_", r.randrange(60, 71)), ["tfe_token", "terraform_cloud_token", "tf_token_app_terraform_io", "atlas_token"]),
    Kind("databricks-token", "databricks", lambda r: "dapi" + rs(r, HEXL, 32) + r.choice(["", "", "-2", "-3"]), ["databricks_token", "databricks_pat", "dbx_token", "databricks_api_token"]),
    Kind("sentry-org-token", "sentry", _sentry, ["sentry_auth_token", "sentry_token", "sentry_org_token", "sentry_cli_token"]),
    Kind("grafana-service-account-token", "grafana", lambda r: "glsa_" + rs(r, ALNUM, 32) + "_" + rs(r, HEXL, 8), ["grafana_token", "grafana_sa_token", "grafana_api_key", "grafana_service_account_token"]),
    Kind("postman-api-key", "postman", lambda r: "PMAK-" + rs(r, HEXL, 24) + "-" + rs(r, HEXL, 34), ["postman_api_key", "postman_key", "pmak", "postman_token"]),
    Kind("linear-api-key", "linear", lambda r: "lin_api_" + rs(r, ALNUM, 40), ["linear_api_key", "linear_token", "linear_key", "linear_api_token"]),
    Kind("dockerhub-pat", "dockerhub", lambda r: "dckr_pat_" + rs(r, B64URL, 27), ["docker_hub_token", "dockerhub_token", "docker_password", "registry_token"]),
    Kind("age-secret-key", "age", lambda r: bech32("age-secret-key-", r.randbytes(32)).upper(), ["age_secret_key", "sops_age_key", "age_key", "age_identity"]),
    Kind("pem-rsa", "private-key", gen_pem_rsa, ["private_key", "rsa_private_key", "tls_key", "signing_key"], shape="pem"),
    Kind("pem-ec", "private-key", gen_pem_ec, ["ec_private_key", "jwt_signing_key", "server_key", "es256_key"], shape="pem"),
    Kind("pem-pkcs8", "private-key", gen_pem_pkcs8, ["private_key", "service_key", "tls_private_key", "app_key"], shape="pem"),
    Kind("pem-openssh", "private-key", gen_pem_openssh, ["ssh_private_key", "deploy_key", "ssh_key", "git_ssh_key"], shape="pem"),
    Kind("pgp-private-key", "private-key", gen_pgp, ["gpg_private_key", "pgp_key", "signing_gpg_key", "gpg_key"], shape="pem"),
    Kind("gcp-service-account", "gcp", lambda r: pkcs8_rsa(r), [], shape="gcpsa", types=["gcpsa"]),
    Kind("jwt", "jwt", _jwt, ["jwt", "access_token", "auth_token", "id_token", "bearer_token", "session_token"]),
    Kind("postgres-uri", "database", lambda r: f"{r.choice(['postgres', 'postgresql'])}://{r.choice(APPS)}_{r.choice(['user', 'rw', 'app'])}:{_uri_pw(r)}@{r.choice(['db', 'pg-primary', 'postgres.internal', 'rds-' + r.choice(APPS) + '.cluster.eu-west-1.rds.amazonaws.com'])}:5432/{r.choice(APPS)}", ["database_url", "postgres_url", "db_dsn", "sqlalchemy_database_uri"]),
    Kind("mongodb-uri", "database", lambda r: f"mongodb+srv://{r.choice(APPS)}:{_uri_pw(r)}@cluster{r.randrange(0, 9)}.{rs(r, LOWNUM, 5)}.mongodb.net/{r.choice(APPS)}?retryWrites=true&w=majority", ["mongodb_uri", "mongo_url", "mongo_dsn", "mongo_connection_string"]),
    Kind("redis-uri", "database", lambda r: f"{r.choice(['redis', 'rediss'])}://:{_uri_pw(r)}@{r.choice(['redis', 'cache.internal', 'redis-master'])}:6379/{r.randrange(0, 4)}", ["redis_url", "cache_url", "celery_broker_url", "redis_dsn"]),
    Kind("mysql-uri", "database", lambda r: f"mysql://{r.choice(['root', 'admin', r.choice(APPS)])}:{_uri_pw(r)}@{r.choice(['mysql', 'db', 'mariadb.internal'])}:3306/{r.choice(APPS)}", ["mysql_url", "database_url", "mysql_dsn", "jdbc_url_override"]),
    Kind("generic-password", "generic", _pw, ["password", "db_password", "admin_password", "smtp_password", "redis_password", "postgres_password", "mysql_root_password", "ldap_bind_password"]),
    Kind("generic-client-secret", "generic", lambda r: rs(r, ALNUM + "-_~.", r.randrange(32, 41)), ["client_secret", "oauth_client_secret", "app_secret", "consumer_secret", "azure_client_secret", "auth0_client_secret"]),
    Kind("generic-api-key", "generic", lambda r: rs(r, r.choice([ALNUM, HEXL]), r.choice([32, 40])), ["api_key", "apikey", "x_api_key", "service_api_key", "partner_api_key", "internal_api_key"]),
    Kind("azure-storage-connection-string", "azure", lambda r: f"DefaultEndpointsProtocol=https;AccountName={r.choice(APPS)}{r.choice(['store', 'data', 'blobs'])}{r.randrange(10, 99)};AccountKey={base64.b64encode(r.randbytes(64)).decode()};EndpointSuffix=core.windows.net", ["azure_storage_connection_string", "storage_connection_string", "azure_blob_conn", "azurewebjobsstorage"]),
    Kind("credit-card", "pii-card", _card, ["card_number", "cc_number", "pan", "customer_card", "payment_card"], pii=True),
    Kind("iban", "pii-iban", _iban, ["iban", "payout_iban", "bank_account", "customer_iban"], pii=True),
    Kind("email", "pii-email", _email, ["email", "contact_email", "customer_email", "user_email", "reply_to", "owner_email"], pii=True),
    Kind("us-ssn", "pii-ssn", _ssn, ["ssn", "social_security_number", "tax_id", "employee_ssn"], pii=True),
]

KIND_BY_NAME = {k.name: k for k in SECRET_KINDS}

# --------------------------------------------------------------------------------------------------------------
# Hard negatives (look like secrets to a naive scanner, are not)
# --------------------------------------------------------------------------------------------------------------

SECRET_KEYS = sorted({k for kind in SECRET_KINDS if not kind.pii and kind.shape == "token" for k in kind.keys})

PLACEHOLDERS = ["your-api-key-here", "your_token_here", "xxxxxxxxxxxxxxxxxxxxxxxx", "********", "<TOKEN>", "<API_KEY>",
                "changeme", "change-me", "REPLACE_ME", "INSERT_KEY_HERE", "<your-secret-here>", "<redacted>",
                "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "sk_live_XXXXXXXXXXXXXXXXXXXXXXXX", "sk-...",
                "xoxb-your-bot-token", "TODO", "dummy", "AKIAXXXXXXXXXXXXXXXX", "hf_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
                "<password>", "secret", "sk-your-openai-key", "EXAMPLE_TOKEN_VALUE"]
TEMPLATE_REFS = ["${API_KEY}", "{{ .Values.apiKey }}", "${{ secrets.DEPLOY_TOKEN }}", "${DB_PASSWORD}",
                 "{{ vault \"secret/data/app\" }}", "$(cat /run/secrets/db_password)", "${{ secrets.NPM_TOKEN }}",
                 "%(password)s", "{{ env \"GITHUB_TOKEN\" }}", "${var.db_password}", "{{ secret_key }}", "$SECRET_KEY"]
AWS_EXAMPLES = [("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
                ("AKIAI44QH8DHBEXAMPLE", "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY")]


class NegKind:
    def __init__(self, name, gen, keys, shape="token", types=None):
        self.name, self.gen, self.keys, self.shape, self.types = name, gen, keys, shape, types


def _png_b64(rng):
    w = h = rng.choice([8, 12, 16])
    raw = b"".join(b"\x00" + rng.randbytes(w * 3) for _ in range(h))

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    return "data:image/png;base64," + base64.b64encode(png).decode()


def _env_ref(rng, split):
    var = rng.choice(pick_half(["STRIPE_SECRET_KEY", "GITHUB_TOKEN", "OPENAI_API_KEY", "DB_PASSWORD", "AWS_SECRET_ACCESS_KEY",
                                "SLACK_BOT_TOKEN", "SENDGRID_API_KEY", "API_KEY", "CLIENT_SECRET", "JWT_SECRET"], split))
    return {"py": rng.choice([f'os.environ["{var}"]', f'os.getenv("{var}")', f'os.environ.get("{var}", "")']),
            "js": rng.choice([f"process.env.{var}", f'process.env["{var}"]']),
            "go": f'os.Getenv("{var}")', "rs": f'std::env::var("{var}").unwrap_or_default()',
            "sh": f'"${{{var}}}"', "tf": f"var.{var.lower()}", "": f"${{{var}}}"}


def _db_nopass(rng):
    app = rng.choice(APPS)
    return rng.choice([f"postgres://{app}@db:5432/{app}", f"postgresql://{app}:${{DB_PASSWORD}}@db:5432/{app}",
                       "redis://localhost:6379/0", f"mongodb://mongo:27017/{app}_test", f"mysql://root:@localhost:3306/{app}",
                       f"postgres://user:password@localhost:5432/{app}", "postgres://postgres:postgres@localhost:5432/postgres",
                       f"redis://:{{{{ .Values.redisPassword }}}}@redis:6379/0", f"postgres://user:pass@localhost/{app}_dev"])


def _keyword_only(rng):
    return rng.choice([("password_min_length", "12"), ("password", "Password"), ("token_type", "bearer"),
                       ("secret_name", f"{rng.choice(APPS)}-credentials"), ("api_key_header", "X-API-Key"),
                       ("password_reset_url", "/accounts/password/reset/"), ("token_expiry_seconds", "3600"),
                       ("auth_token_field", "auth_token"), ("secret_key_base_env", "SECRET_KEY_BASE"),
                       ("api_key_prefix", "Bearer"), ("password_hash_algorithm", "argon2id"),
                       ("credentials_file", "/etc/app/credentials.json")])


def _empty_pw(rng):
    return rng.choice(["", "null", "None", "~", "''"])


NEG_KINDS = [
    NegKind("placeholder", lambda r, s: r.choice(pick_half(PLACEHOLDERS, s)), "secret"),
    NegKind("template-reference", lambda r, s: r.choice(pick_half(TEMPLATE_REFS, s)), "secret"),
    NegKind("env-reference", _env_ref, "secret", shape="raw"),
    NegKind("aws-docs-example", lambda r, s: list(r.choice(AWS_EXAMPLES)), "aws", shape="pair"),
    NegKind("github-bad-checksum", lambda r, s: crc_token(r, r.choice(["ghp_", "gho_", "ghs_", "ghu_"]), good=False), ["github_token", "gh_token", "github_pat", "gh_auth_token"]),
    NegKind("npm-bad-checksum", lambda r, s: crc_token(r, "npm_", good=False), ["npm_token", "npm_auth_token", "node_auth_token", "npm_publish_token"]),
    NegKind("sha1-digest", lambda r, s: hashlib.sha1(r.randbytes(16)).hexdigest(), ["sha1", "checksum", "file_sha1", "etag", "digest", "content_hash"]),
    NegKind("sha256-digest", lambda r, s: hashlib.sha256(r.randbytes(16)).hexdigest(), ["sha256", "checksum", "sha256sum", "artifact_digest", "expected_hash", "content_sha256"]),
    NegKind("git-commit-sha", lambda r, s: hashlib.sha1(r.randbytes(20)).hexdigest(), ["commit", "rev", "revision", "git_sha", "source_commit", "base_ref_sha"]),
    NegKind("uuid", lambda r, s: "%08x-%04x-4%03x-%04x-%012x" % (r.getrandbits(32), r.getrandbits(16), r.getrandbits(12), 0x8000 | r.getrandbits(14), r.getrandbits(48)), ["request_id", "tenant_id", "client_id", "subscription_id", "correlation_id", "workspace_id"]),
    NegKind("base64-image", lambda r, s: _png_b64(r), ["logo", "icon", "favicon", "placeholder_image", "avatar_default", "spinner"]),
    NegKind("integrity-hash", lambda r, s: "sha512-" + base64.b64encode(r.randbytes(64)).decode(), [], types=["pkglock", "md"]),
    NegKind("go-sum-hash", lambda r, s: "h1:" + base64.b64encode(r.randbytes(32)).decode(), [], types=["gosum"]),
    NegKind("docker-digest", lambda r, s: "sha256:" + hashlib.sha256(r.randbytes(8)).hexdigest(), ["image_digest", "base_image_digest", "digest", "pinned_digest"]),
    NegKind("random-identifier", lambda r, s: rs(r, ALNUM, r.choice([16, 20, 24, 32])), ["cache_key", "element_id", "build_id", "idempotency_key", "session_cookie_name_suffix", "widget_key", "public_key_id", "object_key"]),
    NegKind("luhn-invalid-number", lambda r, s: _card(r, good=False), ["order_number", "tracking_number", "card_number", "invoice_ref", "loyalty_card", "test_card"]),
    NegKind("iban-invalid-checksum", lambda r, s: _iban(r, good=False), ["iban", "reference_iban", "payout_iban", "sample_iban"]),
    NegKind("ssn-invalid", lambda r, s: _ssn(r, good=False), ["ssn", "test_ssn", "placeholder_ssn", "ssn_example"]),
    NegKind("email-lookalike", lambda r, s: r.choice([f"git@github.com:{r.choice(APPS)}/{r.choice(APPS)}.git", f"logo@{r.choice([2, 3])}x.png",
                                                      f"lodash@4.17.{r.randrange(10, 22)}", f"@types/node@20.{r.randrange(1, 12)}.{r.randrange(0, 9)}",
                                                      f"{r.choice(APPS)}@{r.choice(HOSTS)}", f"icon-{r.choice(WORDS)}@2x.webp"]), ["repository", "asset", "dependency", "remote", "source", "image"]),
    NegKind("public-key-block", lambda r, s: gen_public_pem(r), ["public_key", "ca_cert", "tls_cert", "jwt_public_key"], shape="pem"),
    NegKind("ssh-public-key", lambda r, s: gen_ssh_pub(r), ["ssh_public_key", "authorized_key", "deploy_pubkey", "ssh_authorized_keys"]),
    NegKind("stripe-publishable-key", lambda r, s: "pk_live_" + rs(r, ALNUM, r.choice([24, 99])), ["stripe_publishable_key", "stripe_pk", "publishable_key", "stripe_public_key"]),
    NegKind("sentry-dsn", lambda r, s: f"https://{rs(r, HEXL, 32)}@o{r.randrange(10**5, 10**6)}.ingest.sentry.io/{r.randrange(10**6, 10**7)}", ["sentry_dsn", "dsn", "sentry_public_dsn", "raven_dsn"]),
    NegKind("db-uri-without-secret", lambda r, s: _db_nopass(r), ["database_url", "db_url", "redis_url", "test_database_url"]),
    NegKind("empty-password", lambda r, s: _empty_pw(r), ["password", "db_password", "admin_password", "smtp_password"]),
    NegKind("keyword-without-secret", lambda r, s: _keyword_only(r), [], shape="kw"),
]

# --------------------------------------------------------------------------------------------------------------
# File styles: filler flavours (dev and test use different ones), file names, and how an entry is written
# --------------------------------------------------------------------------------------------------------------


def case(key, how):
    parts = key.split("_")
    if how == "upper":
        return key.upper()
    if how == "camel":
        return parts[0] + "".join(p.title() for p in parts[1:])
    if how == "pascal":
        return "".join(p.title() for p in parts)
    if how == "kebab":
        return key.replace("_", "-")
    return key


GENERAL = ["env", "yaml", "json", "py", "js", "go", "rs", "sh", "gha", "gitlabci", "compose", "k8s", "tf", "log", "ini", "toml", "md"]
MULTILINE_OK = ["pem", "pem", "pem", "yaml", "k8s", "py", "js", "go", "rs", "sh", "tf", "env", "json", "md", "gha", "toml", "log"]

FILENAMES = {
    "env": ([".env", ".env.production", "config/.env.local"], [".env.staging", "deploy/app.env", ".env.prod"]),
    "yaml": (["config/settings.yaml", "config/application.yml"], ["conf/app-config.yaml", "settings/prod.yml"]),
    "json": (["config/default.json", "appsettings.json"], ["config/production.json", "settings.json"]),
    "py": (["settings.py", "app/config.py", "scripts/sync_data.py"], ["src/service/settings.py", "tools/backfill.py", "conf.py"]),
    "js": (["config.js", "src/client.ts"], ["src/config/index.js", "lib/api.mjs", "server.ts"]),
    "go": (["main.go", "internal/config/config.go"], ["cmd/server/main.go", "pkg/client/client.go"]),
    "rs": (["src/config.rs", "src/main.rs"], ["src/settings.rs", "examples/client.rs"]),
    "sh": (["deploy.sh", "scripts/bootstrap.sh"], ["bin/release.sh", "ops/rotate.sh"]),
    "gha": ([".github/workflows/deploy.yml", ".github/workflows/ci.yml"], [".github/workflows/release.yaml", ".github/workflows/nightly.yml"]),
    "gitlabci": ([".gitlab-ci.yml"], [".gitlab-ci.yaml"]),
    "compose": (["docker-compose.yml", "compose.yaml"], ["docker-compose.prod.yml", "deploy/docker-compose.yaml"]),
    "k8s": (["k8s/secret.yaml", "manifests/app-secrets.yaml"], ["deploy/k8s/secrets.yml", "helm/templates/secret-values.yaml"]),
    "tf": (["main.tf", "infra/providers.tf"], ["terraform/main.tf", "modules/app/variables.auto.tfvars"]),
    "log": (["logs/app.log", "logs/worker.log"], ["var/log/service.log", "logs/debug-2025-03.log"]),
    "ini": (["config.ini", "setup.cfg"], ["conf/app.properties", "application.properties"]),
    "toml": (["config.toml", "settings.toml"], ["conf/app.toml", "deploy.toml"]),
    "md": (["README.md", "docs/setup.md"], ["docs/deploy.md", "CONTRIBUTING.md"]),
    "pem": (["certs/server.key", "id_rsa", "keys/signing.pem"], ["ssl/private.key", "deploy_key", "secrets/tls.key"]),
    "gcpsa": (["credentials/service-account.json", "gcp-key.json"], ["secrets/gcp-sa.json", "keys/sa-credentials.json"]),
    "pkglock": (["package-lock.json"], ["web/package-lock.json"]),
    "gosum": (["go.sum"], ["tools/go.sum"]),
}

# filler: blocks of whole statements (may contain \n), per flavour. Index 0 = dev, 1 = test.
FILLER = {
    "env": (["NODE_ENV=production", "PORT=@@port@@", "LOG_LEVEL=@@level@@", "APP_NAME=@@app@@", "# --- @@word@@ ---",
             "ENABLE_METRICS=true", "CACHE_TTL_SECONDS=@@n@@", "DB_HOST=@@host@@", "DB_PORT=5432", "TZ=UTC",
             "FEATURE_@@word@@=false", "WORKERS=@@small@@"],
            ["RAILS_ENV=production", "WEB_CONCURRENCY=@@small@@", "RAILS_LOG_TO_STDOUT=1", "# @@word@@ settings",
             "MAX_THREADS=@@small@@", "SMTP_PORT=587", "ASSET_HOST=https://cdn.@@domain@@", "SIDEKIQ_CONCURRENCY=@@small@@",
             "TIMEZONE=Europe/Berlin", "REQUEST_TIMEOUT=@@n@@", "SERVICE_NAME=@@app@@", "REDIS_DB=@@small@@"]),
    "yaml": (["  name: @@app@@", "  port: @@port@@", "  log_level: @@level@@", "  # @@word@@ settings", "  workers: @@small@@",
              "  timeout_seconds: @@n@@", "  region: @@region@@", "  enable_tracing: true", "  base_url: https://@@app@@.@@domain@@"],
             ["  service: @@app@@", "  listen: 0.0.0.0:@@port@@", "  verbosity: @@level@@", "  retries: @@small@@",
              "  # see docs/@@word@@.md", "  cache_ttl: @@n@@s", "  zone: @@region@@a", "  metrics_path: /metrics",
              "  upstream: http://@@host@@:@@port@@"]),
    "py": (["import os", "from pathlib import Path", "BASE_DIR = Path(__file__).resolve().parent.parent", "DEBUG = False",
            'ALLOWED_HOSTS = ["@@app@@.@@domain@@"]', 'TIME_ZONE = "UTC"', "USE_TZ = True", 'STATIC_URL = "/static/"',
            "CONN_MAX_AGE = @@n@@", "# @@word@@ configuration",
            "def get_@@word@@(limit=@@n@@):\n    return list(range(limit))", 'LANGUAGE_CODE = "en-us"'],
           ["import logging", "from dataclasses import dataclass", "log = logging.getLogger(__name__)",
            "TIMEOUT = @@n@@", "MAX_RETRIES = @@small@@", 'REGION = "@@region@@"',
            "@dataclass\nclass @@App@@Settings:\n    host: str = \"@@host@@\"\n    port: int = @@port@@",
            "def main():\n    log.info(\"starting @@app@@\")\n    return 0", "# TODO: move to @@word@@ module",
            'SERVICE = "@@app@@"']),
    "js": (["'use strict';", "const path = require('path');", "const PORT = process.env.PORT || @@port@@;",
            "// @@word@@ settings", "const retries = @@small@@;", "module.exports.timeout = @@n@@;",
            "function health() {\n  return { ok: true };\n}", "const region = '@@region@@';"],
           ["import axios from 'axios';", "export const BASE_URL = 'https://api.@@domain@@';", "const MAX_ITEMS = @@n@@;",
            "/* @@app@@ client */", "export function sleep(ms) {\n  return new Promise((r) => setTimeout(r, ms));\n}",
            "let attempts = 0;", "export const SERVICE = '@@app@@';"]),
    "go": (["// @@word@@ configuration", "var defaultPort = @@port@@", "const maxRetries = @@small@@",
            "func health() bool {\n\treturn true\n}", "var region = \"@@region@@\"", "const serviceName = \"@@app@@\""],
           ["// Package client talks to the @@app@@ API.", "var timeoutSeconds = @@n@@", "const baseURL = \"https://api.@@domain@@\"",
            "type Options struct {\n\tRetries int\n\tVerbose bool\n}", "func newOptions() Options {\n\treturn Options{Retries: @@small@@}\n}"]),
    "rs": (["// @@word@@ settings", "const DEFAULT_PORT: u16 = @@port@@;", "const MAX_RETRIES: u32 = @@small@@;",
            "fn health() -> bool {\n    true\n}", "pub const REGION: &str = \"@@region@@\";", "#[allow(dead_code)]\nconst SERVICE: &str = \"@@app@@\";"],
           ["/// Client settings for @@app@@.", "pub const TIMEOUT_SECS: u64 = @@n@@;", "pub const BASE_URL: &str = \"https://api.@@domain@@\";",
            "#[derive(Debug, Default)]\npub struct Options {\n    pub retries: u32,\n}", "pub fn verbose() -> bool {\n    false\n}"]),
    "sh": (["set -x", "echo \"deploying @@app@@\"", "cd \"$(dirname \"$0\")/..\"", "REGION=@@region@@", "# @@word@@",
            "docker build -t @@app@@:latest .", "sleep @@small@@"],
           ["log() { printf '%s\\n' \"$*\" >&2; }", "log \"rotating @@app@@\"", "TARGET=${1:-@@env@@}", "retries=@@small@@",
            "kubectl -n @@env@@ rollout status deploy/@@app@@", "# see ops/@@word@@.md"]),
    "gha": (["      NODE_VERSION: \"20\"", "      APP: @@app@@", "      REGION: @@region@@", "      LOG_LEVEL: @@level@@"],
            ["      GO_VERSION: \"1.22\"", "      SERVICE: @@app@@", "      ENVIRONMENT: @@env@@", "      CACHE_TTL: \"@@n@@\""]),
    "gitlabci": (["  DOCKER_DRIVER: overlay2", "  APP_NAME: @@app@@", "  GIT_DEPTH: \"@@small@@\""],
                 ["  FF_USE_FASTZIP: \"true\"", "  SERVICE: @@app@@", "  DEPLOY_ENV: @@env@@"]),
    "compose": (["      - TZ=UTC", "      - PORT=@@port@@", "      - LOG_LEVEL=@@level@@", "      - APP_NAME=@@app@@"],
                ["      - WORKERS=@@small@@", "      - REGION=@@region@@", "      - SERVICE=@@app@@", "      - CACHE_TTL=@@n@@"]),
    "k8s": (["  LOG_LEVEL: @@level@@", "  APP_ENV: @@env@@", "  PORT: \"@@port@@\""],
            ["  REGION: @@region@@", "  SERVICE_NAME: @@app@@", "  WORKERS: \"@@small@@\""]),
    "tf": (["  tags = { Name = \"@@app@@\" }", "  instance_type = \"t3.micro\"", "  # @@word@@", "  count = @@small@@"],
           ["  region = \"@@region@@\"", "  name   = \"@@app@@-@@env@@\"", "  # managed by terraform", "  timeout = @@n@@"]),
    "log": (["@@date@@T@@time@@.@@ms@@Z INFO  [@@app@@] @@method@@ @@path@@ status=@@status@@ duration_ms=@@ms@@",
             "@@date@@T@@time@@.@@ms@@Z DEBUG [@@app@@] cache hit ratio=0.@@small@@",
             "@@date@@T@@time@@.@@ms@@Z WARN  [@@app@@] slow query on @@word@@ took @@ms@@ms"],
            ["@@date@@ @@time@@,@@ms@@ [worker-@@small@@] INFO  @@app@@.jobs - processed @@n@@ @@word@@",
             "@@date@@ @@time@@,@@ms@@ [worker-@@small@@] ERROR @@app@@.http - upstream @@host@@ returned @@status@@",
             "@@date@@ @@time@@,@@ms@@ [main] INFO  @@app@@.boot - listening on :@@port@@"]),
    "ini": (["[@@word@@]", "timeout = @@n@@", "host = @@host@@", "port = @@port@@", "; @@app@@ settings"],
            ["@@app@@.server.port=@@port@@", "@@app@@.log.level=@@level@@", "# @@word@@", "spring.main.banner-mode=off"]),
    "toml": (["timeout = @@n@@", "host = \"@@host@@\"", "# @@word@@", "workers = @@small@@"],
             ["region = \"@@region@@\"", "verbose = false", "# @@app@@ deploy settings", "retries = @@small@@"]),
    "md": (["## Configuration", "Set the variables below before running `make run`.", "The @@app@@ service listens on port @@port@@.",
            "See the [@@word@@ guide](docs/@@word@@.md) for details.", "- Requires Python 3.11 or newer"],
           ["### Deploying @@app@@", "1. Build the image with `docker build`.", "2. Push it to the registry for @@env@@.",
            "> Note: restart the @@word@@ worker after changing settings.", "Questions go to the #@@app@@ channel."]),
}

HEADERS = {
    "py": ("\"\"\"@@App@@ settings.\"\"\"", "#!/usr/bin/env python3\n\"\"\"@@app@@ maintenance script.\"\"\""),
    "js": ("// @@app@@ configuration", "// client for the @@app@@ service"),
    "go": ("package config", "package main\n\nimport (\n\t\"fmt\"\n\t\"os\"\n)"),
    "rs": ("//! @@App@@ configuration.", "//! Example client for @@app@@."),
    "sh": ("#!/usr/bin/env bash\nset -euo pipefail", "#!/bin/sh\nset -eu"),
    "yaml": ("app:", "service:"),
    "gha": ("name: deploy\non:\n  push:\n    branches: [main]\njobs:\n  deploy:\n    runs-on: ubuntu-latest\n    env:",
            "name: release\non:\n  workflow_dispatch: {}\njobs:\n  publish:\n    runs-on: ubuntu-22.04\n    env:"),
    "gitlabci": ("stages:\n  - build\n  - deploy\nvariables:", "image: alpine:3.19\nvariables:"),
    "compose": ("services:\n  @@app@@:\n    image: @@app@@:@@version@@\n    environment:", "version: \"3.8\"\nservices:\n  @@app@@:\n    build: .\n    environment:"),
    "k8s": ("apiVersion: v1\nkind: Secret\nmetadata:\n  name: @@app@@-secrets\n  namespace: @@env@@\ntype: Opaque\nstringData:",
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: @@app@@\n  labels:\n    app: @@app@@\ntype: Opaque\nstringData:"),
    "tf": ("provider \"aws\" {\n  region = \"@@region@@\"\n}\n\nresource \"aws_instance\" \"@@app@@\" {", "module \"@@app@@\" {\n  source = \"./modules/app\""),
    "ini": ("[@@app@@]", "# @@app@@ properties"),
    "toml": ("[@@app@@]", "[deploy]"),
    "md": ("# @@App@@", "# @@App@@ operations"),
}
FOOTERS = {
    "gha": ("    steps:\n      - uses: actions/checkout@v4\n      - run: make deploy", "    steps:\n      - uses: actions/setup-go@v5\n      - run: ./release.sh"),
    "gitlabci": ("deploy:\n  stage: deploy\n  script:\n    - ./deploy.sh", "publish:\n  script:\n    - make publish"),
    "compose": ("    ports:\n      - \"@@port@@:@@port@@\"", "    restart: unless-stopped"),
    "tf": ("}", "}"),
}


class Rendered:
    """Lines of one entry; begin/end are the offsets of the value's first and last line. ctx are offsets of lines
    that belong to the entry without holding the value (the `key: |` line above a YAML block, a heredoc's opening
    and closing lines): a finding there counts as finding the entry, but none is needed."""

    def __init__(self, lines, begin, end, ctx=None):
        self.lines, self.begin, self.end = lines, begin, end
        self.ctx = ctx if ctx is not None else [i for i in range(len(lines)) if i < begin or i > end]


def render_entry(rng, style, key, value, raw=None, split="dev"):
    """Lines for one key/value in a file style, with the offsets of the value's first and last line."""
    multi = isinstance(value, list)
    up, sn, cm = case(key, "upper"), key, case(key, "camel")

    def single(line):
        return Rendered([line], 0, 0)

    bearer_ok = isinstance(value, str) and re.fullmatch(r"[A-Za-z0-9._~+/=-]{16,}", value or "") is not None

    if raw is not None:  # env-reference negatives: an expression, not a literal
        expr = raw.get({"py": "py", "js": "js", "go": "go", "rs": "rs", "sh": "sh", "tf": "tf"}.get(style, ""), raw[""])
        return single({"py": f"{up} = {expr}", "js": f"const {cm} = {expr};", "go": f"var {cm} = {expr}",
                       "rs": f"let {sn} = {expr};", "sh": f"export {up}={expr}", "tf": f"  {sn} = {expr}",
                       "env": f"{up}={expr}", "json": f'"{cm}": "{expr}"', "compose": f"      - {up}={expr}",
                       "gha": f"      {up}: {expr}", "gitlabci": f"  {up}: {expr}", "k8s": f"  {sn}: {expr}",
                       "yaml": f"  {sn}: {expr}", "ini": f"{sn} = {expr}", "toml": f'{sn} = "{expr}"',
                       "log": f"config {sn}={expr}", "md": f"    export {up}={expr}"}[style])
    if multi:
        body = value
        if style == "pem":
            return Rendered(list(body), 0, len(body) - 1)
        if style == "json":
            return single(f'"{cm}": ' + json.dumps("\n".join(body) + "\n"))
        if style in ("yaml", "k8s"):
            return Rendered([f"  {sn}: |"] + ["    " + x for x in body], 1, len(body))
        if style == "gha":
            return Rendered([f"      {up}: |"] + ["        " + x for x in body], 1, len(body))
        if style == "py":
            return Rendered([f'{up} = """{body[0]}'] + body[1:-1] + [f'{body[-1]}"""'], 0, len(body) - 1)
        if style == "js":
            return Rendered([f"const {cm} = `{body[0]}"] + body[1:-1] + [f"{body[-1]}`;"], 0, len(body) - 1)
        if style == "go":
            return Rendered([f"const {cm} = `{body[0]}"] + body[1:-1] + [f"{body[-1]}`"], 0, len(body) - 1)
        if style == "rs":
            return Rendered([f'const {up}: &str = "{body[0]}'] + body[1:-1] + [f'{body[-1]}";'], 0, len(body) - 1)
        if style == "sh":
            return Rendered([f"cat > /etc/{rng.choice(APPS)}/{sn}.pem <<'EOF'"] + body + ["EOF"], 1, len(body))
        if style == "tf":
            return Rendered([f"  {sn} = <<EOT"] + body + ["EOT"], 1, len(body))
        if style == "env":
            return Rendered([f'{up}="{body[0]}'] + body[1:-1] + [f'{body[-1]}"'], 0, len(body) - 1)
        if style == "toml":
            return Rendered([f'{sn} = """'] + body + ['"""'], 1, len(body))
        if style == "md":
            return Rendered(["```"] + body + ["```"], 1, len(body))
        if style == "log":
            return Rendered([f"2025-03-{rng.randrange(1, 29):02d}T10:1{rng.randrange(10)}:00Z DEBUG loaded {sn}:"] + body, 1, len(body))
        raise ValueError(style)
    v = value
    r = rng.random()
    if style == "env":
        return single(f"{up}={v}" if r < 0.5 else (f'{up}="{v}"' if r < 0.8 else f"export {up}='{v}'"))
    if style in ("yaml", "k8s"):
        return single(f"  {sn}: {v}" if r < 0.5 else f'  {sn}: "{v}"')
    if style == "json":
        return single(f'"{cm if r < 0.5 else sn}": ' + json.dumps(v))
    if style == "py":
        if r < 0.45:
            return single(f'{up} = "{v}"')
        if r < 0.65:
            return single(f"{sn} = '{v}'")
        if r < 0.85:
            return Rendered([f"client = {rng.choice(APPS).title()}Client(", f'    {sn}="{v}",', f"    timeout={rng.choice([5, 10, 30])},", ")"], 1, 1, [])
        return single(f'os.environ.setdefault("{up}", "{v}")')
    if style == "js":
        if r < 0.4:
            return single(f"const {cm} = '{v}';")
        if r < 0.6:
            return single(f'export const {up} = "{v}";')
        if r < 0.85:
            return Rendered(["const config = {", f"  {cm}: '{v}',", f"  retries: {rng.randrange(1, 6)},", "};"], 1, 1, [])
        if bearer_ok:
            return single(f'headers["Authorization"] = "Bearer {v}";')
        return single(f"process.env.{up} ??= '{v}';")
    if style == "go":
        if r < 0.5:
            return single(f'const {cm} = "{v}"')
        if r < 0.75:
            return single(f'var {case(key, "pascal")} = "{v}"')
        return Rendered([f"func {cm}() string {{", f'\treturn "{v}"', "}"], 1, 1, [0])
    if style == "rs":
        if r < 0.5:
            return single(f'const {up}: &str = "{v}";')
        if r < 0.75:
            return single(f'pub static {up}: &str = "{v}";')
        return Rendered([f"fn {sn}() -> &'static str {{", f'    "{v}"', "}"], 1, 1, [0])
    if style == "sh":
        if r < 0.45:
            return single(f'export {up}="{v}"')
        if r < 0.7 or not bearer_ok:
            return single(f"{up}='{v}'")
        return single(f'curl -fsS -H "Authorization: Bearer {v}" https://api.{rng.choice(DOMAINS)}/v1/{rng.choice(WORDS)}')
    if style == "gha":
        return single(f"      {up}: {v}" if r < 0.6 else f'      {up}: "{v}"')
    if style == "gitlabci":
        return single(f'  {up}: "{v}"')
    if style == "compose":
        return single(f"      - {up}={v}")
    if style == "tf":
        return single(f'  {sn} = "{v}"')
    if style == "log":
        ts = f"2025-0{rng.randrange(1, 10)}-{rng.randrange(10, 29)}T{rng.randrange(10, 24)}:{rng.randrange(10, 60)}:{rng.randrange(10, 60)}.{rng.randrange(100, 999)}Z"
        if r < 0.4:
            return single(f"{ts} DEBUG [{rng.choice(APPS)}] loaded config {sn}={v}")
        if r < 0.7 and bearer_ok:
            return single(f'{ts} INFO  [{rng.choice(APPS)}] outbound request headers={{"Authorization": "Bearer {v}"}}')
        return single(f"{ts} WARN  [{rng.choice(APPS)}] retrying with {sn}={v} attempt={rng.randrange(1, 5)}")
    if style == "ini":
        return single(f"{sn} = {v}" if r < 0.6 else f"{sn}={v}")
    if style == "toml":
        return single(f'{sn} = "{v}"')
    if style == "md":
        if key == "integrity":
            return single(f'<script src="https://cdn.jsdelivr.net/npm/{rng.choice(APPS)}@{rng.randrange(1, 9)}/dist/index.min.js" '
                          f'integrity="{v}" crossorigin="anonymous"></script>')
        if r < 0.6:
            return Rendered(["```bash", f"export {up}={v}", "```"], 1, 1, [])
        return single(f"- `{up}`: `{v}`")
    raise ValueError(style)


class Entry:
    def __init__(self, key, value, kind, is_secret, raw=None, kname=None):
        self.key, self.value, self.kind, self.is_secret, self.raw = key, value, kind, is_secret, raw
        self.kname = kname or kind.name


def build_items(rng, split, per_kind, neg_per_kind):
    """List of (entries, allowed file styles). Each item lands in one file as consecutive lines."""
    items = []
    for kind in SECRET_KINDS:
        keys = pick_half(kind.keys, split) if kind.keys else []
        for _ in range(per_kind):
            if kind.shape == "pair":
                a, b = kind.gen(rng)
                ka, kb = rng.choice(keys)
                items.append(([Entry(ka, a, kind, True, kname="aws-access-key-id"),
                               Entry(kb, b, kind, True, kname="aws-secret-access-key")], GENERAL))
            elif kind.shape == "gcpsa":
                items.append(([Entry("private_key", pem("PRIVATE KEY", kind.gen(rng)), kind, True)], ["gcpsa"]))
            elif kind.shape == "pem":
                items.append(([Entry(rng.choice(keys), kind.gen(rng), kind, True)], MULTILINE_OK))
            else:
                items.append(([Entry(rng.choice(keys), kind.gen(rng), kind, True)], GENERAL))
    secret_keys = pick_half(SECRET_KEYS, split)
    for nk in NEG_KINDS:
        for _ in range(neg_per_kind):
            keys = secret_keys if nk.keys == "secret" else (pick_half(nk.keys, split) if isinstance(nk.keys, list) and nk.keys else nk.keys)
            if nk.shape == "pair":
                a, b = nk.gen(rng, split)
                ka, kb = rng.choice(pick_half(SECRET_KINDS[0].keys, split))
                items.append(([Entry(ka, a, nk, False), Entry(kb, b, nk, False)], GENERAL))
            elif nk.shape == "raw":
                styles = ["py", "js", "go", "rs", "sh", "tf", "env", "yaml", "compose", "gha", "k8s"]
                items.append(([Entry(rng.choice(keys), None, nk, False, raw=nk.gen(rng, split))], styles))
            elif nk.shape == "kw":
                k, v = nk.gen(rng, split)
                items.append(([Entry(k, v, nk, False)], GENERAL))
            elif nk.shape == "pem":
                items.append(([Entry(rng.choice(keys), nk.gen(rng, split), nk, False)], MULTILINE_OK))
            elif nk.types:
                items.append(([Entry("integrity", nk.gen(rng, split), nk, False)], nk.types))
            else:
                items.append(([Entry(rng.choice(keys), nk.gen(rng, split), nk, False)], GENERAL))
    rng.shuffle(items)
    return items


def special_file(rng, style, split, entries):
    """Whole-file styles: GCP service account JSON, package-lock.json, go.sum. Returns (lines, spans)."""
    if style == "gcpsa":
        e = entries[0]
        project = f"{rng.choice(APPS)}-{rng.choice(ENVS)}-{rng.randrange(100000, 999999)}"
        acct = f"{rng.choice(APPS)}-sa@{project}.iam.gserviceaccount.com"
        key_id = hashlib.sha1(rng.randbytes(20)).hexdigest()
        doc = [("type", "service_account"), ("project_id", project), ("private_key_id", key_id),
               ("private_key", "\n".join(e.value) + "\n"), ("client_email", acct),
               ("client_id", str(rng.randrange(10**20, 10**21))), ("auth_uri", "https://accounts.google.com/o/oauth2/auth"),
               ("token_uri", "https://oauth2.googleapis.com/token"),
               ("auth_provider_x509_cert_url", "https://www.googleapis.com/oauth2/v1/certs"),
               ("client_x509_cert_url", f"https://www.googleapis.com/robot/v1/metadata/x509/{acct.replace('@', '%40')}"),
               ("universe_domain", "googleapis.com")]
        lines = ["{"] + [f'  "{k}": {json.dumps(v)}' + ("," if i < len(doc) - 1 else "") for i, (k, v) in enumerate(doc)] + ["}"]
        # the private_key line; the rest of the document is the same credential, so a finding anywhere in it counts
        return lines, [(e, 5, 5, [i for i in range(1, len(lines) + 1) if i != 5])]
    if style == "pkglock":
        app = rng.choice(APPS)
        lines = ["{", f'  "name": "{app}",', f'  "version": "1.{rng.randrange(0, 9)}.0",', '  "lockfileVersion": 3,',
                 '  "requires": true,', '  "packages": {']
        spans = []
        names = ["lodash", "express", "react", "debug", "ms", "chalk", "commander", "semver", "uuid", "yargs", "axios", "zod"]
        for i, e in enumerate(entries):
            pkg = rng.choice(names) + ("" if i == 0 else f"-{i}")
            ver = f"{rng.randrange(1, 9)}.{rng.randrange(0, 20)}.{rng.randrange(0, 9)}"
            lines += [f'    "node_modules/{pkg}": {{', f'      "version": "{ver}",',
                      f'      "resolved": "https://registry.npmjs.org/{pkg}/-/{pkg}-{ver}.tgz",']
            lines.append(f'      "integrity": "{e.value}",')
            spans.append((e, len(lines), len(lines), []))
            lines += ['      "license": "MIT"', "    }" + ("," if i < len(entries) - 1 else "")]
        lines += ["  }", "}"]
        return lines, spans
    if style == "gosum":
        lines, spans = [], []
        mods = ["github.com/spf13/cobra", "golang.org/x/sys", "github.com/stretchr/testify", "go.uber.org/zap",
                "github.com/google/uuid", "golang.org/x/net", "github.com/prometheus/client_golang"]
        for e in entries:
            m, v = rng.choice(mods), f"v{rng.randrange(0, 2)}.{rng.randrange(0, 30)}.{rng.randrange(0, 9)}"
            lines.append(f"{m} {v} {e.value}")
            spans.append((e, len(lines), len(lines), []))
            lines.append(f"{m} {v}/go.mod h1:" + base64.b64encode(hashlib.sha256((m + v).encode()).digest()).decode())
        return lines, spans
    raise ValueError(style)


def render_file(rng, style, split, items):
    """Lay out a file: header, filler blocks and the items in random order, footer. Returns (text, spans) where a
    span is (entry, first_line, last_line, context_lines), 1-based."""
    si = 0 if split == "dev" else 1
    entries_all = [e for entries, _ in items for e in entries]
    if style in ("gcpsa", "pkglock", "gosum"):
        lines, spans = special_file(rng, style, split, entries_all)
        return "\n".join(lines) + "\n", spans
    if style == "pem":
        e = entries_all[0]
        r = render_entry(rng, "pem", e.key, e.value, split=split)
        return "\n".join(r.lines) + "\n", [(e, 1 + r.begin, 1 + r.end, [])]
    blocks = []
    filler = FILLER.get(style, [""])[si] if style in FILLER else []
    if style == "log":  # log lines repeat; other files use each filler statement at most once
        chosen = [rng.choice(filler) for _ in range(rng.randrange(6, 40))]
    else:
        chosen = rng.sample(filler, rng.randrange(min(3, len(filler)), len(filler) + 1)) if filler else []
    for tmpl in chosen:
        blocks.append(("f", fill(rng, tmpl).split("\n")))
    for entries, _ in items:
        blocks.insert(rng.randrange(len(blocks) + 1), ("i", entries))
    lines, spans = [], []
    if style in HEADERS:
        lines += fill(rng, HEADERS[style][si]).split("\n")
        if style in ("py", "js", "go", "rs", "sh", "md"):
            lines.append("")
    json_items = []
    for kind_, payload in blocks:
        if kind_ == "f":
            if style == "json":
                continue
            lines += payload
            continue
        for e in payload:
            r = render_entry(rng, style, e.key, e.value, raw=e.raw, split=split)
            if style == "json":
                json_items.append((e, r))
                continue
            start = len(lines) + 1
            lines += r.lines
            spans.append((e, start + r.begin, start + r.end, [start + c for c in r.ctx]))
    if style == "json":
        # a small nested document; every item is one line inside "settings"
        fill_kv = [f'"{k}": {v}' for k, v in [("name", json.dumps(rng.choice(APPS))), ("port", str(rng.choice([80, 8080, 3000]))),
                                               ("logLevel", json.dumps(rng.choice(LEVELS))), ("region", json.dumps(rng.choice(REGIONS))),
                                               ("retries", str(rng.randrange(1, 6))), ("timeoutMs", str(rng.choice([500, 1000, 5000])))]]
        body = [(None, x) for x in rng.sample(fill_kv, rng.randrange(2, len(fill_kv) + 1))] + [(e, r.lines[0]) for e, r in json_items]
        rng.shuffle(body)
        lines = ["{", '  "settings": {']
        for i, (e, text) in enumerate(body):
            lines.append("    " + text + ("," if i < len(body) - 1 else ""))
            if e is not None:
                spans.append((e, len(lines), len(lines), []))
        lines += ["  }", "}"]
    if style in FOOTERS:
        lines += fill(rng, FOOTERS[style][si]).split("\n")
    return "\n".join(lines) + "\n", spans


def locate(lines, line, value, where):
    """Checks that the labelled line holds the value; returns {"value", "column"} (1-based) for one-line values."""
    text = lines[line - 1]
    if isinstance(value, list):
        if "-----BEGIN" not in text:
            raise AssertionError(f"label {where}: no BEGIN line: {text[:80]!r}")
        return {}
    if value is None:  # env-reference negatives: an expression, not a literal
        return {}
    col = text.find(value)
    if col < 0:  # JSON files escape quotes and backslashes
        col = text.find(json.dumps(value)[1:-1])
    if col < 0:
        raise AssertionError(f"label {where}: value not on its line: {text[:80]!r}")
    return {"value": value, "column": col + 1}


def build_labelled(out, split, seed, per_kind, neg_per_kind):
    t0 = time.time()
    root = os.path.join(out, "labelled", split)
    if os.path.isdir(root):
        shutil.rmtree(root)
    os.makedirs(root)
    rng = seeded(seed, "labelled", split)
    items = build_items(rng, split, per_kind, neg_per_kind)
    si = 0 if split == "dev" else 1
    # group items into files of one style
    open_files = {}
    files = []
    for it in items:
        entries, styles = it
        style = rng.choice(styles)
        if style in ("pem", "gcpsa"):
            files.append((style, [it]))
            continue
        open_files.setdefault(style, []).append(it)
        cap = 6 if style in ("pkglock", "gosum") else rng.choice([1, 2, 2, 3, 3, 4, 5])
        if len(open_files[style]) >= cap:
            files.append((style, open_files.pop(style)))
    files += [(s, its) for s, its in open_files.items()]
    # files with filler only (no planted item at all)
    for _ in range(len(files) // 6):
        files.append((rng.choice([s for s in GENERAL if s in FILLER]), []))
    rng.shuffle(files)
    labels, negs = [], []
    for i, (style, its) in enumerate(files):
        proj = f"p{i:04d}-{rng.choice(APPS)}"
        rel = os.path.join(proj, rng.choice(FILENAMES[style][si]))
        text, spans = render_file(rng, style, split, its)
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        text_lines = text.split("\n")
        for e, a, b, ctx in spans:
            rec = {"file": rel, "line": a, "end_line": b}
            rec.update(locate(text_lines, a, e.value, f"{rel}:{a} {e.kname}"))
            if e.is_secret:
                rec.update(family=e.kind.family, kind=e.kname, pii=e.kind.pii)
                if ctx:
                    rec["context_lines"] = ctx
                labels.append(rec)
            else:
                rec.update(negative=e.kname)
                negs.append(rec)
    with open(os.path.join(out, "labelled", f"{split}.labels.jsonl"), "w") as f:
        for r in labels:
            f.write(json.dumps(r, sort_keys=True) + "\n")
    with open(os.path.join(out, "labelled", f"{split}.negatives.jsonl"), "w") as f:
        for r in negs:
            f.write(json.dumps(r, sort_keys=True) + "\n")
    log(f"labelled/{split}: {len(files)} files, {len(labels)} labels "
        f"({sum(1 for l in labels if l['pii'])} PII), {len(negs)} hard negatives, {time.time() - t0:.1f}s")


# --------------------------------------------------------------------------------------------------------------
# Throughput corpus
# --------------------------------------------------------------------------------------------------------------

SKIP_DIRS = {"__pycache__", ".git", "node_modules", "target"}


def candidate_files(roots):
    out = []
    for tag, root in roots:
        if not os.path.isdir(root):
            continue
        for dp, dns, fns in os.walk(root):
            dns[:] = sorted(d for d in dns if d not in SKIP_DIRS)
            for fn in sorted(fns):
                p = os.path.join(dp, fn)
                try:
                    st = os.lstat(p)
                except OSError:
                    continue
                if not os.path.isfile(p) or os.path.islink(p) or st.st_size < 64 or st.st_size > 1_000_000:
                    continue
                if fn.endswith((".pyc", ".so", ".a", ".o", ".rlib", ".gz", ".xz", ".zip", ".whl", ".png", ".jpg", ".ico")):
                    continue
                out.append((tag, root, os.path.relpath(p, root), st.st_size))
    return out


def is_text(data):
    """Valid UTF-8 without NUL bytes (some scanners drop a whole file on the first decoding error)."""
    if b"\x00" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def synth_logs(rng, nbytes):
    """Seeded access and application logs (no secrets), yielded as (name, bytes) of ~2-4 MB each."""
    uas = ["Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
           "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
           "curl/8.5.0", "python-requests/2.31.0", "Go-http-client/2.0", "kube-probe/1.29", "Prometheus/2.51.0"]
    made, n = 0, 0
    while made < nbytes:
        kind = ["nginx", "app", "syslog"][n % 3]
        lines = []
        size = 0
        target = rng.randrange(2_000_000, 4_000_000)
        day = rng.randrange(1, 28)
        sec = 0
        while size < target:
            sec += rng.randrange(0, 3)
            hh, mm, ss = (sec // 3600) % 24, (sec // 60) % 60, sec % 60
            if kind == "nginx":
                ip = f"{rng.randrange(1, 223)}.{rng.randrange(0, 255)}.{rng.randrange(0, 255)}.{rng.randrange(1, 255)}"
                line = (f'{ip} - - [{day:02d}/Mar/2025:{hh:02d}:{mm:02d}:{ss:02d} +0000] "{fill(rng, "@@method@@ @@path@@")}'
                        f'?page={rng.randrange(1, 50)} HTTP/1.1" {fill(rng, "@@status@@")} {rng.randrange(0, 60000)} '
                        f'"-" "{rng.choice(uas)}" rt={rng.random():.3f}')
            elif kind == "app":
                rid = "%08x-%04x-4%03x-%04x-%012x" % (rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(12), 0x8000 | rng.getrandbits(14), rng.getrandbits(48))
                line = json.dumps({"ts": f"2025-03-{day:02d}T{hh:02d}:{mm:02d}:{ss:02d}.{rng.randrange(0, 999):03d}Z",
                                   "level": rng.choice(LEVELS), "service": rng.choice(APPS), "request_id": rid,
                                   "msg": fill(rng, rng.choice(["handled @@method@@ @@path@@", "cache miss for @@word@@",
                                                                 "job @@word@@ finished", "connected to @@host@@:@@port@@"])),
                                   "duration_ms": rng.randrange(1, 2000), "user_id": rng.randrange(1, 10**6)})
            else:
                line = (f"Mar {day:2d} {hh:02d}:{mm:02d}:{ss:02d} {rng.choice(HOSTS)} "
                        f"{rng.choice(['systemd[1]', 'sshd[%d]' % rng.randrange(300, 9000), 'kernel', 'CRON[%d]' % rng.randrange(300, 9000)])}: "
                        + fill(rng, rng.choice(["Started @@app@@.service.", "Accepted publickey for @@name@@ from @@ip@@ port @@port@@ ssh2",
                                                 "pam_unix(cron:session): session opened for user @@name@@",
                                                 "Disconnected from user @@name@@ @@ip@@ port @@port@@",
                                                 "@@app@@.service: Consumed @@small@@.@@ms@@s CPU time."])))
            lines.append(line)
            size += len(line) + 1
        data = ("\n".join(lines) + "\n").encode()
        yield f"{kind}-{n:03d}.log", data
        made += len(data)
        n += 1


def planted_line(rng, ext, kind, split="dev"):
    """Lines to insert into a source/log file for one planted secret; returns (lines, begin, end) offsets."""
    keys = kind.keys or ["private_key"]
    key = rng.choice(keys)
    if kind.shape == "pair":
        a, b = kind.gen(rng)
        ka, kb = key
        style = {".py": "py", ".rs": "rs", ".toml": "toml", ".json": "json", ".yml": "yaml", ".yaml": "yaml", ".log": "log",
                 ".go": "go", ".js": "js", ".ts": "js", ".sh": "sh", ".md": "md"}.get(ext, "env")
        ra = render_entry(rng, style if style != "md" else "env", ka, a)
        rb = render_entry(rng, style if style != "md" else "env", kb, b)
        n = len(ra.lines)
        return ra.lines + rb.lines, [(ra.begin, ra.end, ra.ctx), (n + rb.begin, n + rb.end, [n + c for c in rb.ctx])], [a, b]
    if kind.shape == "gcpsa":
        body = pem("PRIVATE KEY", kind.gen(rng))
        return [f'  "private_key": {json.dumps(chr(10).join(body) + chr(10))},'], [(0, 0, [])], [body]
    value = kind.gen(rng)
    style = {".py": "py", ".rs": "rs", ".toml": "toml", ".json": "json", ".yml": "yaml", ".yaml": "yaml", ".log": "log",
             ".go": "go", ".js": "js", ".ts": "js", ".sh": "sh", ".md": "md", ".ini": "ini", ".cfg": "ini", ".tf": "tf"}.get(ext, "env")
    if isinstance(value, list) and style in ("ini", "compose", "gitlabci"):
        style = "pem"  # pasted as is
    r = render_entry(rng, style, key, value)
    return r.lines, [(r.begin, r.end, r.ctx)], [value]


def build_throughput(out, seed, size_mb, n_planted, subset_mb):
    t0 = time.time()
    base = os.path.join(out, "throughput")
    for d in ("clean", "planted", "clean-10m", "planted-only"):
        if os.path.isdir(os.path.join(base, d)):
            shutil.rmtree(os.path.join(base, d))
    os.makedirs(os.path.join(base, "clean"), exist_ok=True)
    rng = seeded(seed, "throughput")
    home = os.path.expanduser("~")
    cargo = []
    reg = os.path.join(home, ".cargo", "registry", "src")
    if os.path.isdir(reg):
        cargo = [("rust", os.path.join(reg, d)) for d in sorted(os.listdir(reg))]
    py_roots = []
    try:
        import site
        py_roots += [("python", p) for p in site.getsitepackages()]
    except Exception:  # noqa: BLE001 - venvs without site.getsitepackages
        pass
    for d in sorted(os.listdir("/usr/lib")):
        if re.fullmatch(r"python3(\.\d+)?", d):
            py_roots.append(("python", os.path.join("/usr/lib", d)))
    total = int(size_mb * 1024 * 1024)
    budget = {"rust": int(total * 0.55), "python": int(total * 0.35)}
    files = []  # (relpath in tree, data)
    taken = {"rust": 0, "python": 0, "logs": 0}
    for tag, roots in (("rust", cargo), ("python", py_roots)):
        cands = candidate_files(roots)
        rng.shuffle(cands)
        for _, root, rel, size in cands:
            if taken[tag] >= budget[tag]:
                break
            try:
                with open(os.path.join(root, rel), "rb") as f:
                    data = f.read()
            except OSError:
                continue
            if not is_text(data):
                continue
            top = os.path.basename(root.rstrip("/"))
            # neutral folder names: no "site-packages", "vendor", "lib/python3.x" (some tools skip those by path)
            tree_rel = os.path.join("src", tag, top.replace("site-packages", "pkgs"), rel) if tag == "python" else os.path.join("src", tag, rel)
            files.append((tree_rel, data))
            taken[tag] += len(data)
    # logs: the machine's own text logs, then seeded synthetic ones up to the rest of the budget
    for p in ["/var/log/dpkg.log", "/var/log/alternatives.log", "/var/log/apt/history.log", "/var/log/apt/term.log",
              "/var/log/fontconfig.log", "/var/log/bootstrap.log"]:
        try:
            with open(p, "rb") as f:
                data = f.read()
        except OSError:
            continue
        if data and is_text(data):
            files.append((os.path.join("logs", "system", p.strip("/").replace("/", "_")), data))
            taken["logs"] += len(data)
    rest = total - sum(taken.values())
    for name, data in synth_logs(rng, max(rest, 0)):
        files.append((os.path.join("logs", "app", name), data))
        taken["logs"] += len(data)
    files.sort(key=lambda x: x[0])
    # the concatenation follows a seeded shuffle, so that any prefix of clean.txt has the corpus's mix of sources
    order = list(range(len(files)))
    rng.shuffle(order)
    clean = os.path.join(base, "clean")
    sub = int(subset_mb * 1024 * 1024)
    subset_bytes = subset_dir_bytes = 0
    with open(os.path.join(base, "clean.txt"), "wb") as cat, open(os.path.join(base, "clean-10m.txt"), "wb") as head:
        for i in order:
            rel, data = files[i]
            p = os.path.join(clean, rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "wb") as f:
                f.write(data)
            chunk = data if data.endswith(b"\n") else data + b"\n"
            cat.write(chunk)
            # clean-10m.txt and clean-10m/ hold the same files: the first ones of clean.txt up to subset_mb
            if subset_bytes + len(chunk) <= sub:
                head.write(chunk)
                subset_bytes += len(chunk)
                subset_dir_bytes += len(data)
                q = os.path.join(base, "clean-10m", rel)
                os.makedirs(os.path.dirname(q), exist_ok=True)
                os.link(p, q)
    # planted variant: hard links, except the files that receive a secret
    kinds = [k for k in SECRET_KINDS]
    hosts = rng.sample(range(len(files)), min(n_planted, len(files)))
    labels = []
    changed = {}
    for j, fi in enumerate(sorted(hosts)):
        kind = kinds[j % len(kinds)]
        rel, data = files[fi]
        text = data.decode("utf-8", errors="surrogateescape")
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        ext = os.path.splitext(rel)[1]
        new, offs, values = planted_line(rng, ext, kind)
        pos = rng.randrange(0, len(lines) + 1)
        lines[pos:pos] = new
        changed[rel] = ("\n".join(lines) + "\n").encode("utf-8", errors="surrogateescape")
        for n, (a, b, ctx) in enumerate(offs):
            kname = kind.name if kind.shape != "pair" else ("aws-access-key-id", "aws-secret-access-key")[n]
            rec = {"file": rel, "line": pos + a + 1, "end_line": pos + b + 1, "family": kind.family,
                   "kind": kname, "pii": kind.pii}
            if ctx:
                rec["context_lines"] = [pos + c + 1 for c in ctx]
            if kind.shape != "gcpsa":
                rec.update(locate(lines, pos + a + 1, values[n], f"{rel}:{pos + a + 1} {kname}"))
            labels.append(rec)
    planted = os.path.join(base, "planted")
    only = os.path.join(base, "planted-only")
    for rel, data in files:
        p = os.path.join(planted, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        if rel in changed:
            with open(p, "wb") as f:
                f.write(changed[rel])
            q = os.path.join(only, rel)
            os.makedirs(os.path.dirname(q), exist_ok=True)
            os.link(p, q)
        else:
            os.link(os.path.join(clean, rel), p)
    with open(os.path.join(base, "planted.labels.jsonl"), "w") as f:
        for r in labels:
            f.write(json.dumps(r, sort_keys=True) + "\n")
    size = os.path.getsize(os.path.join(base, "clean.txt"))
    manifest = {"seed": seed, "size_mb": size_mb, "planted": n_planted, "files": len(files),
                "bytes_clean_txt": size, "bytes_by_source": taken, "bytes_clean_10m_txt": subset_bytes,
                "bytes_clean_10m_dir": subset_dir_bytes, "bytes_clean_dir": sum(len(d) for _, d in files),
                "bytes_planted_dir": sum(len(changed.get(r, d)) for r, d in files), "files_planted": len(changed), "labels_planted": len(labels),
                "bytes_planted_only": sum(len(v) for v in changed.values())}
    with open(os.path.join(base, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
    log(f"throughput: {len(files)} files, {size / 1048576:.1f} MiB (rust {taken['rust'] / 1048576:.0f}, python "
        f"{taken['python'] / 1048576:.0f}, logs {taken['logs'] / 1048576:.0f} MiB), {len(labels)} planted labels, "
        f"{time.time() - t0:.1f}s")


# --------------------------------------------------------------------------------------------------------------


def log(msg):
    print(f"redact-corpus: {msg}", file=sys.stderr)


def selftest():
    rng = random.Random(7)
    for _ in range(200):
        t = crc_token(rng, "ghp_")
        assert len(t) == 40 and crc_token_valid(t), t
        assert not crc_token_valid(crc_token(rng, "ghp_", good=False))
        assert luhn_ok(_card(rng)) and not luhn_ok(_card(rng, good=False))
        assert iban_ok(_iban(rng)) and not iban_ok(_iban(rng, good=False))
    # known vectors
    assert b62(0) == "000000" and b62(61) == "00000z"
    assert luhn_ok("4111 1111 1111 1111") and iban_ok("GB82 WEST 1234 5698 7654 32")
    # RFC 8032 test 1: secret 9d61b1...7f60 -> public d75a98...511a
    assert ed25519_pub(bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")).hex() == \
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    # bech32 (BIP-173 valid test string "a12uel5l" is hrp "a" with no data)
    assert bech32("a", b"") == "a12uel5l"
    k = KIND_BY_NAME["age-secret-key"].gen(rng)
    assert k.startswith("AGE-SECRET-KEY-1") and len(k) == 16 + 58, k
    assert len(KIND_BY_NAME["anthropic-api-key"].gen(rng)) == len("sk-ant-api03-") + 95
    assert KIND_BY_NAME["pypi-token"].gen(rng).startswith("pypi-AgEIcHlwaS5vcmc")
    assert KIND_BY_NAME["sentry-org-token"].gen(rng).startswith("sntrys_eyJpYXQiO")
    assert re.fullmatch(r"[A-Za-z0-9+/]{86}==", KIND_BY_NAME["azure-storage-connection-string"].gen(rng).split("AccountKey=")[1].split(";")[0])
    for g in (gen_pem_rsa, gen_pem_ec, gen_pem_pkcs8, gen_pem_openssh, gen_pgp):
        lines = g(rng)
        assert lines[0].startswith("-----BEGIN") and lines[-1].startswith("-----END"), lines[0]
    print(f"selftest ok: {len(SECRET_KINDS) + 1} secret/PII label kinds (the AWS pair is two), {len(NEG_KINDS)} hard-negative kinds")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cmd", choices=["labelled", "throughput", "all", "selftest", "kinds"])
    ap.add_argument("--out", default="target/bench-redact")
    ap.add_argument("--split", choices=["dev", "test"], default="dev")
    ap.add_argument("--seed", type=int, default=20261122)
    ap.add_argument("--per-kind", type=int, default=10, help="true secrets per kind per split")
    ap.add_argument("--neg-per-kind", type=int, default=12, help="hard negatives per kind per split")
    ap.add_argument("--size-mb", type=float, default=200)
    ap.add_argument("--planted", type=int, default=300)
    ap.add_argument("--subset-mb", type=float, default=10)
    a = ap.parse_args()
    if a.cmd == "selftest":
        selftest()
        return
    if a.cmd == "kinds":
        for k in SECRET_KINDS:
            print(f"{k.family}\t{k.name}\t{'pii' if k.pii else 'secret'}")
        for n in NEG_KINDS:
            print(f"negative\t{n.name}")
        return
    # the dev and test splits differ by seed and by template sets: file names, filler flavours, key names and
    # placeholder vocabularies are split in two disjoint halves (see pick_half / FILENAMES / FILLER)
    seeds = {"dev": a.seed, "test": a.seed + 1}
    if a.cmd in ("labelled", "all"):
        for split in (["dev", "test"] if a.cmd == "all" else [a.split]):
            build_labelled(a.out, split, seeds[split], a.per_kind, a.neg_per_kind)
    if a.cmd in ("throughput", "all"):
        build_throughput(a.out, a.seed, a.size_mb, a.planted, a.subset_mb)


if __name__ == "__main__":
    main()
