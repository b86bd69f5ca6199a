//! The server's JWS signing keys: one active key per algorithm signs; every key whose tokens
//! may still be alive is published at `/.well-known/jwks.json`.
//!
//! Keys live in the store, private halves sealed with [`SecretBox`] (purpose
//! [`purpose::SIGNING_KEYS`], associated data binding alg and kid). Each node holds them in
//! memory and reloads every [`RELOAD_INTERVAL`], and at once when a token names a kid it does
//! not know, so another node's new key is found. A rotated-out key stays published for
//! [`MAX_TOKEN_LIFETIME`]: a node that has not reloaded yet may sign with it for up to one
//! reload interval, and every token lives at most an hour, so the five minutes beyond the
//! hour cover that and clock skew.

use std::sync::{Arc, RwLock, Weak};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{Jwk, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use portcullis_core::oauth::SigningAlg;
use portcullis_core::{AuditContext, Timestamp};
use portcullis_store::{Rotation, SigningKeyRecord, Store, StoreError};
use serde_json::Value;

use crate::config::MasterKey;
use crate::infra::crypto::{SecretBox, SecretBoxError, purpose};

mod material;
use material::{ed25519_signer, encoding_key, generate_der, jwt_alg};

/// How long a retired key stays published: the longest token lifetime (access and ID
/// tokens: one hour) plus five minutes for reload lag and clock skew.
pub const MAX_TOKEN_LIFETIME: time::Duration = time::Duration::minutes(65);
/// Clock leeway for `exp` and `nbf` when verifying.
pub const LEEWAY_SECS: u64 = 30;
/// A new key is published this long before it signs anything: relying parties cache the
/// JWKS (we allow five minutes) and the common libraries refetch on an unknown `kid` only
/// after a cooldown, so a token signed by a brand-new key could be refused for minutes.
/// Until then the key it replaced keeps signing.
pub const PREPUBLISH: time::Duration = time::Duration::minutes(10);
/// How often each node rereads the keys, picking up other nodes' rotations.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(60);
/// Unknown kids reload at most this often, so a flood of made-up kids cannot become a
/// flood of database reads.
const MISS_RELOAD_GAP: Duration = Duration::from_secs(1);
/// The JWKS endpoint serves keys at most this old: a key another node made (and signs
/// with) is published here within seconds, not at the next periodic reload.
pub const JWKS_MAX_AGE: Duration = Duration::from_secs(5);

/// What a JWT is, as its JWS `typ` header says: signing sets it and verification requires
/// it, so one kind of token never passes for another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JwtType {
    /// `typ: JWT`: ID tokens.
    Jwt,
    /// `typ: at+jwt` (RFC 9068): access tokens.
    AccessToken,
}

impl JwtType {
    pub fn as_str(self) -> &'static str {
        match self {
            JwtType::Jwt => "JWT",
            JwtType::AccessToken => portcullis_core::access_token::ACCESS_TOKEN_TYP,
        }
    }

    /// A header's `typ` names this type: compared case-insensitively, with the optional
    /// `application/` prefix (RFC 7515 §4.1.9). A missing `typ` names none.
    fn named_by(self, typ: Option<&str>) -> bool {
        let Some(typ) = typ else { return false };
        let bare = match typ.get(..12) {
            Some(prefix) if prefix.eq_ignore_ascii_case("application/") => &typ[12..],
            _ => typ,
        };
        bare.eq_ignore_ascii_case(self.as_str())
    }
}

