//! Verified domains: an org proves it owns a DNS domain by publishing a TXT record, and
//! from then on its SSO providers vouch for addresses in that domain (and its admins may
//! manage accounts there). Pure rules: the name, the record the org must publish, the
//! free-mail domains nobody may claim, and which addresses a domain covers.
//!
//! A domain covers exactly its own addresses: `example.com` covers `a@example.com`, not
//! `a@eu.example.com` (each subdomain is claimed and verified on its own).

use crate::{Email, OrgId, Timestamp, ValidationError};

/// The label the verification record lives under: `_portcullis-challenge.<domain>`.
pub const CHALLENGE_LABEL: &str = "_portcullis-challenge";
/// The TXT value's prefix: `portcullis-verification=<token>`.
pub const CHALLENGE_PREFIX: &str = "portcullis-verification=";

/// Free-mail domains built in: addresses there belong to the mail provider's customers, so
/// no org may claim them. `*` as the last label matches every top-level domain
/// (`gmx.*` is gmx.de, gmx.net, …). Operators extend it with `free_mail_domains`.
pub const FREE_MAIL: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "outlook.com",
    "hotmail.com",
    "hotmail.co.uk",
    "live.com",
    "msn.com",
    "yahoo.com",
    "yahoo.co.uk",
    "ymail.com",
    "icloud.com",
    "me.com",
    "mac.com",
    "aol.com",
    "proton.me",
    "protonmail.com",
    "pm.me",
    "tutanota.com",
    "tuta.io",
    "zoho.com",
    "fastmail.com",
    "hey.com",
    "gmx.*",
    "web.de",
    "mail.com",
    "mail.ru",
    "yandex.*",
    "ya.ru",
    "qq.com",
    "163.com",
    "126.com",
    "sina.com",
    "naver.com",
];

/// A DNS domain as an org claims it: lower case, ASCII (internationalized names in their
/// `xn--` form), at least two labels, no trailing dot, not an IP address.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct DomainName(String);

impl DomainName {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let invalid = || {
            ValidationError::new(
                "domain",
                "domain must be a DNS name like example.com (letters, digits and '-', at least two labels; \
                 internationalized names in their xn-- form)",
            )
        };
        let s = raw.trim().trim_end_matches('.').to_ascii_lowercase();
        if s.is_empty() || s.len() > 253 {
            return Err(invalid());
        }
        let labels: Vec<&str> = s.split('.').collect();
        if labels.len() < 2 {
            return Err(invalid());
        }
        let label_ok = |l: &&str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if !labels.iter().all(label_ok) {
            return Err(invalid());
        }
        // An all-numeric last label is an IPv4 address (or nothing DNS serves).
        if labels
            .last()
            .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(invalid());
        }
        Ok(Self(s))
    }

    /// The domain part of an address, when it is a domain this type accepts.
    pub fn of_email(email: &Email) -> Option<Self> {
        Self::parse(email.domain()).ok()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this domain is a free-mail provider's: built in, or one of `extra`
    /// (the operator's `free_mail_domains`, same `name.*` form allowed).
    pub fn is_free_mail(&self, extra: &[String]) -> bool {
        FREE_MAIL
            .iter()
            .copied()
            .chain(extra.iter().map(String::as_str))
            .any(|pattern| matches_pattern(pattern, &self.0))
    }

    /// The name of the TXT record that proves ownership.
    pub fn challenge_name(&self) -> String {
        format!("{CHALLENGE_LABEL}.{}", self.0)
    }

    /// Whether `email` is an address in exactly this domain.
    pub fn covers(&self, email: &Email) -> bool {
        email.domain() == self.0
    }
}

impl std::fmt::Display for DomainName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Debug for DomainName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DomainName({})", self.0)
    }
}

/// `pattern` is a domain, or a domain whose last label is `*` (any top-level domain).
fn matches_pattern(pattern: &str, domain: &str) -> bool {
    let pattern = pattern.trim().trim_end_matches('.').to_ascii_lowercase();
    match pattern.strip_suffix(".*") {
        Some(stem) => domain
            .strip_prefix(stem)
            .and_then(|rest| rest.strip_prefix('.'))
            .is_some_and(|tld| !tld.is_empty() && !tld.contains('.')),
        None => pattern == domain,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DomainStatus {
    /// Claimed; the TXT record has not been seen yet.
    Pending,
    /// Proven: the record was seen (or a platform admin vouched for it).
    Verified,
}

impl DomainStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DomainStatus::Pending => "pending",
            DomainStatus::Verified => "verified",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(DomainStatus::Pending),
            "verified" => Some(DomainStatus::Verified),
            _ => None,
        }
    }
}

/// How a domain was verified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerificationMethod {
    /// The TXT record was found in DNS.
    Dns,
    /// A platform admin marked it verified (offline installs, no public DNS).
    Admin,
}

