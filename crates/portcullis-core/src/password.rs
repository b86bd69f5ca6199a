//! Passwords: the policy for accepting one, and argon2id hashing with OWASP parameters
//! (m = 19 MiB, t = 2, p = 1). Hashing is CPU- and memory-heavy on purpose; callers run it
//! off the async runtime and bound how many run at once.

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use std::sync::OnceLock;

use crate::ValidationError;

/// A plaintext password on its way to being hashed or checked. Never printed.
pub struct Password(String);

impl Password {
    pub const MIN_CHARS: usize = 8;
    /// Long enough for any passphrase, short enough that hashing cost stays bounded.
    pub const MAX_BYTES: usize = 1024;

    /// Applies the policy for *new* passwords (NIST SP 800-63B: length, not composition).
    pub fn new_for_signup(raw: String) -> Result<Self, ValidationError> {
        if raw.chars().count() < Self::MIN_CHARS {
            return Err(ValidationError::new(
                "password",
                format!("password must be at least {} characters", Self::MIN_CHARS),
            ));
        }
        Self::for_login(raw)
    }

    /// Accepts any candidate for checking against a stored hash, within the size bound.
    pub fn for_login(raw: String) -> Result<Self, ValidationError> {
        if raw.len() > Self::MAX_BYTES {
            return Err(ValidationError::new(
                "password",
                format!("password must be at most {} bytes", Self::MAX_BYTES),
            ));
        }
        Ok(Self(raw))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

/// A PHC-format argon2id hash string as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHash(***)")
    }
}

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

/// Hashes a new password with a fresh random salt.
pub fn hash(password: &Password) -> Result<PasswordHash, HashError> {
    Argon2::default()
        .hash_password(password.expose().as_bytes())
        .map(|h| PasswordHash(h.to_string()))
        .map_err(|e| HashError(e.to_string()))
}

/// Checks a candidate against a stored hash; a malformed stored hash never matches.
pub fn verify(password: &Password, stored: &PasswordHash) -> bool {
    Argon2::default()
        .verify_password(password.expose().as_bytes(), stored.as_str())
        .is_ok()
}

/// Checks a candidate for an account that does not exist, against a hash of the same cost,
/// so "unknown email" and "wrong password" take the same time and cannot be told apart.
pub fn verify_dummy(password: &Password) {
    static DUMMY: OnceLock<Option<PasswordHash>> = OnceLock::new();
    let dummy = DUMMY.get_or_init(|| {
        Password::for_login("portcullis-dummy-password".to_owned())
            .ok()
            .and_then(|p| hash(&p).ok())
    });
    if let Some(d) = dummy {
        let _ = verify(password, d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy() {
        assert_eq!(
            Password::new_for_signup("short".into()).unwrap_err().field,
            "password"
        );
        assert!(Password::new_for_signup("long enough".into()).is_ok());
        assert!(Password::for_login("x".into()).is_ok());
        assert!(Password::for_login("x".repeat(1025)).is_err());
        assert_eq!(
            format!("{:?}", Password::for_login("secret".into()).unwrap()),
            "Password(***)"
        );
    }

    #[test]
    fn hash_and_verify() {
        let p = Password::new_for_signup("correct horse battery".into()).unwrap();
        let h = hash(&p).unwrap();
        assert!(h.as_str().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify(&p, &h));
        assert!(!verify(&Password::for_login("wrong".into()).unwrap(), &h));
        assert!(!verify(&p, &PasswordHash::from_stored("garbage".into())));
        // Same password, different salt.
        assert_ne!(hash(&p).unwrap(), h);
        verify_dummy(&p);
    }
}
