//! # The local certificate authority for TLS interception
//!
//! Why it exists: a CONNECT tunnel is normally passed through untouched, but when policy must see inside an HTTPS
//! request (to inject a credential, check a method or path, scan for leaks) the broker terminates the tool's TLS
//! itself. The tool only accepts that if the broker presents a certificate for the requested host from an authority
//! the tool trusts. This module is that authority: one CA per install, issuing host certificates on the fly. Tools
//! in the sandbox trust it through `SSL_CERT_FILE`, `REQUESTS_CA_BUNDLE`, `NODE_EXTRA_CA_CERTS`, `CURL_CA_BUNDLE` and
//! `GIT_SSL_CAINFO`; nothing else on the machine should.
//!
//! ## What it signs, and for how long
//! - **The CA itself**: ECDSA P-256, `CN=Airlock local CA <install id>`, `basicConstraints` critical `CA:true,
//!   pathlen:0` (it signs leaves, never another CA), `keyUsage` critical `keyCertSign, cRLSign` only, a random
//!   serial, valid for the caller's chosen period (at most [`MAX_CA_VALIDITY`]) and backdated one hour for clock
//!   skew. Optionally it carries critical name constraints (see [`LocalCa::generate`]).
//! - **Leaves**, one per intercepted host: SAN = exactly that host (a DNS name, or an IP address for an IP host) and
//!   an empty subject, so nothing can rely on the CN; `extendedKeyUsage serverAuth`; `keyUsage digitalSignature`;
//!   `basicConstraints CA:false`; a random 126-bit serial; valid for [`LEAF_VALIDITY`] at most and never past the
//!   CA, backdated one hour. All leaves share one P-256 key generated in memory when the [`LocalCa`] is created or
//!   loaded; it is never stored, so a restart rotates it.
//! - A handshake whose SNI names another host than the one the leaf was issued for is refused, and so is a missing
//!   SNI unless the host is an IP address.
//!
//! ## Where the key lives
//! Encrypted in the vault (the caller stores [`LocalCa::key_pem`] there) and in this process's memory, nowhere
//! else: this module never writes it to a file, a log, an error message or `Debug` output. Every copy this module
//! holds is in a zeroizing buffer. Two copies are outside our control: ring keeps its own parsed form of the key
//! (which it does not wipe on drop), and at generation rcgen's key-pair object briefly holds the PKCS#8 bytes
//! before we copy them out and drop it.
//!
//! ## If the key leaks
//! Whoever holds it can impersonate any host (a name-constrained CA: any host inside its constraints) to every
//! client that trusts this CA, which is the sandboxes of this one install and nothing else, since no system trust
//! store holds it. Recovery is to generate a new CA, store it in the vault, and hand the new certificate to
//! sandboxes; the old one stops being trusted by every sandbox started afterwards. A leaked *leaf* key (memory
//! only) is bounded by the leaf lifetime of at most seven days.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use airlock_policy::normalize::HostName;
use base64::Engine as _;
use rcgen::string::{Ia5String, PrintableString};
use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DistinguishedName, DnType, DnValue, ExtendedKeyUsagePurpose,
    GeneralSubtree, IsCa, Issuer, KeyIdMethod, KeyUsagePurpose, NameConstraints, SanType, SerialNumber,
};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::{ClientHello, ResolvesServerCert, ServerSessionMemoryCache};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig, SignatureScheme};
use zeroize::Zeroizing;

/// How many hosts' leaves [`LocalCa::server_config`] keeps unless [`LocalCa::with_cache_capacity`] says otherwise.
pub const DEFAULT_CACHE_CAPACITY: usize = 1024;

/// The longest a leaf certificate is valid (it is also never valid past the CA).
pub const LEAF_VALIDITY: Duration = Duration::from_secs(7 * 24 * 3600);

/// The longest validity [`LocalCa::generate`] accepts: 20 years. A longer-lived CA key is only a longer-lived risk.
pub const MAX_CA_VALIDITY: Duration = Duration::from_secs(7305 * 24 * 3600);

/// How far back `notBefore` is set, so that a client whose clock runs a little slow still accepts a fresh certificate.
const BACKDATE: Duration = Duration::from_secs(3600);

const CN_PREFIX: &str = "Airlock local CA ";

/// X.520 caps a common name at 64 characters.
const MAX_INSTALL_ID_LEN: usize = 64 - CN_PREFIX.len();

/// The broker uses two ALPN lists; a few more are tolerated per host before the oldest config is dropped.
const MAX_CONFIGS_PER_HOST: usize = 4;

/// Resumable TLS sessions remembered per server config.
const SESSIONS_PER_CONFIG: usize = 32;

/// Latest time a certificate can carry (9999-12-31T23:59:59Z); later would not encode.
const MAX_CERT_UNIX_SECS: u64 = 253_402_300_799;