/// Whether verification insists on `exp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// Expired tokens are refused (everything that grants access).
    Enforce,
    /// Expired tokens still verify: for identifying, never for granting (an ID token used
    /// as `id_token_hint` at logout may have expired).
    Ignore,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Not a compact JWS, no `kid`, or claims that are not a JSON object with `exp`.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// The header's `typ` is not the kind of token expected (an ID token where an access
    /// token must be, or the reverse).
    #[error("token type {found:?} is not {expected}")]
    WrongType {
        expected: &'static str,
        found: Option<String>,
    },
    /// No published key has this kid (also after a reload).
    #[error("no published signing key has this kid")]
    UnknownKid,
    /// The signature does not verify, or the header's `alg` is not the key's.
    #[error("bad signature")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet (nbf)")]
    NotYetValid,
    #[error("signing key store: {0}")]
    Store(#[from] StoreError),
    /// A stored key that cannot be used: wrong master key, or a damaged or tampered row.
    #[error("signing key {kid}: {reason}")]
    BadKey { kid: String, reason: String },
    #[error("cannot generate a {0} key: {1}")]
    Generate(&'static str, String),
    #[error("cannot sign: {0}")]
    Sign(String),
}

impl KeyError {
    /// The token was refused (as opposed to the server failing): callers answer with their
    /// own error (`invalid_token`, `unauthenticated`, …).
    pub fn is_rejection(&self) -> bool {
        matches!(
            self,
            KeyError::Malformed(_)
                | KeyError::WrongType { .. }
                | KeyError::UnknownKid
                | KeyError::BadSignature
                | KeyError::Expired
                | KeyError::NotYetValid
        )
    }
}

/// A published key as the admin API shows it: never private material.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    pub kid: String,
    pub alg: SigningAlg,
    pub created_at: Timestamp,
    pub retired_at: Option<Timestamp>,
    pub publish_until: Option<Timestamp>,
}

/// What a rotation did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rotated {
    pub kid: String,
    pub alg: SigningAlg,
    pub retired: Vec<String>,
    pub publish_until: Timestamp,
}

struct LoadedKey {
    info: KeyInfo,
    jwk: Value,
    decoding: DecodingKey,
    /// Only the active key of each algorithm is kept able to sign.
    encoding: Option<EncodingKey>,
    /// EdDSA keys that sign use this fast path instead of `encoding`, with the JWS header
    /// of each [`JwtType`] encoded once.
    ed25519: Option<Ed25519Signer>,
}

struct Ed25519Signer {
    key: aws_lc_rs::signature::Ed25519KeyPair,
    /// The encoded header for `typ: JWT`, and for `typ: at+jwt`.
    jwt_header: String,
    at_jwt_header: String,
}

impl Ed25519Signer {
    fn header(&self, typ: JwtType) -> &str {
        match typ {
            JwtType::Jwt => &self.jwt_header,
            JwtType::AccessToken => &self.at_jwt_header,
        }
    }
}

impl LoadedKey {
    fn published(&self, now: Timestamp) -> bool {
        self.info.publish_until.is_none_or(|t| t > now)
    }
}

struct Loaded {
    /// Newest first.
    keys: Vec<Arc<LoadedKey>>,
    at: Instant,
    /// The JWKS of these keys, serialized on first use.
    jwks: RwLock<Option<JwksBody>>,
}

impl Loaded {
    fn new(keys: Vec<Arc<LoadedKey>>) -> Self {
        Self {
            keys,
            at: Instant::now(),
            jwks: RwLock::new(None),
        }
    }
}

/// `{"keys": [...]}` as served, and until when it is right: the earliest `publish_until`
/// of the keys it lists (a key that stopped being published never comes back, so nothing
/// else can make it wrong before the next load).
struct JwksBody {
    body: Bytes,
    until: Option<Timestamp>,
}

