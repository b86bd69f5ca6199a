//! The developer platform's settings: plans (`[plans.<key>]`), rate limits per route class
//! (`[rate_limits.<class>]`), the Redis that shares them between nodes (`redis_url`), and
//! the proxies whose `X-Forwarded-For` is believed (`trusted_proxies`).

use std::collections::BTreeMap;
use std::net::IpAddr;

use portcullis_core::plan::{Feature, Plan, PlanKey, built_in_plans};
use serde::{Deserialize, Serialize};

use crate::config::error::ConfigError;
use crate::config::secret::Secret;

/// One plan as configured. A limit left out is unlimited.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanConfig {
    pub seat_limit: Option<u32>,
    pub project_limit: Option<u32>,
    /// Feature names, e.g. `["mobile_access"]`.
    #[serde(default)]
    pub features: Vec<String>,
}

/// A quota: `limit` requests per `window_secs` for one key (client IP, or secret key).
/// `limit = 0` switches the class off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaConfig {
    pub limit: u32,
    pub window_secs: u64,
}

impl QuotaConfig {
    const fn new(limit: u32, window_secs: u64) -> Self {
        Self { limit, window_secs }
    }
}

/// Quotas per route class. Defaults are generous for people (an office behind one NAT) and
/// still slow a script down; password guessing has its own per-account backoff besides.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitsConfig {
    /// `POST /v1/auth/login` (and the sign-in pages' password step), per client IP.
    pub password_sign_in: QuotaConfig,
    /// `POST /v1/auth/signup`, per client IP.
    pub signup: QuotaConfig,
    /// `POST /api/v1/mobile/auth/exchange`, per client IP.
    pub ott_exchange: QuotaConfig,
    /// `POST /oauth2/token`, per client IP.
    pub token: QuotaConfig,
    /// `GET /v1/public/config`, per client IP.
    pub public_config: QuotaConfig,
    /// Every other `/v1/…` route, per client IP, and per secret key when one is presented.
    pub management: QuotaConfig,
}

impl Default for RateLimitsConfig {
    fn default() -> Self {
        Self {
            password_sign_in: QuotaConfig::new(60, 60),
            signup: QuotaConfig::new(30, 60),
            ott_exchange: QuotaConfig::new(120, 60),
            token: QuotaConfig::new(1200, 60),
            public_config: QuotaConfig::new(1200, 60),
            management: QuotaConfig::new(60_000, 60),
        }
    }
}

/// Which admitted answers of a limited route carry the `RateLimit-*` headers. A refusal
/// (`429 rate_limited`) carries them, with `Retry-After`, whatever this says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateLimitHeaders {
    /// Answers that leave the client at most half of its budget. A client far from its
    /// limit has nothing to pace and its answers skip three headers; this is the draft's
    /// own suggestion to an implementer concerned with performance
    /// (draft-ietf-httpapi-ratelimit-headers, "Performance Considerations").
    #[default]
    NearLimit,
    /// Every answer.
    Always,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct PlatformConfig {
    /// Plans by key; they replace or add to the built-in `free`, `team` and `enterprise`.
    pub plans: BTreeMap<String, PlanConfig>,
    /// Rate limiting on or off (off: no limits and no `RateLimit-*` headers).
    pub rate_limit_enabled: bool,
    /// `near_limit` (default) or `always`: which admitted answers carry `RateLimit-*`.
    pub rate_limit_headers: RateLimitHeaders,
    pub rate_limits: RateLimitsConfig,
    /// `redis://host:port[/db]`: share rate-limit budgets between nodes. Unset: per node.
    pub redis_url: Option<Secret>,
    /// Prefix of every Redis key this server writes (several deployments, one Redis).
    pub redis_key_prefix: String,
    /// Peers whose `X-Forwarded-For` names the client (exact addresses, e.g. the load
    /// balancer's). Anyone else's header is ignored: the socket's address counts.
    pub trusted_proxies: Vec<String>,
}