/// What went wrong. Messages name hosts, dates and reasons; they never contain key material or PEM text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaError {
    /// The install id cannot be used in the CA's name.
    #[error("invalid install id for the local CA: {0}")]
    InstallId(&'static str),
    /// The requested CA validity is out of range.
    #[error("invalid local CA validity: {0}")]
    Validity(String),
    /// An entry of the permitted list is not a DNS name or an IP range.
    #[error("invalid name constraint {entry:?}: {reason}")]
    Constraint {
        /// The entry as configured.
        entry: String,
        /// Why it was refused.
        reason: String,
    },
    /// The CA certificate PEM could not be used.
    #[error("local CA certificate: {0}")]
    Certificate(String),
    /// The CA private key PEM could not be used.
    #[error("local CA private key: {0}")]
    Key(&'static str),
    /// The private key belongs to another certificate.
    #[error("the local CA private key does not belong to the CA certificate")]
    KeyMismatch,
    /// The certificate is not allowed to sign certificates.
    #[error("the certificate is not a usable CA: {0}")]
    NotCa(&'static str),
    /// The CA certificate's validity has not started.
    #[error("the local CA certificate is not valid until {not_before}; check the system clock")]
    NotYetValid {
        /// Start of validity, RFC 3339 UTC.
        not_before: String,
    },
    /// The CA certificate has expired.
    #[error("the local CA certificate expired at {not_after}; generate a new CA")]
    Expired {
        /// End of validity, RFC 3339 UTC.
        not_after: String,
    },
    /// The host is outside the CA's name constraints, so the CA must not issue for it.
    #[error("the local CA may not issue a certificate for {host}: it is outside the CA's name constraints")]
    HostNotPermitted {
        /// The refused host, canonical form.
        host: String,
    },
    /// The system clock is before 1970 or past what a certificate can express.
    #[error("the system clock is out of range for certificates")]
    Clock,
    /// Building or signing a certificate failed.
    #[error("certificate issuance failed: {0}")]
    Issue(String),
    /// Building the TLS configuration failed.
    #[error("TLS configuration failed: {0}")]
    Tls(String),
    /// A leaf issued by this CA does not verify against the CA certificate (for example, a subject this module cannot
    /// reproduce exactly). Checked once at creation and load, so such a CA is refused before any tool sees it.
    #[error("self-check failed: a leaf issued by the local CA does not verify against its certificate ({0})")]
    SelfCheck(String),
}

/// The per-install CA: issues leaf certificates for intercepted hosts and hands out ready TLS server configs.
///
/// `Send + Sync`; share it behind an `Arc`. Issuance happens outside the cache lock, so concurrent handshakes for
/// different hosts do not wait on each other.
pub struct LocalCa {
    cert_der: CertificateDer<'static>,
    cert_pem: String,
    /// Printable subject, e.g. `CN=Airlock local CA 1234`, for `Debug` and logs.
    subject: String,
    fingerprint: String,
    not_before: SystemTime,
    not_after: SystemTime,
    constraints: Constraints,
    issuer: Issuer<'static, EcKey>,
    /// Whether leaves carry an authorityKeyIdentifier (only when the CA certificate has a subjectKeyIdentifier).
    leaf_aki: bool,
    leaf_key: EcKey,
    provider: Arc<CryptoProvider>,
    cache: Mutex<LeafCache>,
}

impl LocalCa {
    /// A new CA: ECDSA P-256, `CN=Airlock local CA <install_id>`, valid `validity` from now (backdated one hour),
    /// `basicConstraints CA:true, pathlen:0`, `keyUsage keyCertSign, cRLSign`.
    ///
    /// `install_id`: 1 to 47 characters from `A-Z a-z 0-9 - _ . :`.
    ///
    /// `permitted`: `None` for an unconstrained CA, or a list of DNS names (`example.com` covers `example.com` and
    /// every name under it; no `*.`) and IP ranges (`10.0.0.0/8`, `2001:db8::/32`, or one address). The trade-off: a
    /// constrained CA is much safer if its key leaks (clients refuse anything it signs outside the list), but the
    /// broker cannot intercept any host outside the list, so those hosts can only be tunnelled or denied. A list
    /// without IP ranges also excludes every IP address (`0.0.0.0/0`, `::/0`), and a list without DNS names permits
    /// only the reserved `invalid` domain: RFC 5280 leaves a name type without constraints unconstrained, which
    /// would defeat the point.
    pub fn generate(install_id: &str, validity: Duration, permitted: Option<&[String]>) -> Result<LocalCa, CaError> {
        Self::generate_at(SystemTime::now(), install_id, validity, permitted)
    }

    /// Loads a CA from its certificate PEM and its PKCS#8 private key PEM (as stored in the vault).
    ///
    /// Refuses, with a message saying which: PEM that is not exactly one certificate or one unencrypted PKCS#8 key, a
    /// certificate that is not a CA (`basicConstraints CA:true`, `keyCertSign` if `keyUsage` is present) or has an
    /// unknown critical extension, a CA outside its validity period, a key that belongs to another certificate, and
    /// a CA whose leaves would not verify against it (checked by issuing and verifying one).
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<LocalCa, CaError> {
        Self::from_pem_at(SystemTime::now(), cert_pem, key_pem)
    }

    /// Replaces the leaf cache's capacity (at least 1); cached leaves are dropped.
    pub fn with_cache_capacity(self, capacity: usize) -> LocalCa {
        let cache = Mutex::new(LeafCache::new(capacity));
        LocalCa { cache, ..self }
    }

    /// The CA certificate, PEM: what sandboxes are told to trust.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// The private key, PKCS#8 PEM, for the caller to store in the vault. Wiped when dropped.
    pub fn key_pem(&self) -> Zeroizing<String> {
        pem_encode("PRIVATE KEY", &self.issuer.key().pkcs8)
    }

    /// SHA-256 fingerprint of the CA certificate DER, uppercase hex with colons (what users compare).
    pub fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    /// End of the CA certificate's validity.
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    /// A TLS server config presenting a leaf certificate for `host`, issued by this CA, with `alpn` as the server's
    /// ALPN protocols in preference order.
    ///
    /// Cached per host (least recently used evicted); the same host and ALPN list give the same `Arc` until the leaf
    /// is past half its lifetime, when a fresh one is issued. The config refuses a handshake whose SNI names another
    /// host, or that has no SNI while `host` is a domain. Fails for a host outside the CA's name constraints and once
    /// the CA has expired.
    pub fn server_config(&self, host: &HostName, alpn: &[&[u8]]) -> Result<Arc<ServerConfig>, CaError> {
        self.server_config_at(host, alpn, SystemTime::now())
    }

    /// Number of hosts with a cached leaf (for tests and metrics).
    pub fn cached(&self) -> usize {
        self.lock_cache().entries.len()
    }

    fn generate_at(
        now: SystemTime,
        install_id: &str,
        validity: Duration,
        permitted: Option<&[String]>,
    ) -> Result<LocalCa, CaError> {
        let common_name = ca_common_name(install_id)?;
        if validity < Duration::from_secs(1) || validity > MAX_CA_VALIDITY {
            return Err(CaError::Validity(format!(
                "must be between 1 second and {} days",
                MAX_CA_VALIDITY.as_secs() / 86_400
            )));
        }
        let constraints = match permitted {
            None => Constraints::default(),
            Some(list) => Constraints::from_config(list)?,
        };
        let now = whole_seconds(now)?;
        let not_before = now.checked_sub(BACKDATE).ok_or(CaError::Clock)?;
        let not_after = now.checked_add(validity).ok_or(CaError::Clock)?;

        let key = EcKey::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, common_name.clone());
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.name_constraints = constraints.to_rcgen();
        params.serial_number = Some(random_serial());
        set_validity(&mut params, not_before, not_after)?;
        let cert = params.self_signed(&key).map_err(|e| CaError::Issue(e.to_string()))?;
        let cert_der = cert.der().clone();
        let issuer = Issuer::new(params, key);
        let parts = CaParts {
            cert_der,
            subject: format!("CN={common_name}"),
            not_before,
            not_after,
            constraints,
            issuer,
            leaf_aki: true,
        };
        Self::assemble(parts, now)
    }

    fn from_pem_at(now: SystemTime, cert_pem: &str, key_pem: &str) -> Result<LocalCa, CaError> {
        let cert_der = decode_cert_pem(cert_pem)?;
        let fields = CertFields::parse(cert_der.as_ref())?;
        let info = CaInfo::from_fields(&fields)?;
        if now < info.not_before {
            return Err(CaError::NotYetValid { not_before: format_time(info.not_before) });
        }
        if now > info.not_after {
            return Err(CaError::Expired { not_after: format_time(info.not_after) });
        }
        let key = EcKey::from_pkcs8(decode_key_pem(key_pem)?)?;
        if key.spki != fields.spki {
            return Err(CaError::KeyMismatch);
        }
        let (distinguished_name, subject) = subject_to_rcgen(fields.subject)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = distinguished_name;
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        // Leaves must name the CA's own key identifier; recomputing it could differ from what another tool wrote.
        params.key_identifier_method = match &info.subject_key_id {
            Some(id) => KeyIdMethod::PreSpecified(id.clone()),
            None => KeyIdMethod::Sha256,
        };
        let parts = CaParts {
            cert_der: cert_der.clone(),
            subject,
            not_before: info.not_before,
            not_after: info.not_after,
            constraints: info.constraints,
            issuer: Issuer::new(params, key),
            leaf_aki: info.subject_key_id.is_some(),
        };
        Self::assemble(parts, now)
    }

    /// Finishes construction (leaf key, fingerprint, cache) and proves the CA works by issuing and verifying a leaf.
    fn assemble(parts: CaParts, now: SystemTime) -> Result<LocalCa, CaError> {
        let ca = LocalCa {
            cert_pem: pem_encode("CERTIFICATE", parts.cert_der.as_ref()).to_string(),
            fingerprint: fingerprint_hex(parts.cert_der.as_ref()),
            cert_der: parts.cert_der,
            subject: parts.subject,
            not_before: parts.not_before,
            not_after: parts.not_after,
            constraints: parts.constraints,
            issuer: parts.issuer,
            leaf_aki: parts.leaf_aki,
            leaf_key: EcKey::generate()?,
            provider: Arc::new(rustls::crypto::ring::default_provider()),
            cache: Mutex::new(LeafCache::new(DEFAULT_CACHE_CAPACITY)),
        };
        ca.self_check(now)?;
        Ok(ca)
    }

    /// Issues one leaf for a host the constraints permit and verifies it with webpki against the CA certificate
    /// alone. This catches a key that does not sign for this certificate, a subject we re-encoded differently, and
    /// constraints we misread, before any tool is handed the CA.
    fn self_check(&self, now: SystemTime) -> Result<(), CaError> {
        let probe = self.constraints.probe_host().ok_or(CaError::NotCa("its name constraints permit no host"))?;
        let leaf = self.issue_leaf(&probe, now)?;
        let end_entity = leaf.key.end_entity_cert().map_err(|e| CaError::SelfCheck(e.to_string()))?;
        let mut roots = RootCertStore::empty();
        roots.add(self.cert_der.clone()).map_err(|e| CaError::Certificate(e.to_string()))?;
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
            .build()
            .map_err(|e| CaError::SelfCheck(e.to_string()))?;
        let name = server_name(&probe)?;
        let at = UnixTime::since_unix_epoch(now.duration_since(UNIX_EPOCH).map_err(|_| CaError::Clock)?);
        verifier.verify_server_cert(end_entity, &[], &name, &[], at).map_err(|e| CaError::SelfCheck(e.to_string()))?;
        Ok(())
    }

    fn server_config_at(&self, host: &HostName, alpn: &[&[u8]], now: SystemTime) -> Result<Arc<ServerConfig>, CaError> {
        // Checked before the cache too: an expired CA must not keep serving cached leaves.
        self.check_can_issue(host, now)?;
        if let Some(bad) = alpn.iter().find(|p| p.is_empty() || p.len() > 255) {
            return Err(CaError::Tls(format!("an ALPN protocol name must be 1 to 255 bytes, not {}", bad.len())));
        }
        let cached_leaf = match self.lock_cache().lookup(host, alpn, now) {
            Lookup::Config(config) => return Ok(config),
            Lookup::Leaf(leaf) => Some(leaf),
            Lookup::Miss => None,
        };
        // Signing happens here, without the lock: a miss for one host never stalls handshakes for others.
        let leaf = match cached_leaf {
            Some(leaf) => leaf,
            None => self.issue_leaf(host, now)?,
        };
        let config = self.build_config(host, leaf.key.clone(), alpn)?;
        Ok(self.lock_cache().insert(host, alpn, leaf, config, now))
    }

    fn check_can_issue(&self, host: &HostName, now: SystemTime) -> Result<(), CaError> {
        if !self.constraints.permits(host) {
            return Err(CaError::HostNotPermitted { host: host.to_string() });
        }
        if now > self.not_after {
            return Err(CaError::Expired { not_after: format_time(self.not_after) });
        }
        Ok(())
    }

    fn issue_leaf(&self, host: &HostName, now: SystemTime) -> Result<Leaf, CaError> {
        self.check_can_issue(host, now)?;
        self.sign_leaf(host, now)
    }

    /// Signs a leaf without the constraint check; only [`Self::issue_leaf`] and tests (which prove that clients
    /// enforce the constraints on their own) call it.
    fn sign_leaf(&self, host: &HostName, now: SystemTime) -> Result<Leaf, CaError> {
        let now = whole_seconds(now)?;
        let not_before = now.checked_sub(BACKDATE).ok_or(CaError::Clock)?.max(self.not_before);
        let not_after = now.checked_add(LEAF_VALIDITY).ok_or(CaError::Clock)?.min(self.not_after);
        let san = match host {
            HostName::Domain(name) => {
                SanType::DnsName(Ia5String::try_from(name.as_str()).map_err(|e| CaError::Issue(e.to_string()))?)
            }
            HostName::Ipv4(addr) => SanType::IpAddress(IpAddr::V4(*addr)),
            HostName::Ipv6(addr) => SanType::IpAddress(IpAddr::V6(*addr)),
        };
        let mut params = CertificateParams::default();
        // Empty subject: the SAN (then marked critical by rcgen, as RFC 5280 requires) is the only name.
        params.distinguished_name = DistinguishedName::new();
        params.subject_alt_names = vec![san];
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        // All leaves share one key, so rcgen's default (a serial derived from the key) would repeat: use random ones.
        params.serial_number = Some(random_serial());
        params.use_authority_key_identifier_extension = self.leaf_aki;
        set_validity(&mut params, not_before, not_after)?;
        let cert = params.signed_by(&self.leaf_key, &self.issuer).map_err(|e| CaError::Issue(e.to_string()))?;
        let key = CertifiedKey::new(vec![cert.der().clone()], self.leaf_key.signer.clone());
        // Refresh at half-life, so a cached leaf always has days left when handed out.
        let remaining = not_after.duration_since(now).unwrap_or_default();
        Ok(Leaf { key: Arc::new(key), refresh_at: now + remaining / 2 })
    }

    fn build_config(
        &self,
        host: &HostName,
        leaf: Arc<CertifiedKey>,
        alpn: &[&[u8]],
    ) -> Result<Arc<ServerConfig>, CaError> {
        let resolver = HostResolver { host: host.clone(), leaf };
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| CaError::Tls(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(resolver));
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        // Each config keeps its own small session store. rustls refuses to resume under another SNI than the
        // session's, and every session in this store was made for `host`, so resumption cannot bypass the SNI check
        // (a store shared across hosts could). Small, because the default preallocates 256 slots per config.
        config.session_storage = ServerSessionMemoryCache::new(SESSIONS_PER_CONFIG);
        Ok(Arc::new(config))
    }

    fn lock_cache(&self) -> MutexGuard<'_, LeafCache> {
        // The cache is consistent after every statement that mutates it, so a panic elsewhere cannot leave it torn.
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for LocalCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalCa")
            .field("subject", &self.subject)
            .field("fingerprint_sha256", &self.fingerprint)
            .field("not_before", &format_time(self.not_before))
            .field("not_after", &format_time(self.not_after))
            .field("name_constraints", &self.constraints.describe())
            .finish_non_exhaustive()
    }
}

/// What `generate` and `from_pem` hand to `assemble`.
struct CaParts {
    cert_der: CertificateDer<'static>,
    subject: String,
    not_before: SystemTime,
    not_after: SystemTime,
    constraints: Constraints,
    issuer: Issuer<'static, EcKey>,
    leaf_aki: bool,
}

fn ca_common_name(install_id: &str) -> Result<String, CaError> {
    if install_id.is_empty() {
        return Err(CaError::InstallId("it is empty"));
    }
    if install_id.len() > MAX_INSTALL_ID_LEN {
        return Err(CaError::InstallId("longer than 47 characters (a common name holds 64)"));
    }
    if !install_id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':')) {
        return Err(CaError::InstallId("only letters, digits, '-', '_', '.' and ':' are allowed"));
    }
    Ok(format!("{CN_PREFIX}{install_id}"))
}

// ---------------------------------------------------------------------------------------------------------------
// Leaves, the SNI check, and the cache
// ---------------------------------------------------------------------------------------------------------------

#[derive(Clone)]
struct Leaf {
    key: Arc<CertifiedKey>,
    refresh_at: SystemTime,
}

/// Presents the leaf only to a ClientHello that asks for the host it was issued for.
struct HostResolver {
    host: HostName,
    leaf: Arc<CertifiedKey>,
}

impl fmt::Debug for HostResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostResolver").field("host", &self.host.to_string()).finish_non_exhaustive()
    }
}

impl ResolvesServerCert for HostResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // No certificate means rustls aborts the handshake with an alert.
        sni_matches(&self.host, client_hello.server_name()).then(|| self.leaf.clone())
    }
}

/// Whether a ClientHello's SNI fits `host`. A domain needs its own name (case-insensitive, one trailing dot
/// tolerated); an IP host accepts a missing SNI (clients do not send IP addresses in SNI) or its own address.
fn sni_matches(host: &HostName, sni: Option<&str>) -> bool {
    match (host, sni) {
        (HostName::Domain(name), Some(sni)) => sni.strip_suffix('.').unwrap_or(sni).eq_ignore_ascii_case(name),
        (HostName::Domain(_), None) => false,
        (HostName::Ipv4(_) | HostName::Ipv6(_), None) => true,
        (HostName::Ipv4(addr), Some(sni)) => sni.parse::<Ipv4Addr>().is_ok_and(|s| s == *addr),
        (HostName::Ipv6(addr), Some(sni)) => {
            let bare = sni.strip_prefix('[').and_then(|s| s.strip_suffix(']')).unwrap_or(sni);
            bare.parse::<Ipv6Addr>().is_ok_and(|s| s == *addr)
        }
    }
}

enum Lookup {
    Config(Arc<ServerConfig>),
    Leaf(Leaf),
    Miss,
}