pub struct KeyRing {
    store: Arc<dyn Store>,
    sealer: SecretBox,
    loaded: RwLock<Arc<Loaded>>,
    /// One generation or rotation at a time in this process.
    generating: tokio::sync::Mutex<()>,
    /// Single flight for reloads on demand.
    reloading: tokio::sync::Mutex<()>,
    /// When a token with an unknown kid last caused a reload.
    last_miss_reload: std::sync::Mutex<Option<Instant>>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field(
                "kids",
                &self
                    .snapshot()
                    .keys
                    .iter()
                    .map(|k| &k.info.kid)
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl KeyRing {
    /// Loads the published keys. Fails when one cannot be opened (e.g. the master key is
    /// not the one that sealed it), so a misconfigured node never starts half-blind.
    pub async fn open(store: Arc<dyn Store>, master: &MasterKey) -> Result<Self, KeyError> {
        let sealer =
            SecretBox::new(master, purpose::SIGNING_KEYS).map_err(|e| KeyError::BadKey {
                kid: "-".into(),
                reason: e.to_string(),
            })?;
        let ring = Self {
            store,
            sealer,
            loaded: RwLock::new(Arc::new(Loaded::new(Vec::new()))),
            generating: tokio::sync::Mutex::new(()),
            reloading: tokio::sync::Mutex::new(()),
            last_miss_reload: std::sync::Mutex::new(None),
        };
        ring.reload().await?;
        Ok(ring)
    }

    /// Rereads the keys every `every` until the ring is dropped. A failed reload keeps the
    /// keys already loaded and is logged.
    pub fn spawn_reloader(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let weak: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(ring) = weak.upgrade() else { return };
                if let Err(e) = ring.reload().await {
                    tracing::error!(error = %e, "reloading signing keys failed; keeping the loaded ones");
                }
            }
        })
    }

    /// Signs `claims` as a compact JWS (`alg`, `kid`, `typ` of `typ`) with the active key of
    /// `alg`, generating and storing one first if there is none.
    pub async fn sign<T: serde::Serialize + ?Sized>(
        &self,
        alg: SigningAlg,
        typ: JwtType,
        claims: &T,
    ) -> Result<String, KeyError> {
        let key = match self.active(alg) {
            Some(k) => k,
            None => {
                self.ensure_active(alg).await?;
                self.active(alg)
                    .ok_or_else(|| KeyError::Sign(format!("no active {} key", alg.as_str())))?
            }
        };
        if let Some(signer) = &key.ed25519 {
            let header = signer.header(typ);
            let signer = &signer.key;
            let payload = serde_json::to_vec(claims).map_err(|e| KeyError::Sign(e.to_string()))?;
            let mut jws = String::with_capacity(header.len() + payload.len() * 4 / 3 + 90);
            jws.push_str(header);
            jws.push('.');
            URL_SAFE_NO_PAD.encode_string(&payload, &mut jws);
            let signature = signer.sign(jws.as_bytes());
            jws.push('.');
            URL_SAFE_NO_PAD.encode_string(signature.as_ref(), &mut jws);
            return Ok(jws);
        }
        let claims = serde_json::to_value(claims).map_err(|e| KeyError::Sign(e.to_string()))?;
        let claims = &claims;
        let mut header = Header::new(jwt_alg(alg));
        header.kid = Some(key.info.kid.clone());
        header.typ = Some(typ.as_str().to_owned());
        let sign = move |claims: &Value| {
            let encoding = key
                .encoding
                .as_ref()
                .ok_or_else(|| KeyError::Sign("the active key cannot sign".into()))?;
            jsonwebtoken::encode(&header, claims, encoding)
                .map_err(|e| KeyError::Sign(e.to_string()))
        };
        if alg == SigningAlg::RS256 {
            // RSA private-key operations take a millisecond or more: not on the runtime.
            let claims = claims.clone();
            tokio::task::spawn_blocking(move || sign(&claims))
                .await
                .map_err(|e| KeyError::Sign(e.to_string()))?
        } else {
            sign(claims)
        }
    }

    /// Verifies a JWS of type `typ` made by [`KeyRing::sign`] (on any node) and returns its
    /// claims read as `T` (claims that do not read as `T` are [`KeyError::Malformed`]).
    /// Checks the header's `typ`, the signature, `exp` (required) and `nbf` with
    /// [`LEEWAY_SECS`]; not `iss` or `aud`, which are the caller's.
    pub async fn verify<T: serde::de::DeserializeOwned>(
        &self,
        jwt: &str,
        typ: JwtType,
    ) -> Result<T, KeyError> {
        self.verify_with(jwt, typ, Expiry::Enforce).await
    }

    /// [`KeyRing::verify`], with `exp` enforced or ignored as `expiry` says (it must still
    /// be present).
    pub async fn verify_with<T: serde::de::DeserializeOwned>(
        &self,
        jwt: &str,
        typ: JwtType,
        expiry: Expiry,
    ) -> Result<T, KeyError> {
        let header =
            jsonwebtoken::decode_header(jwt).map_err(|e| KeyError::Malformed(e.to_string()))?;
        if !typ.named_by(header.typ.as_deref()) {
            return Err(KeyError::WrongType {
                expected: typ.as_str(),
                found: header.typ,
            });
        }
        let kid = header
            .kid
            .ok_or_else(|| KeyError::Malformed("the header names no kid".into()))?;
        let now = portcullis_core::now();
        let key = match self.find(&kid, now) {
            Some(k) => k,
            None => {
                if plausible_kid(&kid) && self.may_reload_for_miss() {
                    self.reload().await?;
                }
                self.find(&kid, now).ok_or(KeyError::UnknownKid)?
            }
        };
        let alg = jwt_alg(key.info.alg);
        if header.alg != alg {
            return Err(KeyError::BadSignature);
        }
        let mut validation = Validation::new(alg);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.validate_exp = expiry == Expiry::Enforce;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp"]);
        jsonwebtoken::decode::<T>(jwt, &key.decoding, &validation)
            .map(|data| data.claims)
            .map_err(rejection)
    }

    /// `{"keys": [...]}`: every published key's public JWK, newest first.
    pub fn jwks(&self) -> Value {
        let now = portcullis_core::now();
        let keys: Vec<Value> = self
            .snapshot()
            .keys
            .iter()
            .filter(|k| k.published(now))
            .map(|k| k.jwk.clone())
            .collect();
        serde_json::json!({ "keys": keys })
    }

    /// [`KeyRing::jwks`] serialized, as `/.well-known/jwks.json` serves it: built once per
    /// load of the keys (and again when a listed key's `publish_until` passes), so a
    /// request copies a reference instead of cloning and serializing every JWK.
    pub fn jwks_body(&self) -> Result<Bytes, KeyError> {
        let now = portcullis_core::now();
        let loaded = self.snapshot();
        if let Ok(cached) = loaded.jwks.read()
            && let Some(c) = cached.as_ref()
            && c.until.is_none_or(|t| t > now)
        {
            return Ok(c.body.clone());
        }
        let published: Vec<&LoadedKey> = loaded
            .keys
            .iter()
            .filter(|k| k.published(now))
            .map(|k| &**k)
            .collect();
        let until = published.iter().filter_map(|k| k.info.publish_until).min();
        let jwks: Vec<&Value> = published.iter().map(|k| &k.jwk).collect();
        let body = serde_json::to_vec(&serde_json::json!({ "keys": jwks }))
            .map_err(|e| KeyError::Sign(format!("cannot serialize the JWKS: {e}")))?;
        let body = Bytes::from(body);
        if let Ok(mut cached) = loaded.jwks.write() {
            *cached = Some(JwksBody {
                body: body.clone(),
                until,
            });
        }
        Ok(body)
    }

    /// Makes a new active key of `alg`, published at once but signing only after
    /// [`PREPUBLISH`]; the previous one signs until then and stays published until
    /// `now + PREPUBLISH + MAX_TOKEN_LIFETIME`. Returns the new kid.
    pub async fn rotate(&self, alg: SigningAlg, ctx: &AuditContext) -> Result<String, KeyError> {
        Ok(self.rotate_detailed(alg, ctx).await?.kid)
    }

    /// [`KeyRing::rotate`], saying which keys were retired and until when they are published.
    pub async fn rotate_detailed(
        &self,
        alg: SigningAlg,
        ctx: &AuditContext,
    ) -> Result<Rotated, KeyError> {
        let _one_at_a_time = self.generating.lock().await;
        let record = self.generate(alg).await?;
        let publish_until = record.created_at + PREPUBLISH + MAX_TOKEN_LIFETIME;
        let Rotation {
            retired,
            publish_until,
        } = self
            .store
            .keys()
            .rotate_signing_key(&record, publish_until, ctx)
            .await?;
        self.reload().await?;
        tracing::info!(kid = %record.kid, alg = alg.as_str(), ?retired, "signing key rotated");
        Ok(Rotated {
            kid: record.kid,
            alg,
            retired,
            publish_until,
        })
    }

    /// The kid of the active key of `alg`, generating one if there is none (here or on
    /// another node: a concurrent first key from elsewhere wins and is used).
    pub async fn ensure_active(&self, alg: SigningAlg) -> Result<String, KeyError> {
        if let Some(k) = self.active(alg) {
            return Ok(k.info.kid.clone());
        }
        let _one_at_a_time = self.generating.lock().await;
        self.reload().await?;
        if let Some(k) = self.active(alg) {
            return Ok(k.info.kid.clone());
        }
        let record = self.generate(alg).await?;
        match self.store.keys().insert_signing_key(&record).await {
            Ok(()) => {
                tracing::info!(kid = %record.kid, alg = alg.as_str(), "signing key generated")
            }
            Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e.into()),
        }
        self.reload().await?;
        self.active(alg).map(|k| k.info.kid.clone()).ok_or_else(|| {
            KeyError::Generate(alg.as_str(), "no active key after generating one".into())
        })
    }

    /// Published keys, fresh from the store, newest first.
    pub async fn list(&self) -> Result<Vec<KeyInfo>, KeyError> {
        self.reload().await?;
        Ok(self
            .snapshot()
            .keys
            .iter()
            .map(|k| k.info.clone())
            .collect())
    }

    /// Rereads the published keys from the store and swaps them in.
    pub async fn reload(&self) -> Result<(), KeyError> {
        let records = self
            .store
            .keys()
            .published_signing_keys(portcullis_core::now())
            .await?;
        let keys = records
            .iter()
            .map(|r| self.load(r).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        let fresh = Arc::new(Loaded::new(keys));
        match self.loaded.write() {
            Ok(mut guard) => *guard = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
        Ok(())
    }

    fn snapshot(&self) -> Arc<Loaded> {
        match self.loaded.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The key that signs for `alg` now: the active key once it has been published for
    /// [`PREPUBLISH`]; before that the key it replaced, while that one may still sign; the
    /// active key regardless when it is the first of its algorithm.
    fn active(&self, alg: SigningAlg) -> Option<Arc<LoadedKey>> {
        let now = portcullis_core::now();
        let loaded = self.snapshot();
        let newest = loaded
            .keys
            .iter()
            .find(|k| k.info.alg == alg && k.info.retired_at.is_none() && k.encoding.is_some())?;
        if now - newest.info.created_at >= PREPUBLISH {
            return Some(newest.clone());
        }
        let predecessor = loaded.keys.iter().find(|k| {
            k.info.alg == alg
                && k.encoding.is_some()
                && k.info.retired_at.is_some_and(|t| now < t + PREPUBLISH)
                && k.published(now)
        });
        Some(predecessor.unwrap_or(newest).clone())
    }

    fn find(&self, kid: &str, now: Timestamp) -> Option<Arc<LoadedKey>> {
        self.snapshot()
            .keys
            .iter()
            .find(|k| k.info.kid == kid && k.published(now))
            .cloned()
    }

    fn may_reload_for_miss(&self) -> bool {
        let mut last = match self.last_miss_reload.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let now = Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < MISS_RELOAD_GAP) {
            return false;
        }
        *last = Some(now);
        true
    }

    /// Reloads unless the loaded keys are younger than `max_age`; concurrent callers share
    /// one reload.
    pub async fn reload_if_older_than(&self, max_age: Duration) -> Result<(), KeyError> {
        if self.snapshot().at.elapsed() < max_age {
            return Ok(());
        }
        let _single_flight = self.reloading.lock().await;
        if self.snapshot().at.elapsed() < max_age {
            return Ok(());
        }
        self.reload().await
    }

    /// Checks a stored key and makes it usable. The kid is the RFC 7638 thumbprint of the
    /// public JWK, and the sealed private key opens only with that kid as associated data,
    /// so a row whose public half was swapped is refused rather than published.
    fn load(&self, r: &SigningKeyRecord) -> Result<LoadedKey, KeyError> {
        let bad = |reason: String| KeyError::BadKey {
            kid: r.kid.clone(),
            reason,
        };
        let jwk: Jwk = serde_json::from_value(r.public_jwk.clone())
            .map_err(|e| bad(format!("public JWK: {e}")))?;
        let thumbprint = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|e| bad(format!("public JWK: {e}")))?;
        if thumbprint != r.kid || jwk.common.key_id.as_deref() != Some(r.kid.as_str()) {
            return Err(bad("the kid is not the thumbprint of the public key".into()));
        }
        if jwk.common.key_algorithm.map(|a| a.to_string()).as_deref() != Some(r.alg.as_str()) {
            return Err(bad("the public JWK names another algorithm".into()));
        }
        let private = self
            .sealer
            .open(&r.encrypted_private_key, &aad(r.alg, &r.kid))
            .map_err(|e| match e {
                SecretBoxError::Open => bad(
                    "the private key does not decrypt: is this the master key it was sealed with?"
                        .into(),
                ),
                other => bad(other.to_string()),
            })?;
        let decoding = DecodingKey::from_jwk(&jwk).map_err(|e| bad(format!("public JWK: {e}")))?;
        // The predecessor of a key still in its pre-publication window keeps signing.
        let signs = r.is_active()
            || r.retired_at
                .is_some_and(|t| portcullis_core::now() < t + PREPUBLISH);
        let encoding = signs.then(|| encoding_key(r.alg, &private));
        let header = |typ: JwtType| {
            let header = serde_json::json!({"alg": "EdDSA", "kid": r.kid, "typ": typ.as_str()});
            URL_SAFE_NO_PAD.encode(header.to_string())
        };
        let ed25519 = (signs && r.alg == SigningAlg::EdDSA)
            .then(|| ed25519_signer(&private))
            .flatten()
            .map(|key| Ed25519Signer {
                key,
                jwt_header: header(JwtType::Jwt),
                at_jwt_header: header(JwtType::AccessToken),
            });
        Ok(LoadedKey {
            info: KeyInfo {
                kid: r.kid.clone(),
                alg: r.alg,
                created_at: r.created_at,
                retired_at: r.retired_at,
                publish_until: r.publish_until,
            },
            jwk: r.public_jwk.clone(),
            decoding,
            encoding,
            ed25519,
        })
    }

    /// A new key of `alg`, sealed and ready to store. Key generation (RSA takes a while)
    /// runs off the async runtime.
    async fn generate(&self, alg: SigningAlg) -> Result<SigningKeyRecord, KeyError> {
        let der = tokio::task::spawn_blocking(move || generate_der(alg))
            .await
            .map_err(|e| KeyError::Generate(alg.as_str(), e.to_string()))??;
        let encoding = encoding_key(alg, &der);
        let failed =
            |e: jsonwebtoken::errors::Error| KeyError::Generate(alg.as_str(), e.to_string());
        let mut jwk = Jwk::from_encoding_key(&encoding, jwt_alg(alg)).map_err(failed)?;
        let kid = jwk.thumbprint(ThumbprintHash::SHA256).map_err(failed)?;
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        let public_jwk = serde_json::to_value(&jwk)
            .map_err(|e| KeyError::Generate(alg.as_str(), e.to_string()))?;
        let encrypted_private_key = self
            .sealer
            .seal(&der, &aad(alg, &kid))
            .map_err(|e| KeyError::Generate(alg.as_str(), e.to_string()))?;
        Ok(SigningKeyRecord {
            kid,
            alg,
            encrypted_private_key,
            public_jwk,
            created_at: portcullis_core::now(),
            retired_at: None,
            publish_until: None,
        })
    }
}

