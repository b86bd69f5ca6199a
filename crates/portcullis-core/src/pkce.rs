//! PKCE (RFC 7636), S256 only: the one implementation the OpenID Connect provider and the
//! mobile hand-off both use.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A well-formed S256 challenge: base64url (no padding) of a 32-byte digest.
pub fn challenge_well_formed(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

/// A well-formed verifier: 43–128 characters of the unreserved alphabet (RFC 7636 §4.1).
pub fn verifier_well_formed(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Does `verifier` prove `challenge`? base64url(SHA-256(verifier)) compared in constant
/// time; a malformed verifier never matches, whatever it hashes to.
pub fn verify_s256(verifier: &str, challenge: &str) -> bool {
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    verifier_well_formed(verifier)
        && computed.len() == challenge.len()
        && bool::from(computed.as_bytes().ct_eq(challenge.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7636 appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn rfc_7636_vector() {
        assert!(challenge_well_formed(CHALLENGE));
        assert!(verify_s256(VERIFIER, CHALLENGE));
        assert!(!verify_s256("other", CHALLENGE));
    }

    #[test]
    fn malformed_verifiers_never_match() {
        // A too-short verifier that does hash to the challenge still fails.
        let short = "abc";
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(short.as_bytes()));
        assert!(challenge_well_formed(&challenge));
        assert!(!verify_s256(short, &challenge));
        // Characters outside the unreserved alphabet.
        let bad = format!("{}+", &VERIFIER[..43]);
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(bad.as_bytes()));
        assert!(!verify_s256(&bad, &challenge));
        // Too long.
        let long = "a".repeat(129);
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(long.as_bytes()));
        assert!(!verify_s256(&long, &challenge));
        assert!(verify_s256(
            &"a".repeat(128),
            &URL_SAFE_NO_PAD.encode(Sha256::digest("a".repeat(128).as_bytes()))
        ));
    }

    #[test]
    fn challenge_shape() {
        assert!(!challenge_well_formed(&CHALLENGE[..42]));
        assert!(!challenge_well_formed(&format!("{}=", &CHALLENGE[..42])));
        assert!(!challenge_well_formed(&format!("{CHALLENGE}A")));
    }
}
