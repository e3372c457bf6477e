//! Name resolution, once per request, with a deadline.
//!
//! Why our own step instead of letting the socket library resolve: the addresses a name resolves to are exactly
//! what the SSRF check must see, and exactly what must be dialled afterwards. If the check and the dial each asked
//! DNS, a name with a short TTL could answer a public address to the first question and `127.0.0.1` to the second
//! (DNS rebinding). So the broker asks once, here, checks every address in the answer, and dials one of those
//! addresses; nothing downstream resolves anything.
//!
//! Names are looked up through a static table first (operator pins, like curl's `--resolve`), then through DNS
//! (`hickory-resolver`: the system's `/etc/resolv.conf`, or explicit name servers). Literal IP hosts never reach
//! here. The system hosts file is not consulted: `/etc/hosts` commonly maps names to loopback, and such a mapping
//! belongs in the operator's static table where it is visible in the config.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use airlock_policy::normalize::HostName;
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;

/// Why a name did not resolve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("{host} does not resolve")]
    NotFound { host: String },
    #[error("resolving {host} took longer than {}s", .timeout.as_secs_f32())]
    Timeout { host: String, timeout: Duration },
    #[error("resolving {host} failed: {reason}")]
    Failed { host: String, reason: String },
    #[error("could not set up name resolution: {0}")]
    Setup(String),
}

/// Resolves host names for the broker. Cheap to share (`Arc`); the DNS client caches answers within their TTLs.
pub struct Resolver {
    fixed: HashMap<String, Vec<IpAddr>>,
    dns: Option<TokioResolver>,
    timeout: Duration,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("fixed", &self.fixed.len())
            .field("dns", &self.dns.is_some())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Resolver {
    /// DNS through the system's configuration (`/etc/resolv.conf`).
    pub fn system(timeout: Duration) -> Result<Resolver, ResolveError> {
        let mut builder = TokioResolver::builder_tokio().map_err(|e| ResolveError::Setup(e.to_string()))?;
        *builder.options_mut() = options(timeout);
        let dns = builder.build().map_err(|e| ResolveError::Setup(e.to_string()))?;
        Ok(Resolver { fixed: HashMap::new(), dns: Some(dns), timeout })
    }

    /// DNS through these name servers only (UDP, then TCP for truncated answers).
    pub fn with_name_servers(servers: &[SocketAddr], timeout: Duration) -> Result<Resolver, ResolveError> {
        let configs = servers
            .iter()
            .map(|s| {
                let mut udp = ConnectionConfig::udp();
                udp.port = s.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = s.port();
                NameServerConfig::new(s.ip(), true, vec![udp, tcp])
            })
            .collect();
        let config = ResolverConfig::from_name_servers(configs);
        let dns = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
            .with_options(options(timeout))
            .build()
            .map_err(|e| ResolveError::Setup(e.to_string()))?;
        Ok(Resolver { fixed: HashMap::new(), dns: Some(dns), timeout })
    }

    /// No DNS at all: only the static table answers.
    pub fn fixed_only(timeout: Duration) -> Resolver {
        Resolver { fixed: HashMap::new(), dns: None, timeout }
    }

    /// Adds a static answer for `host` (a canonical domain name), consulted before DNS.
    pub fn pin(mut self, host: &str, addrs: Vec<IpAddr>) -> Resolver {
        self.fixed.insert(host.to_ascii_lowercase(), addrs);
        self
    }

    /// Every address `host` resolves to, in answer order. A literal IP host answers itself.
    pub async fn lookup(&self, host: &HostName) -> Result<Vec<IpAddr>, ResolveError> {
        let name = match host {
            HostName::Ipv4(ip) => return Ok(vec![IpAddr::V4(*ip)]),
            HostName::Ipv6(ip) => return Ok(vec![IpAddr::V6(*ip)]),
            HostName::Domain(name) => name,
        };
        if let Some(addrs) = self.fixed.get(name) {
            return Ok(addrs.clone());
        }
        let Some(dns) = &self.dns else {
            return Err(ResolveError::NotFound { host: name.clone() });
        };
        // A fully qualified name: never let search domains turn `db` into `db.corp.internal`.
        let fqdn = format!("{name}.");
        let answer = match tokio::time::timeout(self.timeout, dns.lookup_ip(fqdn.as_str())).await {
            Err(_) => return Err(ResolveError::Timeout { host: name.clone(), timeout: self.timeout }),
            Ok(Err(e)) if e.is_no_records_found() || e.is_nx_domain() => {
                return Err(ResolveError::NotFound { host: name.clone() });
            }
            Ok(Err(e)) => return Err(ResolveError::Failed { host: name.clone(), reason: e.to_string() }),
            Ok(Ok(answer)) => answer,
        };
        let addrs: Vec<IpAddr> = answer.iter().collect();
        if addrs.is_empty() {
            return Err(ResolveError::NotFound { host: name.clone() });
        }
        Ok(addrs)
    }
}

fn options(timeout: Duration) -> ResolverOpts {
    let mut o = ResolverOpts::default();
    o.timeout = timeout.min(Duration::from_secs(5));
    o.attempts = 2;
    o.ndots = 0;
    o.use_hosts_file = ResolveHosts::Never;
    // Both families: the SSRF check must see every address the name has, not just the first family's.
    o.ip_strategy = hickory_resolver::config::LookupIpStrategy::Ipv4AndIpv6;
    o
}