/// Associated data of a sealed private key: it opens only as the key of this row.
fn aad(alg: SigningAlg, kid: &str) -> Vec<u8> {
    format!("signing_key:{}:{kid}", alg.as_str()).into_bytes()
}

/// Our kids are base64url SHA-256 thumbprints: anything else is not worth a reload.
fn plausible_kid(kid: &str) -> bool {
    kid.len() == 43
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn rejection(e: jsonwebtoken::errors::Error) -> KeyError {
    use jsonwebtoken::errors::ErrorKind;
    match e.kind() {
        ErrorKind::ExpiredSignature => KeyError::Expired,
        ErrorKind::ImmatureSignature => KeyError::NotYetValid,
        ErrorKind::InvalidToken
        | ErrorKind::Base64(_)
        | ErrorKind::Json(_)
        | ErrorKind::Utf8(_)
        | ErrorKind::MissingRequiredClaim(_)
        | ErrorKind::InvalidClaimFormat(_) => KeyError::Malformed(e.to_string()),
        _ => KeyError::BadSignature,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typ_matches_case_insensitively_with_the_optional_media_type_prefix() {
        for typ in [
            "at+jwt",
            "AT+JWT",
            "application/at+jwt",
            "Application/At+JWT",
        ] {
            assert!(JwtType::AccessToken.named_by(Some(typ)), "{typ}");
        }
        for typ in ["JWT", "jwt", "application/jwt"] {
            assert!(JwtType::Jwt.named_by(Some(typ)), "{typ}");
            assert!(!JwtType::AccessToken.named_by(Some(typ)), "{typ}");
        }
        assert!(!JwtType::Jwt.named_by(Some("at+jwt")));
        assert!(!JwtType::Jwt.named_by(None));
        assert!(!JwtType::AccessToken.named_by(None));
        assert!(!JwtType::AccessToken.named_by(Some("application/")));
    }

    #[test]
    fn only_thumbprint_shaped_kids_cause_a_reload() {
        assert!(plausible_kid(&"A".repeat(43)));
        assert!(plausible_kid("lNYf_JvsCkN2HjisO6DCaJQ8htxAFW7is_GEk8hid0M"));
        assert!(!plausible_kid("short"));
        assert!(!plausible_kid(&"+".repeat(43)));
    }
}
