//! Encryption at rest for secrets the server must recover later (signing private keys,
//! webhook secrets): AES-256-GCM under a key derived from the master key, one key per
//! purpose, so a ciphertext of one kind can never be opened as another.
//!
//! Sealed layout: `version (1 byte) ‖ nonce (12 bytes, random) ‖ ciphertext ‖ tag (16 bytes)`.
//! The caller's associated data (e.g. the signing key's `kid`) binds a ciphertext to its
//! record: moved to another row, it no longer opens.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::{hkdf, hmac};
use zeroize::Zeroizing;

use crate::config::MasterKey;

/// HKDF `info` strings: one derived key per kind of secret. Never change one that shipped.
pub mod purpose {
    pub const SIGNING_KEYS: &str = "portcullis signing keys";
    pub const WEBHOOK_SECRETS: &str = "portcullis webhook secrets";
}

/// Bumped if the layout or the derivation ever changes; old records stay readable by version.
const VERSION: u8 = 1;
/// A fixed, public HKDF salt: the master key is already uniformly random (RFC 5869 §3.1).
const SALT: &[u8] = b"portcullis secret box v1";
const TAG_LEN: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum SecretBoxError {
    #[error("no randomness for a nonce: {0}")]
    Randomness(getrandom::Error),
    /// Wrong master key, wrong associated data, or a damaged ciphertext; ring does not say
    /// which, and neither may we.
    #[error("cannot decrypt: the master key or the record does not match the ciphertext")]
    Open,
    #[error("key derivation failed")]
    Derive,
}

/// HMAC-SHA256 of `data` under a 32-byte key. Infallible: HMAC takes a key of any length,
/// so there is no error to hide behind a constant.
pub fn mac(key: &[u8; 32], data: &[u8]) -> [u8; 32] {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data);
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

/// Labels of keys derived from the master key by [`derive_key`]. Never change one that
/// shipped: the derived key names stored tokens.
pub mod label {
    pub const REFRESH_ROTATION: &[u8] = b"portcullis/refresh-rotation/v1";
    pub const MOBILE_SESSION: &[u8] = b"portcullis/mobile-session/v1";
}

/// A key for one use, derived from the master key (HMAC-SHA256 of the label), so the master
/// key itself signs nothing.
pub fn derive_key(master: &MasterKey, label: &[u8]) -> [u8; 32] {
    mac(master.expose(), label)
}

/// Seals and opens secrets of one purpose.
pub struct SecretBox {
    key: LessSafeKey,
}

impl SecretBox {
    pub fn new(master: &MasterKey, purpose: &'static str) -> Result<Self, SecretBoxError> {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, SALT).extract(master.expose());
        let info = [purpose.as_bytes()];
        let okm = prk
            .expand(&info, &AES_256_GCM)
            .map_err(|_| SecretBoxError::Derive)?;
        Ok(Self {
            key: LessSafeKey::new(UnboundKey::from(okm)),
        })
    }

    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, SecretBoxError> {
        let nonce = portcullis_core::token::random_bytes::<NONCE_LEN>()
            .map_err(SecretBoxError::Randomness)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + TAG_LEN);
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        let mut body = Zeroizing::new(plaintext.to_vec());
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut body,
            )
            .map_err(|_| SecretBoxError::Open)?;
        out.extend_from_slice(&body);
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    /// The plaintext, wiped from memory when dropped.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, SecretBoxError> {
        let Some((&VERSION, rest)) = sealed.split_first() else {
            return Err(SecretBoxError::Open);
        };
        if rest.len() < NONCE_LEN + TAG_LEN {
            return Err(SecretBoxError::Open);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SecretBoxError::Open)?;
        let mut buf = Zeroizing::new(ciphertext.to_vec());
        let len = self
            .key
            .open_in_place(nonce, Aad::from(aad), &mut buf)
            .map_err(|_| SecretBoxError::Open)?
            .len();
        buf.truncate(len);
        Ok(buf)
    }
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn master(byte: u8) -> MasterKey {
        use base64::Engine;
        crate::Config {
            master_key: Some(
                base64::engine::general_purpose::STANDARD
                    .encode([byte; 32])
                    .into(),
            ),
            ..crate::Config::default()
        }
        .master_key()
        .unwrap()
    }

    #[test]
    fn round_trip_and_bindings() {
        let b = SecretBox::new(&master(7), purpose::SIGNING_KEYS).unwrap();
        let sealed = b.seal(b"private key", b"kid-1").unwrap();
        assert_eq!(sealed.len(), 1 + 12 + 11 + 16);
        assert_eq!(sealed[0], VERSION);
        assert!(!sealed.windows(11).any(|w| w == b"private key"));
        assert_eq!(&*b.open(&sealed, b"kid-1").unwrap(), b"private key");

        // Fresh nonce each time.
        assert_ne!(sealed, b.seal(b"private key", b"kid-1").unwrap());
        // Bound to the record, the purpose and the master key.
        assert!(b.open(&sealed, b"kid-2").is_err());
        let webhook = SecretBox::new(&master(7), purpose::WEBHOOK_SECRETS).unwrap();
        assert!(webhook.open(&sealed, b"kid-1").is_err());
        let other = SecretBox::new(&master(8), purpose::SIGNING_KEYS).unwrap();
        assert!(other.open(&sealed, b"kid-1").is_err());
        // Tampering, truncation, unknown versions.
        let mut bad = sealed.clone();
        bad[20] ^= 1;
        assert!(b.open(&bad, b"kid-1").is_err());
        assert!(b.open(&sealed[..20], b"kid-1").is_err());
        assert!(b.open(&[], b"kid-1").is_err());
        let mut v2 = sealed.clone();
        v2[0] = 2;
        assert!(b.open(&v2, b"kid-1").is_err());
        assert_eq!(format!("{b:?}"), "SecretBox(***)");
    }

    #[test]
    fn derived_keys_match_hmac_sha256_and_differ_by_label() {
        use ::hmac::{Hmac, KeyInit, Mac};
        let master = MasterKey::from_bytes([7u8; 32]);
        let mut reference = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&[7u8; 32]).unwrap();
        reference.update(label::REFRESH_ROTATION);
        let expected: [u8; 32] = reference.finalize().into_bytes().into();
        assert_eq!(derive_key(&master, label::REFRESH_ROTATION), expected);
        assert_ne!(
            derive_key(&master, label::REFRESH_ROTATION),
            derive_key(&master, label::MOBILE_SESSION)
        );
    }
}
