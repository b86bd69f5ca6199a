use crate::ValidationError;

/// An email address in the normalized form used for lookups and uniqueness: trimmed and
/// lower-cased. Deliberately permissive about the local part (RFC 5321 allows a lot) and
/// strict about what breaks mail or logs: whitespace, control characters, missing domain.
#[derive(Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let invalid = |m: &str| ValidationError::new("email", m);
        let s = raw.trim().to_lowercase();
        if s.is_empty() {
            return Err(invalid("email is required"));
        }
        if s.len() > 254 {
            return Err(invalid("email must be at most 254 characters"));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid(
                "email must not contain spaces or control characters",
            ));
        }
        let Some((local, domain)) = s.rsplit_once('@') else {
            return Err(invalid("email must contain '@'"));
        };
        if local.is_empty() || local.len() > 64 || local.contains('@') {
            return Err(invalid("email has an invalid local part"));
        }
        let labels_ok = domain.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
        if !domain.contains('.') || !labels_ok {
            return Err(invalid("email has an invalid domain"));
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before '@', used to name a personal organization.
    pub fn local_part(&self) -> &str {
        self.0.split('@').next().unwrap_or_default()
    }

    /// The part after the last '@' (lower case), e.g. to match an org's verified domains.
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or_default()
    }
}

impl std::fmt::Display for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Debug for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Email({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_case_and_whitespace() {
        let e = Email::parse("  Alice.Smith+tag@Example.COM ").unwrap();
        assert_eq!(e.as_str(), "alice.smith+tag@example.com");
        assert_eq!(e.local_part(), "alice.smith+tag");
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@b",
            "a b@example.com",
            "a@exa mple.com",
            "a@-x.com",
            "a@x..com",
            "a\u{0}@x.com",
        ] {
            let err = Email::parse(bad).unwrap_err();
            assert_eq!(err.field, "email", "{bad:?}");
        }
        assert!(Email::parse(&format!("{}@x.com", "a".repeat(65))).is_err());
    }

    #[test]
    fn exhaustive_small_inputs_never_panic_and_roundtrip() {
        // A cheap property test: every short string over a hostile alphabet either fails to
        // parse or parses to a value that parses to itself again.
        let alphabet = ['a', '@', '.', '-', ' ', 'Z', '+', '\u{e9}'];
        let mut buf = String::new();
        fn walk(buf: &mut String, depth: usize, alphabet: &[char]) {
            if let Ok(e) = Email::parse(buf) {
                assert_eq!(Email::parse(e.as_str()).unwrap(), e);
                assert!(e.as_str().contains('@'));
            }
            if depth == 0 {
                return;
            }
            for c in alphabet {
                buf.push(*c);
                walk(buf, depth - 1, alphabet);
                buf.pop();
            }
        }
        walk(&mut buf, 6, &alphabet);
    }
}