struct CacheEntry {
    leaf: Leaf,
    /// Server configs for this leaf, one per ALPN list.
    configs: Vec<(Vec<Vec<u8>>, Arc<ServerConfig>)>,
    last_used: u64,
}

impl CacheEntry {
    fn config_for(&self, alpn: &[&[u8]]) -> Option<&Arc<ServerConfig>> {
        self.configs.iter().find(|(stored, _)| same_alpn(stored, alpn)).map(|(_, config)| config)
    }
}

fn same_alpn(stored: &[Vec<u8>], alpn: &[&[u8]]) -> bool {
    stored.len() == alpn.len() && stored.iter().zip(alpn).all(|(a, b)| a.as_slice() == *b)
}

/// A small LRU: a map plus a use counter. Eviction scans for the oldest entry, which costs microseconds at 1024
/// entries and only happens on a miss, next to a signature that costs far more.
struct LeafCache {
    capacity: usize,
    tick: u64,
    entries: HashMap<HostName, CacheEntry>,
}

impl LeafCache {
    fn new(capacity: usize) -> LeafCache {
        LeafCache { capacity: capacity.max(1), tick: 0, entries: HashMap::new() }
    }

    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    fn lookup(&mut self, host: &HostName, alpn: &[&[u8]], now: SystemTime) -> Lookup {
        let tick = self.next_tick();
        match self.entries.get_mut(host) {
            Some(entry) if now < entry.leaf.refresh_at => {
                entry.last_used = tick;
                match entry.config_for(alpn) {
                    Some(config) => Lookup::Config(config.clone()),
                    None => Lookup::Leaf(entry.leaf.clone()),
                }
            }
            _ => Lookup::Miss,
        }
    }

    /// Stores a freshly built config and returns the one callers should use: if another thread stored a config for
    /// the same host and ALPN meanwhile, that one wins, so every caller sees the same `Arc`.
    fn insert(
        &mut self,
        host: &HostName,
        alpn: &[&[u8]],
        leaf: Leaf,
        config: Arc<ServerConfig>,
        now: SystemTime,
    ) -> Arc<ServerConfig> {
        let tick = self.next_tick();
        let alpn_owned: Vec<Vec<u8>> = alpn.iter().map(|p| p.to_vec()).collect();
        if let Some(entry) = self.entries.get_mut(host)
            && now < entry.leaf.refresh_at
        {
            entry.last_used = tick;
            if let Some(existing) = entry.config_for(alpn) {
                return existing.clone();
            }
            if entry.configs.len() >= MAX_CONFIGS_PER_HOST {
                entry.configs.remove(0);
            }
            entry.configs.push((alpn_owned, config.clone()));
            return config;
        }
        if !self.entries.contains_key(host) && self.entries.len() >= self.capacity {
            let oldest = self.entries.iter().min_by_key(|(_, entry)| entry.last_used).map(|(h, _)| h.clone());
            if let Some(oldest) = oldest {
                self.entries.remove(&oldest);
            }
        }
        let entry = CacheEntry { leaf, configs: vec![(alpn_owned, config.clone())], last_used: tick };
        self.entries.insert(host.clone(), entry);
        config
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Keys: one type for the CA key and the leaf key, signing through rustls's ring provider
// ---------------------------------------------------------------------------------------------------------------

/// An ECDSA key (P-256, or P-384 for a loaded CA). Signing goes through rustls's ring signer rather than rcgen's
/// `KeyPair`, so that the only PKCS#8 copy we keep is this zeroizing one.
struct EcKey {
    pkcs8: Zeroizing<Vec<u8>>,
    signer: Arc<dyn rustls::sign::SigningKey>,
    scheme: SignatureScheme,
    alg: &'static rcgen::SignatureAlgorithm,
    /// The uncompressed public point (what rcgen's `PublicKeyData::der_bytes` means).
    public_point: Vec<u8>,
    /// SubjectPublicKeyInfo DER, compared with a certificate's to prove the key belongs to it.
    spki: Vec<u8>,
}

impl EcKey {
    fn generate() -> Result<EcKey, CaError> {
        // ring generates through rcgen only; copy the PKCS#8 out at once and drop rcgen's copy.
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| CaError::Issue(format!("key generation: {e}")))?;
        let pkcs8 = Zeroizing::new(pair.serialized_der().to_vec());
        drop(pair);
        EcKey::from_pkcs8(pkcs8)
    }

    fn from_pkcs8(pkcs8: Zeroizing<Vec<u8>>) -> Result<EcKey, CaError> {
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8.as_slice()));
        let signer = rustls::crypto::ring::sign::any_ecdsa_type(&der)
            .map_err(|_| CaError::Key("not an ECDSA P-256 or P-384 private key in PKCS#8 form"))?;
        let (scheme, alg) = if signer.choose_scheme(&[SignatureScheme::ECDSA_NISTP256_SHA256]).is_some() {
            (SignatureScheme::ECDSA_NISTP256_SHA256, &rcgen::PKCS_ECDSA_P256_SHA256)
        } else if signer.choose_scheme(&[SignatureScheme::ECDSA_NISTP384_SHA384]).is_some() {
            (SignatureScheme::ECDSA_NISTP384_SHA384, &rcgen::PKCS_ECDSA_P384_SHA384)
        } else {
            return Err(CaError::Key("unsupported ECDSA curve (P-256 or P-384 only)"));
        };
        let spki = signer.public_key().ok_or(CaError::Key("its public key cannot be derived"))?.as_ref().to_vec();
        let public_point = spki_public_point(&spki).ok_or(CaError::Key("its public key cannot be derived"))?.to_vec();
        Ok(EcKey { pkcs8, signer, scheme, alg, public_point, spki })
    }
}

impl fmt::Debug for EcKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EcKey").field("scheme", &self.scheme).finish_non_exhaustive()
    }
}

impl rcgen::PublicKeyData for EcKey {
    fn der_bytes(&self) -> &[u8] {
        &self.public_point
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.alg
    }
}

impl rcgen::SigningKey for EcKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        // rustls's ECDSA signers produce ASN.1 (DER) signatures, which is what X.509 wants.
        let signer = self.signer.choose_scheme(&[self.scheme]).ok_or(rcgen::Error::RemoteKeyError)?;
        signer.sign(msg).map_err(|_| rcgen::Error::RemoteKeyError)
    }
}

/// The BIT STRING contents of a SubjectPublicKeyInfo, without the unused-bits octet.
fn spki_public_point(spki: &[u8]) -> Option<&[u8]> {
    let mut outer = Der::new(spki);
    let seq = outer.expect(TAG_SEQUENCE).ok()?;
    let mut inner = Der::new(seq.content);
    inner.expect(TAG_SEQUENCE).ok()?;
    let bits = inner.expect(TAG_BIT_STRING).ok()?;
    match bits.content.split_first() {
        Some((0, point)) if !point.is_empty() => Some(point),
        _ => None,
    }
}

fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    airlock_crypto::random::fill(&mut bytes);
    // Positive, and no leading zero octet, so the INTEGER is always 16 octets with 126 random bits.
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    SerialNumber::from_slice(&bytes)
}

fn fingerprint_hex(der: &[u8]) -> String {
    let digest = airlock_crypto::kdf::sha256(der);
    let mut out = String::with_capacity(digest.len() * 3);
    for (i, byte) in digest.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        out.push_str(&format!("{byte:02X}"));
    }
    out
}

fn server_name(host: &HostName) -> Result<ServerName<'static>, CaError> {
    match host {
        HostName::Domain(name) => {
            ServerName::try_from(name.clone()).map_err(|_| CaError::Issue(format!("{name} is not a valid DNS name")))
        }
        HostName::Ipv4(addr) => Ok(ServerName::IpAddress(IpAddr::V4(*addr).into())),
        HostName::Ipv6(addr) => Ok(ServerName::IpAddress(IpAddr::V6(*addr).into())),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Name constraints
// ---------------------------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum IpNet {
    V4([u8; 4], [u8; 4]),
    V6([u8; 16], [u8; 16]),
}

impl IpNet {
    fn from_prefix(addr: IpAddr, prefix: u8) -> IpNet {
        match addr {
            IpAddr::V4(a) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(prefix.min(32))).unwrap_or(0);
                IpNet::V4((u32::from(a) & mask).to_be_bytes(), mask.to_be_bytes())
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(prefix.min(128))).unwrap_or(0);
                IpNet::V6((u128::from(a) & mask).to_be_bytes(), mask.to_be_bytes())
            }
        }
    }

    /// An iPAddress name constraint: address then mask, 8 or 32 octets.
    fn from_constraint_octets(octets: &[u8]) -> Option<IpNet> {
        if let Ok(both) = <[u8; 8]>::try_from(octets) {
            let (addr, mask) = both.split_at(4);
            return Some(IpNet::V4(addr.try_into().ok()?, mask.try_into().ok()?));
        }
        if let Ok(both) = <[u8; 32]>::try_from(octets) {
            let (addr, mask) = both.split_at(16);
            return Some(IpNet::V6(addr.try_into().ok()?, mask.try_into().ok()?));
        }
        None
    }

    /// RFC 5280: an IPv4 constraint only ever matches IPv4 addresses, and likewise for IPv6.
    fn contains(&self, addr: IpAddr) -> bool {
        fn masked_eq(net: &[u8], mask: &[u8], addr: &[u8]) -> bool {
            net.iter().zip(mask).zip(addr).all(|((n, m), a)| n & m == a & m)
        }
        match (self, addr) {
            (IpNet::V4(net, mask), IpAddr::V4(a)) => masked_eq(net, mask, &a.octets()),
            (IpNet::V6(net, mask), IpAddr::V6(a)) => masked_eq(net, mask, &a.octets()),
            _ => false,
        }
    }

    fn base(&self) -> IpAddr {
        match self {
            IpNet::V4(net, _) => IpAddr::V4(Ipv4Addr::from(*net)),
            IpNet::V6(net, _) => IpAddr::V6(Ipv6Addr::from(*net)),
        }
    }

    fn to_rcgen(self) -> GeneralSubtree {
        match self {
            IpNet::V4(net, mask) => GeneralSubtree::IpAddress(CidrSubnet::V4(net, mask)),
            IpNet::V6(net, mask) => GeneralSubtree::IpAddress(CidrSubnet::V6(net, mask)),
        }
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ones: u32 = match self {
            IpNet::V4(_, mask) => mask.iter().map(|b| b.count_ones()).sum(),
            IpNet::V6(_, mask) => mask.iter().map(|b| b.count_ones()).sum(),
        };
        write!(f, "{}/{ones}", self.base())
    }
}

/// The DNS and IP parts of a name-constraints extension; other name types do not affect host certificates.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Constraints {
    permitted_dns: Vec<String>,
    excluded_dns: Vec<String>,
    permitted_ip: Vec<IpNet>,
    excluded_ip: Vec<IpNet>,
}

/// The RFC 6761 reserved domain that stands in for "no DNS names" in an IP-only permitted list.
const NO_DNS_NAMES: &str = "invalid";

impl Constraints {
    fn from_config(list: &[String]) -> Result<Constraints, CaError> {
        if list.is_empty() {
            return Err(CaError::Constraint {
                entry: String::new(),
                reason: "an empty permitted list lets the CA sign nothing; pass None for an unconstrained CA".into(),
            });
        }
        let mut constraints = Constraints::default();
        for raw in list {
            let entry = raw.trim();
            let refuse = |reason: &str| CaError::Constraint { entry: raw.clone(), reason: reason.to_owned() };
            if entry.is_empty() {
                return Err(refuse("empty entry"));
            }
            if let Some(net) = parse_ip_entry(entry).map_err(refuse)? {
                if !constraints.permitted_ip.contains(&net) {
                    constraints.permitted_ip.push(net);
                }
                continue;
            }
            let name = parse_dns_entry(entry).map_err(|reason| refuse(&reason))?;
            if !constraints.permitted_dns.contains(&name) {
                constraints.permitted_dns.push(name);
            }
        }
        if constraints.permitted_ip.is_empty() {
            constraints.excluded_ip = vec![
                IpNet::from_prefix(Ipv4Addr::UNSPECIFIED.into(), 0),
                IpNet::from_prefix(Ipv6Addr::UNSPECIFIED.into(), 0),
            ];
        }
        if constraints.permitted_dns.is_empty() {
            constraints.permitted_dns.push(NO_DNS_NAMES.to_owned());
        }
        Ok(constraints)
    }

