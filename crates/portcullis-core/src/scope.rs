//! OAuth scopes: what a client asks for and what it was granted, as a set that keeps the
//! order it was written in (tokens and responses echo it back unchanged).

use crate::ValidationError;

/// Scopes Portcullis understands; others are refused with `invalid_scope`.
pub const SUPPORTED_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// A set of scopes: unique, in first-seen order, written space-separated on the wire.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ScopeSet(Vec<String>);

impl ScopeSet {
    /// A requested scope list: space-separated, supported scopes only, repeats dropped.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let mut out = Self::default();
        for s in raw.split(' ').filter(|s| !s.is_empty()) {
            if !SUPPORTED_SCOPES.contains(&s) {
                return Err(ValidationError::new(
                    "scope",
                    format!("unsupported scope {s:?}"),
                ));
            }
            out.insert(s);
        }
        Ok(out)
    }

    /// A scope this server granted before (stored with a grant, or signed into a token):
    /// taken as written, so a scope retired since does not make old grants unreadable.
    pub fn granted(raw: &str) -> Self {
        let mut out = Self::default();
        for s in raw.split(' ').filter(|s| !s.is_empty()) {
            out.insert(s);
        }
        out
    }

    fn insert(&mut self, scope: &str) {
        if !self.contains(scope) {
            self.0.push(scope.to_owned());
        }
    }

    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s == scope)
    }

    /// Every scope of `other` is in this set (a grant covers a request).
    pub fn covers(&self, other: &ScopeSet) -> bool {
        other.iter().all(|s| self.contains(s))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl std::fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(s)?;
        }
        Ok(())
    }
}

impl serde::Serialize for ScopeSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ScopeSet {
    /// Only what this server wrote is read back (signed tokens), so as [`ScopeSet::granted`].
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(Self::granted(&raw))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_refuses_unknown_scopes_and_drops_repeats() {
        let s = ScopeSet::parse("openid  email openid").unwrap();
        assert_eq!(s.iter().collect::<Vec<_>>(), ["openid", "email"]);
        assert_eq!(s.to_string(), "openid email");
        assert_eq!(ScopeSet::parse("openid admin").unwrap_err().field, "scope");
        assert!(ScopeSet::parse("").unwrap().is_empty());
        assert_eq!(ScopeSet::default().to_string(), "");
    }

    #[test]
    fn granted_scopes_are_read_as_written() {
        let g = ScopeSet::granted("openid retired-scope openid");
        assert_eq!(g.to_string(), "openid retired-scope");
        assert!(g.contains("retired-scope") && !g.contains("email"));
    }

    #[test]
    fn covers_is_subset() {
        let grant = ScopeSet::parse("openid email profile").unwrap();
        assert!(grant.covers(&ScopeSet::parse("email openid").unwrap()));
        assert!(grant.covers(&ScopeSet::default()));
        assert!(!grant.covers(&ScopeSet::parse("openid offline_access").unwrap()));
    }

    #[test]
    fn serde_is_the_space_separated_string() {
        let s = ScopeSet::parse("openid email").unwrap();
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"openid email\"");
        let back: ScopeSet = serde_json::from_str("\"openid email\"").unwrap();
        assert_eq!(back, s);
    }
}
