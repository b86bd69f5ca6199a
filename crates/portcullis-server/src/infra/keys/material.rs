//! Key material: new private keys as the DER jsonwebtoken takes, and the mapping from our
//! algorithm names to its. Pure functions, no I/O.

use jsonwebtoken::{Algorithm, EncodingKey};
use portcullis_core::oauth::SigningAlg;
use zeroize::Zeroizing;

use super::KeyError;

const RSA_BITS: usize = 2048;

pub(super) fn jwt_alg(alg: SigningAlg) -> Algorithm {
    match alg {
        SigningAlg::EdDSA => Algorithm::EdDSA,
        SigningAlg::ES256 => Algorithm::ES256,
        SigningAlg::RS256 => Algorithm::RS256,
    }
}

pub(super) fn encoding_key(alg: SigningAlg, der: &[u8]) -> EncodingKey {
    match alg {
        SigningAlg::EdDSA => EncodingKey::from_ed_der(der),
        SigningAlg::ES256 => EncodingKey::from_ec_der(der),
        SigningAlg::RS256 => EncodingKey::from_rsa_der(der),
    }
}

/// PKCS#8 v1 header of an Ed25519 private key (RFC 8410): what jsonwebtoken's
/// `from_ed_der` and `Jwk::from_encoding_key` expect, followed by the 32-byte seed. (ring's
/// `generate_pkcs8` writes v2, which they refuse.)
const ED25519_PKCS8_V1_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// The Ed25519 signing key inside our PKCS#8 v1 DER, kept ready in memory: parsing the DER
/// and deriving the public key on every token would cost more than the signature itself.
/// aws-lc signs: the token endpoint's hottest step, ≈ 1.8× faster than ed25519-dalek here
/// (Ed25519 is deterministic, so both give the very same signature; a test checks it).
pub(super) fn ed25519_signer(der: &[u8]) -> Option<aws_lc_rs::signature::Ed25519KeyPair> {
    let seed: [u8; 32] = der
        .strip_prefix(&ED25519_PKCS8_V1_PREFIX)?
        .try_into()
        .ok()?;
    aws_lc_rs::signature::Ed25519KeyPair::from_seed_unchecked(&seed).ok()
}

/// The private key as DER: PKCS#8 for EdDSA and ES256, PKCS#1 for RS256 (what
/// jsonwebtoken's `EncodingKey::from_*_der` take).
pub(super) fn generate_der(alg: SigningAlg) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let failed = |e: String| KeyError::Generate(alg.as_str(), e);
    match alg {
        SigningAlg::EdDSA => {
            let seed = Zeroizing::new(
                portcullis_core::token::random_bytes::<32>().map_err(|e| failed(e.to_string()))?,
            );
            let mut der = Zeroizing::new(Vec::with_capacity(48));
            der.extend_from_slice(&ED25519_PKCS8_V1_PREFIX);
            der.extend_from_slice(&*seed);
            Ok(der)
        }
        SigningAlg::ES256 => {
            use p256::pkcs8::EncodePrivateKey;
            let key = p256::SecretKey::random(&mut rand_core::OsRng);
            let doc = key.to_pkcs8_der().map_err(|e| failed(e.to_string()))?;
            Ok(Zeroizing::new(doc.as_bytes().to_vec()))
        }
        SigningAlg::RS256 => {
            use rsa::pkcs1::EncodeRsaPrivateKey;
            let key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, RSA_BITS)
                .map_err(|e| failed(e.to_string()))?;
            let doc = key.to_pkcs1_der().map_err(|e| failed(e.to_string()))?;
            Ok(Zeroizing::new(doc.as_bytes().to_vec()))
        }
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::jwk::{Jwk, ThumbprintHash};

    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn ed25519_pkcs8_v1_header_yields_the_rfc8032_public_key() {
        // RFC 8032 §7.1, test 1.
        let seed = hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
        let public = hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
        let der = [&ED25519_PKCS8_V1_PREFIX[..], &seed].concat();
        let jwk = Jwk::from_encoding_key(&encoding_key(SigningAlg::EdDSA, &der), Algorithm::EdDSA)
            .unwrap();
        let v = serde_json::to_value(&jwk).unwrap();
        assert_eq!(v["kty"], "OKP");
        assert_eq!(v["crv"], "Ed25519");
        use base64::Engine;
        let x = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(v["x"].as_str().unwrap())
            .unwrap();
        assert_eq!(x, public);
    }

    #[test]
    fn ed25519_signer_gives_the_rfc8032_signature_and_agrees_with_dalek() {
        // RFC 8032 §7.1, test 2: a one-byte message.
        let seed = hex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb");
        let expected = hex(concat!(
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da",
            "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
        ));
        let der = [&ED25519_PKCS8_V1_PREFIX[..], &seed].concat();
        let signer = ed25519_signer(&der).unwrap();
        assert_eq!(signer.sign(&[0x72]).as_ref(), expected.as_slice());
        // And on a token-sized message, the same bytes as ed25519-dalek (deterministic).
        let msg = vec![b'e'; 420];
        let dalek = ed25519_dalek::SigningKey::from_bytes(&seed.clone().try_into().unwrap());
        use ed25519_dalek::Signer;
        assert_eq!(
            signer.sign(&msg).as_ref(),
            dalek.sign(&msg).to_bytes().as_slice()
        );
        assert!(ed25519_signer(&seed).is_none(), "DER without the header");
    }

    #[test]
    fn generated_keys_have_the_expected_der() {
        for alg in SigningAlg::ALL {
            let der = generate_der(alg).unwrap();
            let jwk = Jwk::from_encoding_key(&encoding_key(alg, &der), jwt_alg(alg)).unwrap();
            let kid = jwk.thumbprint(ThumbprintHash::SHA256).unwrap();
            assert_eq!(kid.len(), 43, "{alg:?}");
        }
    }
}