    fn is_empty(&self) -> bool {
        self.permitted_dns.is_empty()
            && self.excluded_dns.is_empty()
            && self.permitted_ip.is_empty()
            && self.excluded_ip.is_empty()
    }

    fn to_rcgen(&self) -> Option<NameConstraints> {
        if self.is_empty() {
            return None;
        }
        let dns = |names: &[String]| names.iter().map(|n| GeneralSubtree::DnsName(n.clone())).collect::<Vec<_>>();
        let mut permitted_subtrees = dns(&self.permitted_dns);
        permitted_subtrees.extend(self.permitted_ip.iter().map(|net| net.to_rcgen()));
        let mut excluded_subtrees = dns(&self.excluded_dns);
        excluded_subtrees.extend(self.excluded_ip.iter().map(|net| net.to_rcgen()));
        Some(NameConstraints { permitted_subtrees, excluded_subtrees })
    }

    /// RFC 5280 semantics: a name is refused if an excluded subtree of its type matches, or if there are permitted
    /// subtrees of its type and none matches.
    fn permits(&self, host: &HostName) -> bool {
        match host {
            HostName::Domain(name) => {
                !self.excluded_dns.iter().any(|c| dns_within(name, c))
                    && (self.permitted_dns.is_empty() || self.permitted_dns.iter().any(|c| dns_within(name, c)))
            }
            HostName::Ipv4(addr) => self.permits_ip(IpAddr::V4(*addr)),
            HostName::Ipv6(addr) => self.permits_ip(IpAddr::V6(*addr)),
        }
    }

    /// IPv4 and IPv6 are one name type: an IPv6-only permitted list refuses every IPv4 address (as webpki and
    /// OpenSSL do).
    fn permits_ip(&self, addr: IpAddr) -> bool {
        !self.excluded_ip.iter().any(|net| net.contains(addr))
            && (self.permitted_ip.is_empty() || self.permitted_ip.iter().any(|net| net.contains(addr)))
    }

    /// Some host the constraints permit, to issue the self-check leaf for.
    fn probe_host(&self) -> Option<HostName> {
        let dns = self.permitted_dns.iter().filter_map(|c| {
            let name = c.trim_start_matches('.').trim_end_matches('.').to_ascii_lowercase();
            (!name.is_empty()).then_some(HostName::Domain(name))
        });
        let fallback = std::iter::once(HostName::Domain("airlock-self-check.invalid".to_owned()));
        let ips = self.permitted_ip.iter().map(|net| match net.base() {
            IpAddr::V4(a) => HostName::Ipv4(a),
            IpAddr::V6(a) => HostName::Ipv6(a),
        });
        dns.chain(fallback).chain(ips).find(|host| self.permits(host))
    }

    fn describe(&self) -> Vec<String> {
        let mut out: Vec<String> = self.permitted_dns.iter().map(|d| format!("permit {d}")).collect();
        out.extend(self.permitted_ip.iter().map(|n| format!("permit {n}")));
        out.extend(self.excluded_dns.iter().map(|d| format!("exclude {d}")));
        out.extend(self.excluded_ip.iter().map(|n| format!("exclude {n}")));
        out
    }
}

/// `10.0.0.0/8`, `2001:db8::/32`, `192.0.2.7`, `[::1]`; `Ok(None)` when the entry is not IP-shaped at all.
fn parse_ip_entry(entry: &str) -> Result<Option<IpNet>, &'static str> {
    let unbracket = |s: &str| s.strip_prefix('[').and_then(|s| s.strip_suffix(']')).map(str::to_owned);
    if let Some((addr, prefix)) = entry.split_once('/') {
        let addr = unbracket(addr).unwrap_or_else(|| addr.to_owned());
        let addr: IpAddr = addr.parse().map_err(|_| "not an IP range (expected ADDRESS/PREFIX)")?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix: u8 = prefix.parse().map_err(|_| "the prefix length is not a number")?;
        if prefix > max {
            return Err("the prefix length is longer than the address");
        }
        let net = IpNet::from_prefix(addr, prefix);
        if net.base() != addr {
            return Err("the address has bits set past the prefix; write the network address");
        }
        return Ok(Some(net));
    }
    let bare = unbracket(entry).unwrap_or_else(|| entry.to_owned());
    Ok(bare.parse::<IpAddr>().ok().map(|addr| IpNet::from_prefix(addr, if addr.is_ipv4() { 32 } else { 128 })))
}

fn parse_dns_entry(entry: &str) -> Result<String, String> {
    if entry.starts_with("*.") || entry.starts_with('.') {
        return Err("write the bare domain: a DNS constraint already covers every name under it".into());
    }
    match HostName::parse(entry) {
        Ok(HostName::Domain(name)) => Ok(name),
        Ok(_) => Err("reads as an IP address in an unusual notation; write it as a plain address or range".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// RFC 5280 dNSName matching: `example.com` covers itself and every name under it. A leading dot (a non-standard
/// spelling some tools write) covers only names under it; an empty constraint covers every name.
fn dns_within(name: &str, constraint: &str) -> bool {
    let name = name.as_bytes();
    let constraint = constraint.as_bytes();
    let constraint = constraint.strip_suffix(b".").unwrap_or(constraint);
    if constraint.is_empty() {
        return true;
    }
    let ends_with =
        |suffix: &[u8]| name.len() >= suffix.len() && name[name.len() - suffix.len()..].eq_ignore_ascii_case(suffix);
    if constraint.first() == Some(&b'.') {
        return name.len() > constraint.len() && ends_with(constraint);
    }
    if name.eq_ignore_ascii_case(constraint) {
        return true;
    }
    name.len() > constraint.len() && ends_with(constraint) && name[name.len() - constraint.len() - 1] == b'.'
}

// ---------------------------------------------------------------------------------------------------------------
// Reading a CA certificate (DER). rcgen can only parse certificates with its `x509-parser` feature, which this
// crate does not enable, so this is a small reader for exactly the fields a CA needs.
// ---------------------------------------------------------------------------------------------------------------

const TAG_BOOLEAN: u8 = 0x01;
const TAG_INTEGER: u8 = 0x02;
const TAG_BIT_STRING: u8 = 0x03;
const TAG_OCTET_STRING: u8 = 0x04;
const TAG_OID: u8 = 0x06;
const TAG_UTF8_STRING: u8 = 0x0c;
const TAG_PRINTABLE_STRING: u8 = 0x13;
const TAG_IA5_STRING: u8 = 0x16;
const TAG_UTC_TIME: u8 = 0x17;
const TAG_GENERALIZED_TIME: u8 = 0x18;
const TAG_SEQUENCE: u8 = 0x30;
const TAG_SET: u8 = 0x31;

const OID_SUBJECT_KEY_ID: &[u8] = &[0x55, 0x1d, 0x0e];
const OID_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x0f];
const OID_BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];
const OID_NAME_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x1e];

/// A malformed-DER complaint; it names the field, never the bytes.
#[derive(Debug)]
struct DerError(&'static str);

impl From<DerError> for CaError {
    fn from(e: DerError) -> CaError {
        CaError::Certificate(format!("malformed certificate: {}", e.0))
    }
}

struct Tlv<'a> {
    tag: u8,
    content: &'a [u8],
    /// Tag, length and content together.
    whole: &'a [u8],
}

struct Der<'a> {
    rest: &'a [u8],
}

impl<'a> Der<'a> {
    fn new(data: &'a [u8]) -> Der<'a> {
        Der { rest: data }
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    fn next(&mut self) -> Result<Tlv<'a>, DerError> {
        let all = self.rest;
        let (&tag, after_tag) = all.split_first().ok_or(DerError("truncated"))?;
        if tag & 0x1f == 0x1f {
            return Err(DerError("multi-byte tag"));
        }
        let (&first, after_len) = after_tag.split_first().ok_or(DerError("truncated"))?;
        let (len, body) = if first < 0x80 {
            (usize::from(first), after_len)
        } else {
            let count = usize::from(first & 0x7f);
            // 0x80 is BER's indefinite length; more than 4 length octets is never a certificate.
            if count == 0 || count > 4 || after_len.len() < count {
                return Err(DerError("bad length"));
            }
            let (octets, body) = after_len.split_at(count);
            (octets.iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b)), body)
        };
        if body.len() < len {
            return Err(DerError("truncated"));
        }
        let (content, rest) = body.split_at(len);
        let header = all.len() - body.len();
        let whole = all.get(..header + len).ok_or(DerError("truncated"))?;
        self.rest = rest;
        Ok(Tlv { tag, content, whole })
    }

    fn expect(&mut self, tag: u8) -> Result<Tlv<'a>, DerError> {
        let tlv = self.next()?;
        if tlv.tag == tag { Ok(tlv) } else { Err(DerError("unexpected field")) }
    }

    fn optional(&mut self, tag: u8) -> Result<Option<Tlv<'a>>, DerError> {
        if self.rest.first() == Some(&tag) { self.next().map(Some) } else { Ok(None) }
    }
}

struct Extension<'a> {
    oid: &'a [u8],
    critical: bool,
    value: &'a [u8],
}

/// The parts of a certificate this module reads.
struct CertFields<'a> {
    #[cfg_attr(not(test), allow(dead_code))]
    issuer: &'a [u8],
    /// The Name SEQUENCE, whole.
    subject: &'a [u8],
    not_before: SystemTime,
    not_after: SystemTime,
    /// The SubjectPublicKeyInfo SEQUENCE, whole.
    spki: &'a [u8],
    extensions: Vec<Extension<'a>>,
}

impl<'a> CertFields<'a> {
    fn parse(der: &'a [u8]) -> Result<CertFields<'a>, DerError> {
        let mut outer = Der::new(der);
        let cert = outer.expect(TAG_SEQUENCE)?;
        if !outer.is_empty() {
            return Err(DerError("trailing data"));
        }
        let mut cert = Der::new(cert.content);
        let tbs = cert.expect(TAG_SEQUENCE)?;
        let mut tbs = Der::new(tbs.content);
        let version = tbs.optional(0xa0)?.ok_or(DerError("not an X.509 v3 certificate"))?;
        if Der::new(version.content).expect(TAG_INTEGER)?.content != [2] {
            return Err(DerError("not an X.509 v3 certificate"));
        }
        tbs.expect(TAG_INTEGER)?;
        tbs.expect(TAG_SEQUENCE)?;
        let issuer = tbs.expect(TAG_SEQUENCE)?.whole;
        let validity = tbs.expect(TAG_SEQUENCE)?;
        let mut validity = Der::new(validity.content);
        let not_before = parse_time(&validity.next()?)?;
        let not_after = parse_time(&validity.next()?)?;
        let subject = tbs.expect(TAG_SEQUENCE)?.whole;
        let spki = tbs.expect(TAG_SEQUENCE)?.whole;
        tbs.optional(0x81)?;
        tbs.optional(0x82)?;
        let mut extensions = Vec::new();
        if let Some(wrapper) = tbs.optional(0xa3)? {
            let list = Der::new(wrapper.content).expect(TAG_SEQUENCE)?;
            let mut list = Der::new(list.content);
            while !list.is_empty() {
                let ext = list.expect(TAG_SEQUENCE)?;
                let mut ext = Der::new(ext.content);
                let oid = ext.expect(TAG_OID)?.content;
                let critical = match ext.optional(TAG_BOOLEAN)? {
                    Some(flag) => flag.content.first().is_some_and(|&b| b != 0),
                    None => false,
                };
                let value = ext.expect(TAG_OCTET_STRING)?.content;
                if extensions.iter().any(|e: &Extension<'_>| e.oid == oid) {
                    return Err(DerError("duplicate extension"));
                }
                extensions.push(Extension { oid, critical, value });
            }
        }
        if !tbs.is_empty() {
            return Err(DerError("trailing data in the certificate body"));
        }
        Ok(CertFields { issuer, subject, not_before, not_after, spki, extensions })
    }

    fn extension(&self, oid: &[u8]) -> Option<&Extension<'a>> {
        self.extensions.iter().find(|e| e.oid == oid)
    }
}

