//! Form and query parameters of the OAuth-style endpoints and our own sign-in pages:
//! RFC 6749 §3.1 forbids repeating a parameter, so they are parsed into a list and
//! checked, not into a map that would silently keep one of them.
//!
//! These are read before anyone is authenticated, so parsing must stay linear in the input:
//! repeats are found with a set, and a request with more than [`MAX_PARAMETERS`] is refused
//! after reading one parameter past the cap, however long the rest of it is.

use std::collections::HashSet;

/// More parameters than any OAuth, OpenID Connect or sign-in request of ours carries.
pub const MAX_PARAMETERS: usize = 64;

#[derive(Debug, Default, Clone)]
pub struct Params(Vec<(String, String)>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    #[error("parameter {0:?} must not be repeated")]
    Repeated(String),
    #[error("too many parameters (at most {MAX_PARAMETERS})")]
    TooMany,
}

impl Params {
    pub fn parse(raw: &[u8]) -> Result<Self, ParamsError> {
        let mut pairs = Vec::new();
        let mut seen = HashSet::new();
        for (k, v) in url::form_urlencoded::parse(raw) {
            if pairs.len() == MAX_PARAMETERS {
                return Err(ParamsError::TooMany);
            }
            if !seen.insert(k.clone()) {
                return Err(ParamsError::Repeated(k.into_owned()));
            }
            pairs.push((k.into_owned(), v.into_owned()));
        }
        Ok(Self(pairs))
    }

    /// A parameter's value; empty values count as absent (RFC 6749 §3.1).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// The parameters as a query string, without the named ones.
    pub fn to_query_without(&self, drop: &[&str]) -> String {
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.0 {
            if !drop.contains(&k.as_str()) {
                out.append_pair(k, v);
            }
        }
        out.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_are_refused() {
        assert_eq!(
            Params::parse(b"a=1&b=2&a=3").unwrap_err(),
            ParamsError::Repeated("a".into())
        );
        // Repeats are compared after decoding: `a` and `%61` are the same name.
        assert_eq!(
            Params::parse(b"a=1&%61=2").unwrap_err(),
            ParamsError::Repeated("a".into())
        );
        let p = Params::parse(b"a=1&b=&c=x%20y").unwrap();
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), None);
        assert_eq!(p.get("c"), Some("x y"));
        assert_eq!(p.to_query_without(&["a"]), "b=&c=x+y");
    }

    fn distinct(n: usize) -> String {
        (0..n)
            .map(|i| format!("k{i}=v"))
            .collect::<Vec<_>>()
            .join("&")
    }

    #[test]
    fn at_most_max_parameters() {
        assert!(Params::parse(distinct(MAX_PARAMETERS).as_bytes()).is_ok());
        assert_eq!(
            Params::parse(distinct(MAX_PARAMETERS + 1).as_bytes()).unwrap_err(),
            ParamsError::TooMany
        );
        // A flood is refused without decoding it all (this took minutes when repeats were
        // looked for pairwise).
        assert_eq!(
            Params::parse(distinct(200_000).as_bytes()).unwrap_err(),
            ParamsError::TooMany
        );
    }
}
