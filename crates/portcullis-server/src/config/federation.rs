//! Federation settings: verified domains (`dns_resolver`, `free_mail_domains`) and how far
//! org admins' SSO providers may reach (`sso_allow_private_networks`).
//!
//! ```toml
//! dns_resolver = "127.0.0.1:5353"        # default: the system's (resolv.conf)
//! free_mail_domains = ["mail.example"]   # added to the built-in list; `name.*` for any TLD
//! sso_allow_private_networks = false     # true only for tests and labs
//! ```

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::config::StringList;
use crate::config::error::ConfigError;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FederationConfig {
    /// The nameserver domain verification asks for TXT records (`ip` or `ip:port`); none:
    /// the system's resolvers.
    pub dns_resolver: Option<String>,
    /// More free-mail domains nobody may claim, on top of the built-in list.
    pub free_mail_domains: StringList,
    /// Org providers may live at loopback, private and link-local addresses, and on plain
    /// http. For tests and labs: it lets any org admin make this server reach them.
    pub sso_allow_private_networks: bool,
}

impl FederationConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        self.resolver_addr()?;
        for d in self.free_mail_domains.iter() {
            let stem = d.strip_suffix(".*").unwrap_or(d);
            let probe = if stem.contains('.') {
                stem.to_owned()
            } else {
                format!("{stem}.example")
            };
            if portcullis_core::DomainName::parse(&probe).is_err() {
                return Err(ConfigError::Invalid(format!(
                    "free_mail_domains: {d:?} is not a domain like mail.example or mail.*"
                )));
            }
        }
        Ok(())
    }

    /// `dns_resolver` as an address (port 53 unless given).
    pub fn resolver_addr(&self) -> Result<Option<SocketAddr>, ConfigError> {
        let Some(raw) = self
            .dns_resolver
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        else {
            return Ok(None);
        };
        if let Ok(addr) = raw.parse::<SocketAddr>() {
            return Ok(Some(addr));
        }
        raw.trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .map(|ip| Some(SocketAddr::new(ip, 53)))
            .map_err(|_| {
                ConfigError::Invalid(format!(
                    "dns_resolver {raw:?} must be a nameserver's IP address, optionally with a port \
                     (e.g. 10.0.0.2 or 127.0.0.1:5353)"
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolver_addresses() {
        let with = |s: &str| FederationConfig {
            dns_resolver: Some(s.into()),
            ..FederationConfig::default()
        };
        assert_eq!(FederationConfig::default().resolver_addr().unwrap(), None);
        assert_eq!(
            with("127.0.0.1:5353").resolver_addr().unwrap(),
            Some("127.0.0.1:5353".parse().unwrap())
        );
        assert_eq!(
            with("10.0.0.2").resolver_addr().unwrap(),
            Some("10.0.0.2:53".parse().unwrap())
        );
        assert_eq!(
            with("[::1]:5300").resolver_addr().unwrap(),
            Some("[::1]:5300".parse().unwrap())
        );
        assert_eq!(
            with("::1").resolver_addr().unwrap(),
            Some("[::1]:53".parse().unwrap())
        );
        let err = with("dns.example.com").validate().unwrap_err().to_string();
        assert!(err.contains("dns_resolver"), "{err}");
    }

    #[test]
    fn free_mail_entries_are_domains() {
        let with = |v: &[&str]| FederationConfig {
            free_mail_domains: StringList(v.iter().map(|s| (*s).to_owned()).collect()),
            ..FederationConfig::default()
        };
        assert!(with(&["mail.example", "webmail.*"]).validate().is_ok());
        let err = with(&["not a domain"]).validate().unwrap_err().to_string();
        assert!(err.contains("free_mail_domains"), "{err}");
    }
}
