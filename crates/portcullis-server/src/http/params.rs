//! Form and query parameters of the OAuth-style endpoints and our own sign-in pages:
//! RFC 6749 §3.1 forbids repeating a parameter, so they are parsed into a list and
//! checked, not into a map that would silently keep one of them.

#[derive(Debug, Default, Clone)]
pub struct Params(Vec<(String, String)>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parameter {0:?} must not be repeated")]
pub struct RepeatedParameter(pub String);

impl Params {
    pub fn parse(raw: &[u8]) -> Result<Self, RepeatedParameter> {
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(raw).into_owned().collect();
        for (i, (k, _)) in pairs.iter().enumerate() {
            if pairs[..i].iter().any(|(other, _)| other == k) {
                return Err(RepeatedParameter(k.clone()));
            }
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
            RepeatedParameter("a".into())
        );
        let p = Params::parse(b"a=1&b=&c=x%20y").unwrap();
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), None);
        assert_eq!(p.get("c"), Some("x y"));
        assert_eq!(p.to_query_without(&["a"]), "b=&c=x+y");
    }
}