impl Default for PlatformConfig {
    fn default() -> Self {
        Self {
            plans: BTreeMap::new(),
            rate_limit_enabled: true,
            rate_limit_headers: RateLimitHeaders::default(),
            rate_limits: RateLimitsConfig::default(),
            redis_url: None,
            redis_key_prefix: "portcullis".into(),
            trusted_proxies: Vec::new(),
        }
    }
}

impl PlatformConfig {
    /// The built-in plans with the configured ones over them.
    pub fn plans(&self) -> Result<Vec<Plan>, ConfigError> {
        let mut plans: BTreeMap<String, Plan> = built_in_plans()
            .into_iter()
            .map(|p| (p.key.as_str().to_owned(), p))
            .collect();
        for (key, c) in &self.plans {
            let key = PlanKey::parse(key)
                .map_err(|e| ConfigError::Invalid(format!("plans.{key}: {}", e.message)))?;
            let features = c
                .features
                .iter()
                .map(|f| match f.as_str() {
                    "mobile_access" => Ok(Feature::MobileAccess),
                    other => Err(ConfigError::Invalid(format!(
                        "plans.{}: unknown feature {other:?} (known: mobile_access)",
                        key.as_str()
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()?;
            plans.insert(
                key.as_str().to_owned(),
                Plan {
                    key,
                    seat_limit: c.seat_limit,
                    project_limit: c.project_limit,
                    features,
                },
            );
        }
        Ok(plans.into_values().collect())
    }

    pub fn trusted_proxies(&self) -> Result<Vec<IpAddr>, ConfigError> {
        self.trusted_proxies
            .iter()
            .map(|p| {
                p.trim().parse().map_err(|_| {
                    ConfigError::Invalid(format!(
                        "trusted_proxies: {p:?} is not an IP address (list each proxy's address)"
                    ))
                })
            })
            .collect()
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        self.plans()?;
        self.trusted_proxies()?;
        let r = &self.rate_limits;
        for (name, q) in [
            ("password_sign_in", r.password_sign_in),
            ("signup", r.signup),
            ("ott_exchange", r.ott_exchange),
            ("token", r.token),
            ("public_config", r.public_config),
            ("management", r.management),
        ] {
            if q.limit > 0 && q.window_secs == 0 {
                return Err(ConfigError::Invalid(format!(
                    "rate_limits.{name}.window_secs must be at least 1"
                )));
            }
        }
        if let Some(url) = self.redis_url.as_ref().map(Secret::expose)
            && !url.starts_with("redis://")
        {
            return Err(ConfigError::Invalid(
                "redis_url must start with redis:// (TLS to Redis is not built in; use a local \
                 TLS tunnel such as stunnel)"
                    .into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_plans_replace_and_extend_the_built_in_ones() {
        let mut c = PlatformConfig::default();
        c.plans.insert(
            "free".into(),
            PlanConfig {
                seat_limit: Some(1),
                project_limit: None,
                features: vec![],
            },
        );
        c.plans.insert(
            "scale".into(),
            PlanConfig {
                seat_limit: Some(100),
                project_limit: Some(50),
                features: vec!["mobile_access".into()],
            },
        );
        let plans = c.plans().unwrap();
        let find = |k: &str| plans.iter().find(|p| p.key.as_str() == k).unwrap().clone();
        assert_eq!(find("free").seat_limit, Some(1));
        assert_eq!(find("free").project_limit, None);
        assert!(!find("free").has(Feature::MobileAccess));
        assert_eq!(find("scale").project_limit, Some(50));
        assert_eq!(find("team").seat_limit, Some(25));
        c.plans.insert(
            "bad".into(),
            PlanConfig {
                features: vec!["teleport".into()],
                ..PlanConfig::default()
            },
        );
        assert!(c.validate().is_err());
    }

    #[test]
    fn trusted_proxies_are_addresses() {
        let mut c = PlatformConfig {
            trusted_proxies: vec!["10.0.0.1".into(), "::1".into()],
            ..PlatformConfig::default()
        };
        assert_eq!(c.trusted_proxies().unwrap().len(), 2);
        c.trusted_proxies.push("10.0.0.0/8".into());
        assert!(c.validate().is_err());
    }
}
