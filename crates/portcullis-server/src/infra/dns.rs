//! DNS TXT lookups for domain verification, at the system's nameservers (resolv.conf) or
//! at the one `dns_resolver` names. Every lookup asks afresh (no cache): an admin who just
//! published the record must not wait out a cached "no such record".

use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::{Resolver, TokioResolver};

/// How long one lookup may take in all.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone, Debug)]
pub struct TxtResolver {
    nameserver: Option<SocketAddr>,
}

impl TxtResolver {
    /// `nameserver`: where to ask; None for the system's resolvers.
    pub fn new(nameserver: Option<SocketAddr>) -> Self {
        Self { nameserver }
    }

    fn resolver(&self) -> Result<TokioResolver, String> {
        let mut builder = match self.nameserver {
            Some(addr) => {
                let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
                for c in &mut ns.connections {
                    c.port = addr.port();
                }
                Resolver::builder_with_config(
                    ResolverConfig::from_name_servers(vec![ns]),
                    TokioRuntimeProvider::default(),
                )
            }
            None => TokioResolver::builder_tokio()
                .map_err(|e| format!("cannot read the system's DNS configuration: {e}"))?,
        };
        let opts: &mut ResolverOpts = builder.options_mut();
        opts.timeout = Duration::from_secs(2);
        opts.attempts = 2;
        opts.cache_size = 0;
        builder
            .build()
            .map_err(|e| format!("cannot build a DNS resolver: {e}"))
    }

    /// The TXT values at `name` (each record's strings joined); empty when the name or its
    /// TXT records do not exist. Err says why DNS could not answer.
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, String> {
        let resolver = self.resolver()?;
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        let lookup = match tokio::time::timeout(LOOKUP_TIMEOUT, resolver.txt_lookup(fqdn)).await {
            Err(_) => return Err(format!("the DNS lookup of {name} timed out")),
            Ok(Err(e)) if e.is_no_records_found() || e.is_nx_domain() => return Ok(Vec::new()),
            Ok(Err(e)) => return Err(format!("the DNS lookup of {name} failed: {e}")),
            Ok(Ok(lookup)) => lookup,
        };
        Ok(lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::TXT(txt) => Some(
                    txt.txt_data
                        .iter()
                        .map(|part| String::from_utf8_lossy(part).into_owned())
                        .collect::<String>(),
                ),
                _ => None,
            })
            .collect())
    }
}
