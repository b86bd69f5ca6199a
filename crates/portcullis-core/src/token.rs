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
        Self::of_bytes(raw.as_bytes())
    }

    /// The same for a value not (yet) known to be text, e.g. a header's raw bytes.
    pub fn of_bytes(raw: &[u8]) -> Self {
        Self(Sha256::digest(raw).into())
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

/// Whether a project issues live or test credentials; the mode is part of every key's prefix
/// so a test key can never be mistaken for a live one in a config file or a log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyMode {
    Live,
    Test,
}

impl KeyMode {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyMode::Live => "live",
            KeyMode::Test => "test",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, crate::ValidationError> {
        match raw {
            "live" => Ok(Self::Live),
            "test" => Ok(Self::Test),
            _ => Err(crate::ValidationError::new(
                "mode",
                "mode must be 'live' or 'test'",
            )),
        }
    }
}

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Random characters in a secret key: 40 × log2(62) ≈ 238 bits.
const SECRET_BODY_LEN: usize = 40;
/// Base62 digits of the checksum: 62^6 > 2^32, so the 32-bit checksum always fits.
const CHECKSUM_LEN: usize = 6;
/// Characters of the body shown as a key's public prefix (`sk_live_abcd1234`).
const DISPLAY_LEN: usize = 8;

/// The checksum suffix of a key: the first 32 bits of SHA-256 over everything before it,
/// in fixed-width base62. It catches typos and truncation without a database read; it is
/// no secret and proves nothing about who made the key.
fn checksum(head: &str) -> [u8; CHECKSUM_LEN] {
    let digest = Sha256::digest(head.as_bytes());
    let mut n = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out
}

fn split_checked(raw: &str) -> Option<&str> {
    if !raw.is_ascii() || raw.len() <= CHECKSUM_LEN {
        return None;
    }
    let (head, sum) = raw.split_at(raw.len() - CHECKSUM_LEN);
    // Not a secret comparison (the checksum is derived from public text), but cheap anyway.
    (checksum(head).as_slice() == sum.as_bytes()).then_some(head)
}

/// Why a presented key was refused before any lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyFormatError {
    #[error("not a Portcullis key of this kind")]
    Shape,
    #[error("the key's checksum does not match: it was mistyped or truncated")]
    Checksum,
}

/// A project's secret key, as presented by a backend: `sk_live_` or `sk_test_`, 40 base62
/// characters, a 6-character checksum. Parsing checks the shape and the checksum only; the
/// digest is what the store looks up.
#[derive(Clone)]
pub struct SecretKey {
    raw: String,
    mode: KeyMode,
}

impl SecretKey {
    pub fn generate(mode: KeyMode) -> Result<Self, getrandom::Error> {
        let mut body = String::with_capacity(SECRET_BODY_LEN);
        while body.len() < SECRET_BODY_LEN {
            for b in random_bytes::<64>()? {
                // 248 = 4 × 62: rejecting the rest keeps every character equally likely.
                if b < 248 && body.len() < SECRET_BODY_LEN {
                    body.push(BASE62[(b % 62) as usize] as char);
                }
            }
        }
        let mut raw = format!("sk_{}_{body}", mode.as_str());
        let sum = checksum(&raw);
        raw.extend(sum.iter().map(|b| *b as char));
        Ok(Self { raw, mode })
    }

    /// Shape and checksum, no I/O: a mistyped key never reaches the database.
    pub fn parse(raw: &str) -> Result<Self, KeyFormatError> {
        let mode = if raw.starts_with("sk_live_") {
            KeyMode::Live
        } else if raw.starts_with("sk_test_") {
            KeyMode::Test
        } else {
            return Err(KeyFormatError::Shape);
        };
        if raw.len() != 8 + SECRET_BODY_LEN + CHECKSUM_LEN
            || !raw[8..].bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(KeyFormatError::Shape);
        }
        split_checked(raw).ok_or(KeyFormatError::Checksum)?;
        Ok(Self {
            raw: raw.to_owned(),
            mode,
        })
    }

    /// Whether a bearer value claims to be a secret key (then it is parsed as one, and a
    /// bad one is refused as a key rather than tried as a session).
    pub fn claims(raw: &str) -> bool {
        raw.starts_with("sk_live_") || raw.starts_with("sk_test_")
    }

    pub fn mode(&self) -> KeyMode {
        self.mode
    }

    pub fn expose(&self) -> &str {
        &self.raw
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.raw)
    }

    /// What may be shown and logged: `sk_live_` and the first 8 characters of the body.
    pub fn display_prefix(&self) -> String {
        self.raw[..8 + DISPLAY_LEN].to_owned()
    }

    /// Whether `s` has the shape of a display prefix (`sk_live_abcd1234`): what the audit
    /// trail records as a key's name, and what a filter on it may ask for.
    pub fn is_display_prefix(s: &str) -> bool {
        s.len() == 8 + DISPLAY_LEN
            && (s.starts_with("sk_live_") || s.starts_with("sk_test_"))
            && s.as_bytes()[8..].iter().all(u8::is_ascii_alphanumeric)
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey({}…)", self.display_prefix())
    }
}