/// What makes a certificate usable as our CA.
struct CaInfo {
    not_before: SystemTime,
    not_after: SystemTime,
    subject_key_id: Option<Vec<u8>>,
    constraints: Constraints,
}

impl CaInfo {
    fn from_fields(fields: &CertFields<'_>) -> Result<CaInfo, CaError> {
        let known = [OID_SUBJECT_KEY_ID, OID_KEY_USAGE, OID_BASIC_CONSTRAINTS, OID_NAME_CONSTRAINTS];
        if fields.extensions.iter().any(|e| e.critical && !known.contains(&e.oid)) {
            return Err(CaError::NotCa("it has a critical extension this module does not understand"));
        }
        let basic = fields.extension(OID_BASIC_CONSTRAINTS).ok_or(CaError::NotCa("it has no basicConstraints"))?;
        let basic = Der::new(basic.value).expect(TAG_SEQUENCE)?;
        let is_ca = match Der::new(basic.content).optional(TAG_BOOLEAN)? {
            Some(flag) => flag.content.first().is_some_and(|&b| b != 0),
            None => false,
        };
        if !is_ca {
            return Err(CaError::NotCa("basicConstraints does not say CA:true"));
        }
        if let Some(usage) = fields.extension(OID_KEY_USAGE) {
            let bits = Der::new(usage.value).expect(TAG_BIT_STRING)?;
            // keyCertSign is bit 5: 0x04 in the first octet after the unused-bits count.
            if bits.content.get(1).is_none_or(|first| first & 0x04 == 0) {
                return Err(CaError::NotCa("its keyUsage does not include keyCertSign"));
            }
        }
        let subject_key_id = match fields.extension(OID_SUBJECT_KEY_ID) {
            Some(ski) => Some(Der::new(ski.value).expect(TAG_OCTET_STRING)?.content.to_vec()),
            None => None,
        };
        let constraints = match fields.extension(OID_NAME_CONSTRAINTS) {
            Some(nc) => parse_name_constraints(nc.value)?,
            None => Constraints::default(),
        };
        Ok(CaInfo { not_before: fields.not_before, not_after: fields.not_after, subject_key_id, constraints })
    }
}

fn parse_name_constraints(value: &[u8]) -> Result<Constraints, DerError> {
    let seq = Der::new(value).expect(TAG_SEQUENCE)?;
    let mut parts = Der::new(seq.content);
    let mut constraints = Constraints::default();
    while !parts.is_empty() {
        let part = parts.next()?;
        let (dns, ip) = match part.tag {
            0xa0 => (&mut constraints.permitted_dns, &mut constraints.permitted_ip),
            0xa1 => (&mut constraints.excluded_dns, &mut constraints.excluded_ip),
            _ => return Err(DerError("name constraints")),
        };
        let mut subtrees = Der::new(part.content);
        while !subtrees.is_empty() {
            let subtree = subtrees.expect(TAG_SEQUENCE)?;
            let base = Der::new(subtree.content).next()?;
            match base.tag {
                // dNSName [2] IA5String
                0x82 => {
                    let name = std::str::from_utf8(base.content)
                        .ok()
                        .filter(|s| s.is_ascii())
                        .ok_or(DerError("non-ASCII DNS name constraint"))?;
                    dns.push(name.to_owned());
                }
                // iPAddress [7] OCTET STRING: address and mask
                0x87 => ip.push(IpNet::from_constraint_octets(base.content).ok_or(DerError("IP name constraint"))?),
                // Other name types (email, directory name, URI) never apply to a host certificate's SAN.
                _ => {}
            }
        }
    }
    Ok(constraints)
}

/// Rebuilds a subject Name as rcgen's `DistinguishedName`, so that leaves name their issuer byte for byte (the
/// self-check proves it), and returns a printable form.
fn subject_to_rcgen(subject: &[u8]) -> Result<(DistinguishedName, String), CaError> {
    let unsupported = |what: &str| CaError::Certificate(format!("unsupported subject: {what}"));
    let name = Der::new(subject).expect(TAG_SEQUENCE)?;
    let mut rdns = Der::new(name.content);
    let mut dn = DistinguishedName::new();
    let mut printable = Vec::new();
    if rdns.is_empty() {
        return Err(unsupported("it is empty"));
    }
    while !rdns.is_empty() {
        let rdn = rdns.expect(TAG_SET)?;
        let mut attributes = Der::new(rdn.content);
        let attribute = attributes.expect(TAG_SEQUENCE)?;
        if !attributes.is_empty() {
            return Err(unsupported("a multi-valued RDN"));
        }
        let mut attribute = Der::new(attribute.content);
        let oid = decode_oid(attribute.expect(TAG_OID)?.content)?;
        let value = attribute.next()?;
        let text = std::str::from_utf8(value.content).map_err(|_| unsupported("an attribute that is not text"))?;
        let ty = DnType::from_oid(&oid);
        if dn.get(&ty).is_some() {
            return Err(unsupported("a repeated attribute type"));
        }
        let dn_value = match value.tag {
            TAG_UTF8_STRING => DnValue::Utf8String(text.to_owned()),
            TAG_PRINTABLE_STRING => DnValue::PrintableString(
                PrintableString::try_from(text).map_err(|_| unsupported("an invalid PrintableString"))?,
            ),
            TAG_IA5_STRING => {
                DnValue::Ia5String(Ia5String::try_from(text).map_err(|_| unsupported("an invalid IA5String"))?)
            }
            _ => return Err(unsupported("a string type other than UTF8String, PrintableString or IA5String")),
        };
        let label = match oid.as_slice() {
            [2, 5, 4, 3] => "CN".to_owned(),
            [2, 5, 4, 6] => "C".to_owned(),
            [2, 5, 4, 7] => "L".to_owned(),
            [2, 5, 4, 8] => "ST".to_owned(),
            [2, 5, 4, 10] => "O".to_owned(),
            [2, 5, 4, 11] => "OU".to_owned(),
            other => other.iter().map(u64::to_string).collect::<Vec<_>>().join("."),
        };
        printable.push(format!("{label}={text}"));
        dn.push(ty, dn_value);
    }
    Ok((dn, printable.join(", ")))
}

fn decode_oid(bytes: &[u8]) -> Result<Vec<u64>, DerError> {
    if bytes.is_empty() || bytes.last().is_some_and(|b| b & 0x80 != 0) {
        return Err(DerError("object identifier"));
    }
    let mut arcs = Vec::new();
    let mut acc: u64 = 0;
    for &b in bytes {
        if acc > (u64::MAX >> 7) {
            return Err(DerError("object identifier"));
        }
        acc = (acc << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (acc / 40).min(2);
                arcs.push(first);
                arcs.push(acc - first * 40);
            } else {
                arcs.push(acc);
            }
            acc = 0;
        }
    }
    Ok(arcs)
}

// ---------------------------------------------------------------------------------------------------------------
// Time. rcgen takes `time::OffsetDateTime`, a crate this one does not name; `date_time_ymd(1970, 1, 1)` plus a
// `std::time::Duration` produces one without it.
// ---------------------------------------------------------------------------------------------------------------

fn whole_seconds(t: SystemTime) -> Result<SystemTime, CaError> {
    let secs = t.duration_since(UNIX_EPOCH).map_err(|_| CaError::Clock)?.as_secs();
    if secs > MAX_CERT_UNIX_SECS {
        return Err(CaError::Clock);
    }
    Ok(UNIX_EPOCH + Duration::from_secs(secs))
}

fn set_validity(params: &mut CertificateParams, not_before: SystemTime, not_after: SystemTime) -> Result<(), CaError> {
    let since_epoch = |t: SystemTime| -> Result<Duration, CaError> {
        let secs = whole_seconds(t)?.duration_since(UNIX_EPOCH).map_err(|_| CaError::Clock)?;
        Ok(secs)
    };
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    params.not_before = epoch + since_epoch(not_before)?;
    params.not_after = epoch + since_epoch(not_after)?;
    Ok(())
}

/// UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`), the only forms RFC 5280 allows.
fn parse_time(tlv: &Tlv<'_>) -> Result<SystemTime, DerError> {
    let bad = DerError("validity time");
    let text = tlv.content;
    let (year, rest) = match (tlv.tag, text.len()) {
        (TAG_UTC_TIME, 13) => {
            let yy = digits(text.get(..2))?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, text.get(2..).ok_or(bad)?)
        }
        (TAG_GENERALIZED_TIME, 15) => (digits(text.get(..4))?, text.get(4..).ok_or(bad)?),
        _ => return Err(bad),
    };
    if rest.get(10) != Some(&b'Z') {
        return Err(DerError("validity time"));
    }
    let month = digits(rest.get(0..2))?;
    let day = digits(rest.get(2..4))?;
    let hour = digits(rest.get(4..6))?;
    let minute = digits(rest.get(6..8))?;
    let second = digits(rest.get(8..10))?;
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err(DerError("validity time"));
    }
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    let secs = u64::try_from(secs).map_err(|_| DerError("validity time before 1970"))?;
    Ok(UNIX_EPOCH + Duration::from_secs(secs))
}

fn digits(text: Option<&[u8]>) -> Result<i64, DerError> {
    let text = text.ok_or(DerError("validity time"))?;
    text.iter().try_fold(0i64, |acc, &b| {
        if b.is_ascii_digit() { Ok(acc * 10 + i64::from(b - b'0')) } else { Err(DerError("validity time")) }
    })
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 (proleptic Gregorian; H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// RFC 3339 UTC, to the second.
fn format_time(t: SystemTime) -> String {
    let secs = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX / 2),
    };
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

// ---------------------------------------------------------------------------------------------------------------
// PEM. Hand-written so that key bytes only ever pass through zeroizing buffers.
// ---------------------------------------------------------------------------------------------------------------

const BASE64_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Exact length of [`pem_encode`]'s output.
fn pem_len(label: &str, der_len: usize) -> usize {
    let body = der_len.div_ceil(3) * 4;
    ("-----BEGIN -----\n".len() + "-----END -----\n".len() + 2 * label.len()) + body + body.div_ceil(64)
}

/// PEM with 64-character lines and LF endings, built in one pre-sized zeroizing buffer (no reallocation leaves a
/// stray copy behind).
fn pem_encode(label: &str, der: &[u8]) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(pem_len(label, der.len())));
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for line in der.chunks(48) {
        for group in line.chunks(3) {
            let b = [group[0], group.get(1).copied().unwrap_or(0), group.get(2).copied().unwrap_or(0)];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= group.len() {
                    out.push(char::from(BASE64_ALPHABET[((n >> (18 - 6 * i)) & 0x3f) as usize]));
                } else {
                    out.push('=');
                }
            }
        }
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

fn decode_cert_pem(pem: &str) -> Result<CertificateDer<'static>, CaError> {
    // pki-types' errors can quote a line of the input; they are replaced, in case a key was passed by mistake.
    let mut certs = Vec::new();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        certs.push(cert.map_err(|_| CaError::Certificate("the PEM is malformed".into()))?);
    }
    match certs.len() {
        0 => Err(CaError::Certificate("no CERTIFICATE block found in the PEM".into())),
        1 => Ok(certs.remove(0)),
        n => Err(CaError::Certificate(format!("expected exactly one certificate, found {n}"))),
    }
}

