//! Opaque bearer secrets. The raw value exists only on the wire and in the client; the
//! store keeps its SHA-256 digest, so a database dump cannot be replayed.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// SHA-256 digest of a secret token; what the store indexes and compares.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    /// Hashes a token exactly as received: no trimming, decoding or re-encoding, so a value
    /// with `+`, `/` or `=` (other issuers' alphabets) is matched byte for byte.
    pub fn of(raw: &str) -> Self {
        Self(Sha256::digest(raw.as_bytes()).into())
    }

    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Self)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Constant-time equality, for the places where a digest is compared outside an index.
    pub fn ct_eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl std::fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A digest is not a secret, but eight bytes are enough to correlate in logs.
        write!(f, "TokenHash(")?;
        for b in &self.0[..4] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "…)")
    }
}

/// Prefix of a refresh token (OAuth clients and the mobile app).
pub const REFRESH_TOKEN_PREFIX: &str = "rt_";

/// A fresh refresh token: `rt_` + 256 random bits (base64url), and its digest.
pub fn new_refresh_token() -> Result<(String, TokenHash), getrandom::Error> {
    Ok(refresh_token_from(random_bytes::<32>()?))
}

/// The refresh token whose secret part is `bytes` (the successor of a rotation is derived,
/// not drawn), and its digest.
pub fn refresh_token_from(bytes: [u8; 32]) -> (String, TokenHash) {
    let raw = format!("{REFRESH_TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = TokenHash::of(&raw);
    (raw, hash)
}

/// Whether `raw` has the shape of a refresh token (worth a lookup at all).
pub fn is_refresh_token(raw: &str) -> bool {
    raw.strip_prefix(REFRESH_TOKEN_PREFIX).is_some_and(|rest| {
        rest.len() == 43
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
    })
}

/// Prefix of the (never handed out) session token behind a mobile session.
pub const MOBILE_SESSION_PREFIX: &str = "pms_";
/// Prefix of a mobile sign-in's one-time token.
pub const ONE_TIME_TOKEN_PREFIX: &str = "ott_";

/// A fresh one-time token: `ott_` + 256 random bits (base64url), and its digest.
pub fn new_one_time_token() -> Result<(String, TokenHash), getrandom::Error> {
    let raw = format!(
        "{ONE_TIME_TOKEN_PREFIX}{}",
        URL_SAFE_NO_PAD.encode(random_bytes::<32>()?)
    );
    let hash = TokenHash::of(&raw);
    Ok((raw, hash))
}

/// Fills a buffer from the operating system's CSPRNG. Failure there means the machine
/// cannot issue secrets safely at all, which callers surface as an internal error.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], getrandom::Error> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf)?;
    Ok(buf)
}

/// A web session token: 256 random bits, base64url without padding (43 characters).
#[derive(Clone)]
pub struct SessionToken(String);

impl SessionToken {
    pub fn generate() -> Result<Self, getrandom::Error> {
        Ok(Self(URL_SAFE_NO_PAD.encode(random_bytes::<32>()?)))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }
}

impl std::fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionToken(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_unique_urlsafe_and_256_bit() {
        let a = SessionToken::generate().unwrap();
        let b = SessionToken::generate().unwrap();
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), 43);
        assert_eq!(URL_SAFE_NO_PAD.decode(a.expose()).unwrap().len(), 32);
        assert!(
            a.expose()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_eq!(format!("{a:?}"), "SessionToken(***)");
    }

    #[test]
    fn hash_is_of_the_exact_bytes() {
        // Tokens from other issuers may be standard base64: the value is hashed as received.
        let raw = "ab+c/d==";
        assert_eq!(
            TokenHash::of(raw),
            TokenHash(Sha256::digest(b"ab+c/d==").into())
        );
        assert_ne!(TokenHash::of(raw), TokenHash::of("ab-c_d"));
        assert_ne!(TokenHash::of(raw), TokenHash::of("ab%2Bc%2Fd%3D%3D"));
        assert!(TokenHash::of(raw).ct_eq(&TokenHash::of(raw)));
    }

    #[test]
    fn refresh_tokens_have_one_shape() {
        let (raw, hash) = new_refresh_token().unwrap();
        assert!(raw.starts_with("rt_") && is_refresh_token(&raw));
        assert_eq!(hash, TokenHash::of(&raw));
        let (derived, _) = refresh_token_from([7u8; 32]);
        assert_eq!(derived, refresh_token_from([7u8; 32]).0);
        assert!(is_refresh_token(&derived));
        assert!(!is_refresh_token("rt_short"));
        assert!(!is_refresh_token(&derived.replacen("rt_", "xx_", 1)));
        assert!(!is_refresh_token(&format!("{derived}=")));
    }
}