/// A project's publishable key: `pk_live_`/`pk_test_`, the project id (32 hex digits), a
/// checksum. It is an identifier meant for browsers and apps, not a secret, so it is derived
/// from the project rather than stored: it cannot leak anything the public config does not
/// already show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishableKey {
    pub mode: KeyMode,
    pub project_id: crate::ProjectId,
}

impl PublishableKey {
    pub fn encode(&self) -> String {
        let mut raw = format!("pk_{}_{}", self.mode.as_str(), self.project_id.0.simple());
        let sum = checksum(&raw);
        raw.extend(sum.iter().map(|b| *b as char));
        raw
    }

    pub fn parse(raw: &str) -> Result<Self, KeyFormatError> {
        let mode = if raw.starts_with("pk_live_") {
            KeyMode::Live
        } else if raw.starts_with("pk_test_") {
            KeyMode::Test
        } else {
            return Err(KeyFormatError::Shape);
        };
        if raw.len() != 8 + 32 + CHECKSUM_LEN {
            return Err(KeyFormatError::Shape);
        }
        let id = &raw[8..40];
        if !id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(KeyFormatError::Shape);
        }
        split_checked(raw).ok_or(KeyFormatError::Checksum)?;
        let project_id = uuid::Uuid::try_parse(id)
            .map(crate::ProjectId)
            .map_err(|_| KeyFormatError::Shape)?;
        Ok(Self { mode, project_id })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn display_prefixes_have_one_shape() {
        let key = SecretKey::generate(KeyMode::Live).unwrap();
        assert!(SecretKey::is_display_prefix(&key.display_prefix()));
        assert!(SecretKey::is_display_prefix("sk_test_ABCD1234"));
        for bad in [
            "",
            "sk_live_",
            "sk_live_abcd123",
            "sk_live_abcd12345",
            "pk_live_abcd1234",
            "sk_live_abcd-234",
            "sk_live_abcd123é",
        ] {
            assert!(!SecretKey::is_display_prefix(bad), "{bad}");
        }
        assert!(
            !SecretKey::is_display_prefix(key.expose()),
            "a whole key is no prefix"
        );
    }

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
    #[test]
    fn secret_keys_carry_mode_and_a_checksum() {
        let key = SecretKey::generate(KeyMode::Live).unwrap();
        let raw = key.expose().to_owned();
        assert!(raw.starts_with("sk_live_"));
        assert_eq!(raw.len(), 54);
        let parsed = SecretKey::parse(&raw).unwrap();
        assert_eq!(parsed.mode(), KeyMode::Live);
        assert_eq!(parsed.hash(), TokenHash::of(&raw));
        assert_eq!(parsed.display_prefix(), &raw[..16]);
        assert!(!format!("{parsed:?}").contains(&raw[16..]));
        let test = SecretKey::generate(KeyMode::Test).unwrap();
        assert_eq!(
            SecretKey::parse(test.expose()).unwrap().mode(),
            KeyMode::Test
        );
        assert_ne!(
            key.expose(),
            SecretKey::generate(KeyMode::Live).unwrap().expose()
        );
    }

    #[test]
    fn every_single_character_typo_in_a_secret_key_is_caught() {
        let raw = SecretKey::generate(KeyMode::Live)
            .unwrap()
            .expose()
            .to_owned();
        for i in 8..raw.len() {
            let mut bytes = raw.clone().into_bytes();
            bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
            let typo = String::from_utf8(bytes).unwrap();
            assert_eq!(
                SecretKey::parse(&typo).unwrap_err(),
                KeyFormatError::Checksum,
                "{i}"
            );
        }
        assert_eq!(
            SecretKey::parse(&raw[..raw.len() - 1]).unwrap_err(),
            KeyFormatError::Shape
        );
        assert_eq!(
            SecretKey::parse(&raw.replacen("sk_live_", "sk_prod_", 1)).unwrap_err(),
            KeyFormatError::Shape
        );
        assert_eq!(
            SecretKey::parse(&format!("{raw}é")).unwrap_err(),
            KeyFormatError::Shape
        );
        assert!(SecretKey::claims(&raw) && !SecretKey::claims("pk_live_x"));
    }

    #[test]
    fn publishable_keys_round_trip_and_refuse_typos() {
        let pk = PublishableKey {
            mode: KeyMode::Test,
            project_id: crate::ProjectId::new(),
        };
        let raw = pk.encode();
        assert!(raw.starts_with("pk_test_"));
        assert_eq!(PublishableKey::parse(&raw).unwrap(), pk);
        let live = raw.replacen("pk_test_", "pk_live_", 1);
        assert_eq!(
            PublishableKey::parse(&live).unwrap_err(),
            KeyFormatError::Checksum,
            "the mode is covered by the checksum"
        );
        assert_eq!(
            PublishableKey::parse("pk_live_nothex").unwrap_err(),
            KeyFormatError::Shape
        );
        assert_eq!(KeyMode::parse("test").unwrap(), KeyMode::Test);
        assert!(KeyMode::parse("prod").is_err());
    }
}