impl VerificationMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            VerificationMethod::Dns => "dns",
            VerificationMethod::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "dns" => Some(VerificationMethod::Dns),
            "admin" => Some(VerificationMethod::Admin),
            _ => None,
        }
    }
}

/// An org's claim on a domain. Several orgs may hold pending claims on one domain (each
/// with its own token); at most one org holds it verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrgDomain {
    pub org_id: OrgId,
    pub domain: DomainName,
    /// This claim's secret part of the TXT value (random, per org and domain).
    pub token: String,
    pub status: DomainStatus,
    pub method: Option<VerificationMethod>,
    pub created_at: Timestamp,
    pub verified_at: Option<Timestamp>,
}

impl OrgDomain {
    /// A new pending claim with a fresh random token.
    pub fn claim(org_id: OrgId, domain: DomainName) -> Result<Self, getrandom::Error> {
        let token = crate::token::random_bytes::<20>()?
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(Self {
            org_id,
            domain,
            token,
            status: DomainStatus::Pending,
            method: None,
            created_at: crate::now(),
            verified_at: None,
        })
    }

    /// The TXT value the org must publish at [`DomainName::challenge_name`].
    pub fn challenge_value(&self) -> String {
        format!("{CHALLENGE_PREFIX}{}", self.token)
    }

    /// Whether one of the TXT values found proves this claim (surrounding whitespace and
    /// quotes, which some DNS consoles add, are ignored).
    pub fn proven_by(&self, found: &[String]) -> bool {
        let expected = self.challenge_value();
        found
            .iter()
            .any(|v| v.trim().trim_matches('"').trim() == expected)
    }

    pub fn is_verified(&self) -> bool {
        self.status == DomainStatus::Verified
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalizes_names() {
        let d = DomainName::parse(" Example.COM. ").unwrap();
        assert_eq!(d.as_str(), "example.com");
        assert_eq!(d.challenge_name(), "_portcullis-challenge.example.com");
        assert!(DomainName::parse("xn--mnchen-3ya.de").is_ok());
        assert!(DomainName::parse("eu.acme-corp.co.uk").is_ok());
        for bad in [
            "",
            "localhost",
            "com",
            "10.0.0.1",
            "-a.com",
            "a-.com",
            "a..com",
            "münchen.de",
            "*.example.com",
            "exa mple.com",
            "example.com/x",
            "_dmarc.example.com",
            &format!("{}.com", "a".repeat(64)),
        ] {
            assert!(DomainName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn free_mail_is_built_in_and_extendable() {
        let free = |d: &str, extra: &[String]| DomainName::parse(d).unwrap().is_free_mail(extra);
        for d in [
            "gmail.com",
            "googlemail.com",
            "outlook.com",
            "hotmail.com",
            "live.com",
            "yahoo.com",
            "icloud.com",
            "me.com",
            "aol.com",
            "proton.me",
            "protonmail.com",
            "gmx.de",
            "gmx.net",
            "mail.ru",
            "yandex.ru",
            "yandex.com",
            "qq.com",
            "163.com",
        ] {
            assert!(free(d, &[]), "{d}");
        }
        for d in ["example.com", "gmx.co.uk", "notgmail.com", "mygmx.de"] {
            assert!(!free(d, &[]), "{d}");
        }
        let extra = vec!["Corp-Mail.example".to_owned(), "freemail.*".to_owned()];
        assert!(free("corp-mail.example", &extra));
        assert!(free("freemail.org", &extra));
        assert!(!free("example.com", &extra));
    }

    #[test]
    fn covers_exactly_its_own_addresses() {
        let d = DomainName::parse("example.com").unwrap();
        assert!(d.covers(&Email::parse("Alice@Example.com").unwrap()));
        assert!(!d.covers(&Email::parse("alice@eu.example.com").unwrap()));
        assert!(!d.covers(&Email::parse("alice@badexample.com").unwrap()));
        assert!(!d.covers(&Email::parse("example.com@evil.com").unwrap()));
        assert_eq!(
            DomainName::of_email(&Email::parse("a@b.example.com").unwrap()),
            Some(DomainName::parse("b.example.com").unwrap())
        );
    }

    #[test]
    fn a_claim_is_proven_by_its_own_record_only() {
        let org = OrgId::new();
        let d = DomainName::parse("example.com").unwrap();
        let mine = OrgDomain::claim(org, d.clone()).unwrap();
        let theirs = OrgDomain::claim(OrgId::new(), d).unwrap();
        assert_ne!(mine.token, theirs.token);
        assert_eq!(mine.token.len(), 40);
        assert_eq!(mine.status, DomainStatus::Pending);
        assert!(mine.proven_by(&["v=spf1 -all".into(), mine.challenge_value()]));
        assert!(mine.proven_by(&[format!("\"{}\" ", mine.challenge_value())]));
        assert!(!mine.proven_by(&[theirs.challenge_value()]));
        assert!(!mine.proven_by(&[]));
        assert!(!mine.proven_by(std::slice::from_ref(&mine.token)));
    }
}