/// One `-----BEGIN PRIVATE KEY-----` block (unencrypted PKCS#8) into zeroizing DER.
fn decode_key_pem(pem: &str) -> Result<Zeroizing<Vec<u8>>, CaError> {
    const BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
    const END: &str = "-----END PRIVATE KEY-----";
    let Some(start) = pem.find(BEGIN).map(|i| i + BEGIN.len()) else {
        return Err(if pem.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
            CaError::Key("an encrypted PKCS#8 key; pass the decrypted key from the vault")
        } else if pem.contains("-----BEGIN EC PRIVATE KEY-----") {
            CaError::Key("a SEC1 'EC PRIVATE KEY'; PKCS#8 ('PRIVATE KEY') is expected")
        } else {
            CaError::Key("no 'PRIVATE KEY' (PKCS#8) block found in the PEM")
        });
    };
    let rest = pem.get(start..).unwrap_or_default();
    let end = rest.find(END).ok_or(CaError::Key("the PEM block has no END line"))?;
    if rest.get(end + END.len()..).unwrap_or_default().contains("-----BEGIN") {
        return Err(CaError::Key("expected exactly one PEM block"));
    }
    let body = rest.get(..end).unwrap_or_default();
    let mut base64 = Zeroizing::new(Vec::with_capacity(body.len()));
    base64.extend(body.bytes().filter(|b| !b.is_ascii_whitespace()));
    let mut der = Zeroizing::new(vec![0u8; base64.len().div_ceil(4) * 3]);
    let len = base64::engine::general_purpose::STANDARD
        .decode_slice(base64.as_slice(), der.as_mut_slice())
        .map_err(|_| CaError::Key("the PEM body is not valid base64"))?;
    der.truncate(len);
    if der.is_empty() {
        return Err(CaError::Key("the PEM block is empty"));
    }
    Ok(der)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use std::process::{Command, Output, Stdio};
    use std::time::Instant;

    use rustls::ClientConfig;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::task::JoinHandle;
    use tokio_rustls::{TlsAcceptor, TlsConnector};

    const TIMEOUT: Duration = Duration::from_secs(20);
    const H2_H1: &[&[u8]] = &[b"h2", b"http/1.1"];
    const H1: &[&[u8]] = &[b"http/1.1"];
    const DAY: Duration = Duration::from_secs(86_400);
    const OID_SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];
    const OID_EXT_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x25];
    const OID_SERVER_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];

    fn host(text: &str) -> HostName {
        HostName::parse(text).unwrap()
    }

    fn new_ca() -> LocalCa {
        LocalCa::generate("test-install", 30 * DAY, None).unwrap()
    }

    fn constrained_ca(permitted: &[&str]) -> LocalCa {
        let list: Vec<String> = permitted.iter().map(|s| s.to_string()).collect();
        LocalCa::generate("test-install", 30 * DAY, Some(&list)).unwrap()
    }

    fn client_config(trusted_pem: &str) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(trusted_pem.as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
        let mut config = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Arc::new(config)
    }

    /// Accepts one connection on loopback, completes the handshake, reads `ping\n` and answers `pong\n`.
    async fn serve_once(config: Arc<ServerConfig>, bind: &str) -> (SocketAddr, JoinHandle<Result<(), String>>) {
        let listener = TcpListener::bind(bind).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let work = async {
                let (tcp, _) = listener.accept().await.map_err(|e| e.to_string())?;
                let mut tls = TlsAcceptor::from(config).accept(tcp).await.map_err(|e| e.to_string())?;
                let mut buf = [0u8; 5];
                tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
                if &buf != b"ping\n" {
                    return Err("unexpected request".to_string());
                }
                tls.write_all(b"pong\n").await.map_err(|e| e.to_string())?;
                tls.shutdown().await.map_err(|e| e.to_string())?;
                Ok(())
            };
            tokio::time::timeout(TIMEOUT, work).await.map_err(|_| "server timed out".to_string())?
        });
        (addr, task)
    }

    #[derive(Debug)]
    struct Session {
        leaf: Vec<u8>,
        alpn: Option<Vec<u8>>,
        reply: Vec<u8>,
    }

    async fn client_exchange(
        addr: SocketAddr,
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
    ) -> Result<Session, String> {
        let work = async {
            let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
            let mut tls = TlsConnector::from(config).connect(name, tcp).await.map_err(|e| e.to_string())?;
            tls.write_all(b"ping\n").await.map_err(|e| e.to_string())?;
            let mut reply = vec![0u8; 5];
            tls.read_exact(&mut reply).await.map_err(|e| e.to_string())?;
            let (_, conn) = tls.get_ref();
            let leaf = conn.peer_certificates().and_then(|c| c.first()).ok_or("no peer certificate")?.to_vec();
            Ok(Session { leaf, alpn: conn.alpn_protocol().map(<[u8]>::to_vec), reply })
        };
        tokio::time::timeout(TIMEOUT, work).await.map_err(|_| "client timed out".to_string())?
    }

    /// One real handshake over loopback: (client outcome, server outcome).
    async fn handshake(
        server: Arc<ServerConfig>,
        client: Arc<ClientConfig>,
        name: &str,
    ) -> (Result<Session, String>, Result<(), String>) {
        let (addr, task) = serve_once(server, "127.0.0.1:0").await;
        let name = ServerName::try_from(name.to_string()).unwrap();
        let client = client_exchange(addr, client, name).await;
        let server = task.await.unwrap();
        (client, server)
    }

    fn dns(name: &str) -> String {
        format!("DNS:{name}")
    }

    /// The leaf's SAN entries (`DNS:x`, `IP:x`) and whether the SAN extension is critical.
    fn sans(der: &[u8]) -> (Vec<String>, bool) {
        let fields = CertFields::parse(der).unwrap();
        let ext = fields.extension(OID_SUBJECT_ALT_NAME).expect("a SAN extension");
        let seq = Der::new(ext.value).expect(TAG_SEQUENCE).unwrap();
        let mut names = Der::new(seq.content);
        let mut out = Vec::new();
        while !names.is_empty() {
            let name = names.next().unwrap();
            out.push(match name.tag {
                0x82 => dns(std::str::from_utf8(name.content).unwrap()),
                0x87 => match name.content.len() {
                    4 => format!("IP:{}", Ipv4Addr::from(<[u8; 4]>::try_from(name.content).unwrap())),
                    16 => format!("IP:{}", Ipv6Addr::from(<[u8; 16]>::try_from(name.content).unwrap())),
                    _ => "IP:?".to_string(),
                },
                other => format!("tag {other:#x}"),
            });
        }
        (out, ext.critical)
    }

    fn subject_of(der: &[u8]) -> Vec<u8> {
        CertFields::parse(der).unwrap().subject.to_vec()
    }

    fn key_secrets(ca: &LocalCa) -> Vec<String> {
        // Every base64 line of the key PEM, and the hex of its DER: none may appear in Debug or error output.
        let pem = ca.key_pem();
        let mut out: Vec<String> =
            pem.lines().filter(|l| !l.starts_with("-----")).map(|l| l.get(..40).unwrap_or(l).to_string()).collect();
        let der = decode_key_pem(&pem).unwrap();
        out.push(der.iter().map(|b| format!("{b:02x}")).collect::<String>().get(..64).unwrap().to_string());
        out.push(der.iter().map(|b| format!("{b:02X}")).collect::<String>().get(..64).unwrap().to_string());
        out
    }

    fn assert_no_secret(text: &str, secrets: &[String]) {
        assert!(!text.contains("-----BEGIN") && !text.contains("-----END"), "PEM armour in: {text}");
        for secret in secrets {
            assert!(!text.contains(secret.as_str()), "key material in: {text}");
        }
    }

    /// Runs a command with a deadline, killing it if it overstays.
    fn run_with_deadline(mut command: Command, deadline: Duration) -> Output {
        let mut child = command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let start = Instant::now();
        loop {
            if child.try_wait().unwrap().is_some() {
                return child.wait_with_output().unwrap();
            }
            if start.elapsed() > deadline {
                child.kill().unwrap();
                let out = child.wait_with_output().unwrap();
                panic!("command timed out: {}", String::from_utf8_lossy(&out.stderr));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn handshake_with_sni_for_the_issued_host() {
        let ca = new_ca();
        let server = ca.server_config(&host("example.test"), H2_H1).unwrap();
        let (client, served) = handshake(server, client_config(ca.cert_pem()), "example.test").await;
        let session = client.unwrap();
        served.unwrap();
        assert_eq!(session.reply, b"pong\n");
        assert_eq!(session.alpn.as_deref(), Some(&b"h2"[..]));
        let (names, critical) = sans(&session.leaf);
        assert_eq!(names, vec![dns("example.test")]);
        assert!(critical, "an empty subject requires a critical SAN");
        let leaf = CertFields::parse(&session.leaf).unwrap();
        assert_eq!(leaf.issuer, subject_of(ca.cert_der()).as_slice(), "issuer must be our CA's subject");
        assert_eq!(leaf.subject, &[0x30, 0x00], "leaf subject is empty: no CN reliance");
        let eku = leaf.extension(OID_EXT_KEY_USAGE).unwrap();
        assert!(eku.value.windows(OID_SERVER_AUTH.len()).any(|w| w == OID_SERVER_AUTH));
        let lifetime = leaf.not_after.duration_since(leaf.not_before).unwrap();
        assert!(lifetime <= LEAF_VALIDITY + BACKDATE && lifetime >= LEAF_VALIDITY, "{lifetime:?}");
        assert!(leaf.not_before <= SystemTime::now() - BACKDATE + Duration::from_secs(5));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn other_sni_missing_sni_and_other_ca_are_refused() {
        let ca = new_ca();
        let server = ca.server_config(&host("example.test"), H2_H1).unwrap();

        let (client, served) = handshake(server.clone(), client_config(ca.cert_pem()), "other.test").await;
        assert!(client.is_err());
        let served = served.unwrap_err();
        assert!(served.contains("no server certificate"), "the server itself must refuse: {served}");

        let mut no_sni = (*client_config(ca.cert_pem())).clone();
        no_sni.enable_sni = false;
        let (client, served) = handshake(server.clone(), Arc::new(no_sni), "example.test").await;
        assert!(client.is_err() && served.is_err(), "a domain config must not answer a ClientHello without SNI");

        let stranger = LocalCa::generate("another-install", DAY, None).unwrap();
        let (client, _) = handshake(server.clone(), client_config(stranger.cert_pem()), "example.test").await;
        let err = client.unwrap_err();
        assert!(err.contains("UnknownIssuer"), "{err}");
        // A different CA under the same name (same install id) is caught by the signature instead.
        let namesake = new_ca();
        let (client, _) = handshake(server, client_config(namesake.cert_pem()), "example.test").await;
        let err = client.unwrap_err();
        assert!(err.contains("BadSignature"), "{err}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn ip_host_gets_an_ip_san() {
        let ca = new_ca();
        let server = ca.server_config(&HostName::Ipv4(Ipv4Addr::LOCALHOST), H1).unwrap();
        let (client, served) = handshake(server, client_config(ca.cert_pem()), "127.0.0.1").await;
        let session = client.unwrap();
        served.unwrap();
        assert_eq!(sans(&session.leaf).0, vec!["IP:127.0.0.1".to_string()]);
        assert_eq!(session.alpn.as_deref(), Some(&b"http/1.1"[..]));

        let v6 = ca.issue_leaf(&HostName::Ipv6(Ipv6Addr::LOCALHOST), SystemTime::now()).unwrap();
        assert_eq!(sans(v6.key.end_entity_cert().unwrap()).0, vec!["IP:::1".to_string()]);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn resumption_stays_with_the_host() {
        let ca = new_ca();
        let server = ca.server_config(&host("example.test"), H1).unwrap();
        let client = client_config(ca.cert_pem());
        let mut kinds = Vec::new();
        for _ in 0..2 {
            let (addr, task) = serve_once(server.clone(), "127.0.0.1:0").await;
            let tcp = TcpStream::connect(addr).await.unwrap();
            let name = ServerName::try_from("example.test").unwrap();
            let mut tls = TlsConnector::from(client.clone()).connect(name, tcp).await.unwrap();
            tls.write_all(b"ping\n").await.unwrap();
            let mut reply = [0u8; 5];
            tls.read_exact(&mut reply).await.unwrap();
            kinds.push(tls.get_ref().1.handshake_kind());
            task.await.unwrap().unwrap();
        }
        assert_eq!(kinds[1], Some(rustls::HandshakeKind::Resumed), "{kinds:?}");
    }

    #[test]
    fn local_ca_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<LocalCa>();
        assert_send_sync::<CaError>();
    }

    #[test]
    fn sni_rules() {
        let domain = host("example.test");
        assert!(sni_matches(&domain, Some("example.test")));
        assert!(sni_matches(&domain, Some("Example.TEST.")));
        assert!(!sni_matches(&domain, Some("other.test")));
        assert!(!sni_matches(&domain, Some("sub.example.test")));
        assert!(!sni_matches(&domain, None));
        let ip = HostName::Ipv4(Ipv4Addr::LOCALHOST);
        assert!(sni_matches(&ip, None));
        assert!(sni_matches(&ip, Some("127.0.0.1")));
        assert!(!sni_matches(&ip, Some("example.test")));
        let v6 = HostName::Ipv6(Ipv6Addr::LOCALHOST);
        assert!(sni_matches(&v6, None));
        assert!(!sni_matches(&v6, Some("example.test")));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn pem_round_trip_issues_leaves_the_original_cert_verifies() {
        let ca = new_ca();
        let loaded = LocalCa::from_pem(ca.cert_pem(), &ca.key_pem()).unwrap();
        assert_eq!(loaded.fingerprint(), ca.fingerprint());
        assert_eq!(loaded.cert_pem(), ca.cert_pem());
        assert_eq!(loaded.not_after(), ca.not_after());
        assert_eq!(loaded.subject, "CN=Airlock local CA test-install");
        assert_eq!(*loaded.key_pem(), *ca.key_pem());
        let server = loaded.server_config(&host("example.test"), H2_H1).unwrap();
        let (client, served) = handshake(server, client_config(ca.cert_pem()), "example.test").await;
        client.unwrap();
        served.unwrap();

        // A constrained CA keeps its constraints through the round trip.
        let constrained = constrained_ca(&["example.test", "10.0.0.0/8"]);
        let loaded = LocalCa::from_pem(constrained.cert_pem(), &constrained.key_pem()).unwrap();
        assert_eq!(loaded.constraints, constrained.constraints);
        assert!(matches!(loaded.server_config(&host("evil.test"), H1), Err(CaError::HostNotPermitted { .. })));
    }

    #[test]
    fn bad_pem_is_refused_clearly_without_key_material() {
        let ca = new_ca();
        let other = new_ca();
        let secrets: Vec<String> = key_secrets(&ca).into_iter().chain(key_secrets(&other)).collect();
        let mut messages = Vec::new();

        let err = LocalCa::from_pem(ca.cert_pem(), &other.key_pem()).unwrap_err();
        assert!(matches!(err, CaError::KeyMismatch), "{err}");
        messages.push(err.to_string());

        let err = LocalCa::from_pem("garbage", &ca.key_pem()).unwrap_err();
        assert!(matches!(err, CaError::Certificate(_)), "{err}");
        messages.push(err.to_string());

        let marker = "-----BEGIN PRIVATE KEY-----\nSECRETMARKERxyz!!\n-----END PRIVATE KEY-----\n";
        let err = LocalCa::from_pem(ca.cert_pem(), marker).unwrap_err();
        assert!(matches!(err, CaError::Key(_)), "{err}");
        assert!(!err.to_string().contains("SECRETMARKER"));
        messages.push(err.to_string());

        let err = LocalCa::from_pem(ca.cert_pem(), "not a key").unwrap_err();
        assert!(matches!(err, CaError::Key(_)), "{err}");
        messages.push(err.to_string());

        // Arguments swapped: the key PEM where the certificate belongs, and the reverse.
        let err = LocalCa::from_pem(&ca.key_pem(), ca.cert_pem()).unwrap_err();
        assert!(matches!(err, CaError::Certificate(_)), "{err}");
        messages.push(err.to_string());

        let sec1 = ca.key_pem().replace("PRIVATE KEY", "EC PRIVATE KEY");
        let err = LocalCa::from_pem(ca.cert_pem(), &sec1).unwrap_err();
        assert!(err.to_string().contains("SEC1"), "{err}");
        messages.push(err.to_string());

        let two_certs = format!("{}{}", ca.cert_pem(), other.cert_pem());
        let err = LocalCa::from_pem(&two_certs, &ca.key_pem()).unwrap_err();
        assert!(err.to_string().contains("exactly one"), "{err}");
        messages.push(err.to_string());

        // A leaf is not a CA, even with its own key.
        let leaf = ca.issue_leaf(&host("example.test"), SystemTime::now()).unwrap();
        let leaf_pem = pem_encode("CERTIFICATE", leaf.key.end_entity_cert().unwrap());
        let leaf_key = pem_encode("PRIVATE KEY", &ca.leaf_key.pkcs8);
        let err = LocalCa::from_pem(&leaf_pem, &leaf_key).unwrap_err();
        assert!(matches!(err, CaError::NotCa(_)), "{err}");
        messages.push(err.to_string());

        // A truncated certificate.
        let der = ca.cert_der().as_ref();
        let truncated = pem_encode("CERTIFICATE", &der[..der.len() - 10]);
        let err = LocalCa::from_pem(&truncated, &ca.key_pem()).unwrap_err();
        assert!(matches!(err, CaError::Certificate(_)), "{err}");
        messages.push(err.to_string());

        for message in &messages {
            assert_no_secret(message, &secrets);
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn expired_and_future_cas_are_refused() {
        let now = SystemTime::now();
        // Issued three days ago for one day: expired two days ago. Created through the clock-injected constructor,
        // since generate() always starts from now.
        let expired = LocalCa::generate_at(now - 3 * DAY, "old", DAY, None).unwrap();
        let err = LocalCa::from_pem(expired.cert_pem(), &expired.key_pem()).unwrap_err();
        assert!(matches!(err, CaError::Expired { .. }), "{err}");
        assert!(err.to_string().contains("expired at"), "{err}");
        let err = expired.server_config(&host("example.test"), H1).unwrap_err();
        assert!(matches!(err, CaError::Expired { .. }), "{err}");

        let future = LocalCa::generate_at(now + 2 * DAY, "future", DAY, None).unwrap();
        let err = LocalCa::from_pem(future.cert_pem(), &future.key_pem()).unwrap_err();
        assert!(matches!(err, CaError::NotYetValid { .. }), "{err}");

        // The public constructor: not_after is now + validity, to the second.
        let ca = LocalCa::generate("t", 2 * DAY, None).unwrap();
        let expected = SystemTime::now() + 2 * DAY;
        let diff = expected.duration_since(ca.not_after()).unwrap_or_else(|e| e.duration());
        assert!(diff < Duration::from_secs(5), "{diff:?}");

        // A CA with little time left issues leaves that end with it.
        let short = LocalCa::generate("short", Duration::from_secs(600), None).unwrap();
        let leaf = short.issue_leaf(&host("example.test"), SystemTime::now()).unwrap();
        let fields = CertFields::parse(leaf.key.end_entity_cert().unwrap()).unwrap();
        assert_eq!(fields.not_after, short.not_after());
    }

    #[test]
    fn generate_rejects_bad_arguments() {
        assert!(matches!(LocalCa::generate("", DAY, None), Err(CaError::InstallId(_))));
        assert!(matches!(LocalCa::generate("a b", DAY, None), Err(CaError::InstallId(_))));
        assert!(matches!(LocalCa::generate(&"x".repeat(48), DAY, None), Err(CaError::InstallId(_))));
        assert!(LocalCa::generate(&"x".repeat(47), DAY, None).is_ok());
        assert!(matches!(LocalCa::generate("t", Duration::ZERO, None), Err(CaError::Validity(_))));
        assert!(matches!(LocalCa::generate("t", MAX_CA_VALIDITY + DAY, None), Err(CaError::Validity(_))));
        for bad in [&[][..], &["".to_string()], &["*.example.test".to_string()], &[".example.test".to_string()]] {
            assert!(matches!(LocalCa::generate("t", DAY, Some(bad)), Err(CaError::Constraint { .. })), "{bad:?}");
        }
        for bad in ["10.0.0.1/8", "10.0.0.0/33", "10.0.0.0/x", "exa mple.test", "0x7f.1"] {
            let err = LocalCa::generate("t", DAY, Some(&[bad.to_string()])).unwrap_err();
            assert!(matches!(err, CaError::Constraint { .. }), "{bad}: {err}");
            assert!(err.to_string().contains(bad), "the message names the entry: {err}");
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn name_constrained_ca_issues_inside_and_refuses_outside() {
        let ca = constrained_ca(&["example.test"]);
        for inside in ["api.example.test", "example.test"] {
            let server = ca.server_config(&host(inside), H1).unwrap();
            let (client, served) = handshake(server, client_config(ca.cert_pem()), inside).await;
            client.unwrap();
            served.unwrap();
        }
        for outside in ["evil.test", "notexample.test", "127.0.0.1"] {
            let err = ca.server_config(&host(outside), H1).unwrap_err();
            assert!(matches!(err, CaError::HostNotPermitted { .. }), "{err}");
            assert!(err.to_string().contains(outside), "the error names the host: {err}");
        }
        assert_eq!(ca.cached(), 2);

        // Even with the key, a leaf outside the constraints is refused by clients: the extension does its job.
        let verifier = WebPkiServerVerifier::builder_with_provider(
            Arc::new({
                let mut roots = RootCertStore::empty();
                roots.add(ca.cert_der().clone()).unwrap();
                roots
            }),
            ca.provider.clone(),
        )
        .build()
        .unwrap();
        let now = UnixTime::now();
        for (outside, name) in [
            (host("evil.test"), ServerName::try_from("evil.test").unwrap()),
            (HostName::Ipv4(Ipv4Addr::LOCALHOST), ServerName::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST).into())),
        ] {
            let leaf = ca.sign_leaf(&outside, SystemTime::now()).unwrap();
            let err =
                verifier.verify_server_cert(leaf.key.end_entity_cert().unwrap(), &[], &name, &[], now).unwrap_err();
            assert!(format!("{err:?}").contains("NameConstraintViolation"), "{err:?}");
        }

        // An IP-only CA: IPs inside work, every DNS name is outside (and clients agree).
        let ip_ca = constrained_ca(&["127.0.0.0/8"]);
        let server = ip_ca.server_config(&HostName::Ipv4(Ipv4Addr::LOCALHOST), H1).unwrap();
        let (client, served) = handshake(server, client_config(ip_ca.cert_pem()), "127.0.0.1").await;
        client.unwrap();
        served.unwrap();
        assert!(matches!(ip_ca.server_config(&host("example.test"), H1), Err(CaError::HostNotPermitted { .. })));
        assert!(matches!(ip_ca.server_config(&host("10.1.2.3"), H1), Err(CaError::HostNotPermitted { .. })));
        let leaked = ip_ca.sign_leaf(&host("example.test"), SystemTime::now()).unwrap();
        let server = ip_ca.build_config(&host("example.test"), leaked.key, H1).unwrap();
        let (client, _) = handshake(server, client_config(ip_ca.cert_pem()), "example.test").await;
        let err = client.unwrap_err();
        assert!(err.contains("NameConstraintViolation"), "{err}");
    }

    #[test]
    fn constraint_matching() {
        assert!(dns_within("example.test", "example.test"));
        assert!(dns_within("a.b.example.test", "example.test"));
        assert!(dns_within("API.example.test", "Example.Test."));
        assert!(!dns_within("notexample.test", "example.test"));
        assert!(!dns_within("test", "example.test"));
        assert!(dns_within("a.example.test", ".example.test"));
        assert!(!dns_within("example.test", ".example.test"));
        assert!(dns_within("anything", ""));
        let c =
            Constraints::from_config(&["example.test".into(), "10.0.0.0/8".into(), "[2001:db8::]/32".into()]).unwrap();
        assert!(c.permits(&host("10.200.0.1")));
        assert!(!c.permits(&host("11.0.0.1")));
        assert!(c.permits(&HostName::Ipv6("2001:db8::5".parse().unwrap())));
        assert!(!c.permits(&HostName::Ipv6("2001:db9::5".parse().unwrap())));
        assert!(c.excluded_ip.is_empty(), "IP ranges are listed, so no blanket IP exclusion");
        let v6_only = Constraints::from_config(&["2001:db8::/32".into()]).unwrap();
        assert!(!v6_only.permits(&host("10.0.0.1")), "IPv4 and IPv6 are one name type");
        let dns_only = Constraints::from_config(&["example.test".into()]).unwrap();
        assert!(!dns_only.permits(&HostName::Ipv6(Ipv6Addr::LOCALHOST)));
        assert_eq!(dns_only.describe(), ["permit example.test", "exclude 0.0.0.0/0", "exclude ::/0"]);
        let single = Constraints::from_config(&["192.0.2.7".into()]).unwrap();
        assert_eq!(single.permitted_ip, vec![IpNet::from_prefix("192.0.2.7".parse().unwrap(), 32)]);
        assert_eq!(single.permitted_dns, vec![NO_DNS_NAMES.to_string()]);
    }

    #[test]
    fn cache_reuses_and_evicts_least_recently_used() {
        let ca = new_ca().with_cache_capacity(2);
        let a = host("a.test");
        let first = ca.server_config(&a, H2_H1).unwrap();
        let again = ca.server_config(&a, H2_H1).unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        let h1_only = ca.server_config(&a, H1).unwrap();
        assert!(!Arc::ptr_eq(&first, &h1_only), "another ALPN list is another config");
        assert_eq!(ca.cached(), 1, "but the same host and leaf");

        let b_first = ca.server_config(&host("b.test"), H1).unwrap();
        assert!(Arc::ptr_eq(&ca.server_config(&a, H2_H1).unwrap(), &first), "touch a: b is now least recent");
        ca.server_config(&host("c.test"), H1).unwrap();
        assert_eq!(ca.cached(), 2);
        assert!(Arc::ptr_eq(&ca.server_config(&a, H2_H1).unwrap(), &first), "a survived");
        let b_again = ca.server_config(&host("b.test"), H1).unwrap();
        assert!(!Arc::ptr_eq(&b_first, &b_again), "b was evicted and re-issued");

        // Past half the leaf's life, a fresh leaf replaces the cached one.
        let later = SystemTime::now() + LEAF_VALIDITY / 2 + Duration::from_secs(60);
        let refreshed = ca.server_config_at(&a, H2_H1, later).unwrap();
        assert!(!Arc::ptr_eq(&first, &refreshed));
        assert!(Arc::ptr_eq(&refreshed, &ca.server_config_at(&a, H2_H1, later).unwrap()));
    }

    #[test]
    fn debug_and_errors_hold_no_key_material() {
        let ca = constrained_ca(&["example.test"]);
        let secrets = key_secrets(&ca);
        let debug = format!("{ca:?}");
        assert!(!debug.contains("PRIVATE KEY"), "{debug}");
        assert_no_secret(&debug, &secrets);
        assert!(debug.contains(&ca.fingerprint()), "{debug}");
        assert!(debug.contains("Airlock local CA test-install"), "{debug}");
        let alt = format!("{ca:#?}");
        assert_no_secret(&alt, &secrets);
        assert_no_secret(&format!("{:?}", ca.issuer), &secrets);
        assert_no_secret(&format!("{:?}", ca.leaf_key), &secrets);
        let err = ca.server_config(&host("evil.test"), H1).unwrap_err();
        assert_no_secret(&format!("{err} {err:?}"), &secrets);
    }

    #[test]
    fn fingerprint_and_pem_shapes() {
        let ca = new_ca();
        let fp = ca.fingerprint();
        assert_eq!(fp.len(), 32 * 3 - 1);
        assert!(fp.split(':').all(|b| b.len() == 2 && b.chars().all(|c| c.is_ascii_hexdigit())));
        assert_eq!(fp, fingerprint_hex(ca.cert_der().as_ref()));
        let reparsed = decode_cert_pem(ca.cert_pem()).unwrap();
        assert_eq!(reparsed.as_ref(), ca.cert_der().as_ref());
        let key = ca.key_pem();
        assert!(key.starts_with("-----BEGIN PRIVATE KEY-----\n") && key.ends_with("-----END PRIVATE KEY-----\n"));
        assert!(key.lines().all(|l| l.len() <= 64));
        // Our encoder agrees with the base64 crate.
        for len in 0..100usize {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let pem = pem_encode("X", &data);
            assert_eq!(pem.len(), pem_len("X", len), "the buffer is sized exactly, so it never reallocates");
            let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
            assert_eq!(body, base64::engine::general_purpose::STANDARD.encode(&data));
        }
        assert_eq!(format_time(UNIX_EPOCH + Duration::from_secs(951_782_400)), "2000-02-29T00:00:00Z");
        assert_eq!(days_from_civil(2000, 2, 29), 11_016);
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn openssl_agrees_with_the_ca() {
        let ca = new_ca();
        let dir = tempfile::tempdir().unwrap();
        let ca_path = dir.path().join("ca.pem");
        std::fs::write(&ca_path, ca.cert_pem()).unwrap();
        let text = run_with_deadline(
            {
                let mut c = Command::new("/usr/bin/openssl");
                c.args(["x509", "-noout", "-text", "-in"]).arg(&ca_path);
                c
            },
            TIMEOUT,
        );
        let text = String::from_utf8_lossy(&text.stdout);
        assert!(text.contains("CA:TRUE, pathlen:0"), "{text}");
        assert!(text.contains("Certificate Sign, CRL Sign"), "{text}");
        assert!(text.contains("ASN1 OID: prime256v1"), "{text}");

        // openssl enforces the constraints too.
        let constrained = constrained_ca(&["example.test"]);
        std::fs::write(dir.path().join("nc.pem"), constrained.cert_pem()).unwrap();
        for (name, ok) in [("api.example.test", true), ("evil.test", false)] {
            let leaf = constrained.sign_leaf(&host(name), SystemTime::now()).unwrap();
            let leaf_path = dir.path().join(format!("{name}.pem"));
            std::fs::write(&leaf_path, pem_encode("CERTIFICATE", leaf.key.end_entity_cert().unwrap()).as_str())
                .unwrap();
            let mut c = Command::new("/usr/bin/openssl");
            c.args(["verify", "-purpose", "sslserver", "-CAfile"]).arg(dir.path().join("nc.pem")).arg(&leaf_path);
            let out = run_with_deadline(c, TIMEOUT);
            let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            assert_eq!(out.status.success(), ok, "{name}: {all}");
            if !ok {
                assert!(all.contains("permitted subtree violation"), "{all}");
            }
        }
    }

    /// Serves TLS on loopback until aborted; each connection gets a minimal HTTP/1.1 response.
    async fn serve_http(config: Arc<ServerConfig>) -> (u16, JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let acceptor = TlsAcceptor::from(config);
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let work = async {
                        let mut tls = acceptor.accept(tcp).await.ok()?;
                        let mut request = Vec::new();
                        let mut buf = [0u8; 1024];
                        while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16_384 {
                            let n = tls.read(&mut buf).await.ok()?;
                            if n == 0 {
                                return None;
                            }
                            request.extend_from_slice(&buf[..n]);
                        }
                        let body = b"hello from airlock\n";
                        let head =
                            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
                        tls.write_all(head.as_bytes()).await.ok()?;
                        tls.write_all(body).await.ok()?;
                        tls.shutdown().await.ok()
                    };
                    let _ = tokio::time::timeout(TIMEOUT, work).await;
                });
            }
        });
        (port, task)
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn openssl_s_client_and_curl_accept_the_leaf() {
        let ca = new_ca();
        let dir = tempfile::tempdir().unwrap();
        let ca_path = dir.path().join("ca.pem");
        std::fs::write(&ca_path, ca.cert_pem()).unwrap();
        let (port, server) = serve_http(ca.server_config(&host("example.test"), H1).unwrap()).await;

        let s_client = |sni: &'static str| {
            let mut c = Command::new("/usr/bin/openssl");
            c.args(["s_client", "-connect", &format!("127.0.0.1:{port}"), "-servername", sni, "-CAfile"])
                .arg(&ca_path)
                .arg("-verify_return_error");
            c
        };
        let command = s_client("example.test");
        let out = tokio::task::spawn_blocking(move || run_with_deadline(command, TIMEOUT)).await.unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("Verify return code: 0 (ok)"), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));

        let command = s_client("other.test");
        let out = tokio::task::spawn_blocking(move || run_with_deadline(command, TIMEOUT)).await.unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "a wrong SNI must fail the handshake: {stdout}");
        assert!(stdout.contains("no peer certificate available"), "{stdout}");

        let curl = {
            let mut c = Command::new("curl");
            c.args(["-sS", "--max-time", "10", "--cacert"]).arg(&ca_path).args([
                "--resolve",
                &format!("example.test:{port}:127.0.0.1"),
                &format!("https://example.test:{port}/"),
            ]);
            c
        };
        let out = tokio::task::spawn_blocking(move || run_with_deadline(curl, TIMEOUT)).await.unwrap();
        assert!(out.status.success(), "curl: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from airlock\n");

        // curl trusting another CA refuses.
        let stranger = new_ca();
        let other_path = dir.path().join("other.pem");
        std::fs::write(&other_path, stranger.cert_pem()).unwrap();
        let curl = {
            let mut c = Command::new("curl");
            c.args(["-sS", "--max-time", "10", "--cacert"]).arg(&other_path).args([
                "--resolve",
                &format!("example.test:{port}:127.0.0.1"),
                &format!("https://example.test:{port}/"),
            ]);
            c
        };
        let out = tokio::task::spawn_blocking(move || run_with_deadline(curl, TIMEOUT)).await.unwrap();
        assert!(!out.status.success());
        server.abort();
    }

    /// A measurement, not a test of speed (docs/benchmarks.md):
    /// `cargo test -p airlock-broker --release --lib ca::tests::issue_and_cache_hit_cost -- --ignored --nocapture`.
    #[test]
    #[ignore = "measurement; run with --ignored --nocapture"]
    fn issue_and_cache_hit_cost() {
        let ca = new_ca();
        let now = SystemTime::now();
        let n = 50u32;
        let start = Instant::now();
        for i in 0..n {
            ca.issue_leaf(&host(&format!("h{i}.test")), now).unwrap();
        }
        let issue = start.elapsed() / n;
        let start = Instant::now();
        for i in 0..n {
            ca.server_config(&host(&format!("m{i}.test")), H2_H1).unwrap();
        }
        let miss = start.elapsed() / n;
        let warm = host("m0.test");
        let hits = 10_000u32;
        let start = Instant::now();
        for _ in 0..hits {
            ca.server_config(&warm, H2_H1).unwrap();
        }
        let hit = start.elapsed() / hits;
        let start = Instant::now();
        let loaded = LocalCa::from_pem(ca.cert_pem(), &ca.key_pem()).unwrap();
        let load = start.elapsed();
        drop(loaded);
        eprintln!("leaf issue {issue:?}, cache miss (issue + config) {miss:?}, cache hit {hit:?}, from_pem {load:?}");
    }
}
