#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Signing keys through a real server, on SQLite and on PostgreSQL: the published JWKS,
//! signing and verifying with every algorithm, rotation by platform admins, and private
//! keys sealed at rest.

use crate::common;

use std::collections::BTreeSet;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{Signed, TestApp};
use portcullis_core::oauth::SigningAlg;
use portcullis_core::{AuditContext, UserId};
use portcullis_server::Config;
use portcullis_server::infra::keys::{
    Expiry, JWKS_MAX_AGE, JwtType, KeyError, KeyRing, MAX_TOKEN_LIFETIME, PREPUBLISH,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

both_backends!(
    jwks_is_public_and_well_formed,
    sign_and_verify_with_every_alg,
    verify_reads_claims_as_the_asked_type,
    verify_refuses_tampered_expired_and_unknown,
    rotation_via_api_keeps_the_old_key_published,
    only_platform_admins_see_and_rotate_keys,
    private_keys_are_sealed_at_rest,
    another_nodes_keys_are_found_and_a_wrong_master_key_refused,
);

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn claims(exp_in: i64) -> Value {
    let now = now();
    json!({"iss": "https://issuer.test", "sub": "user-1", "aud": "pcc_client", "iat": now, "exp": now + exp_in})
}

fn part(jwt: &str, i: usize) -> Value {
    let raw = jwt.split('.').nth(i).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(raw).unwrap()).unwrap()
}

fn encode_part(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

/// A platform admin, signed in afresh after the grant (so no cached session predates it).
async fn platform_admin(app: &TestApp) -> (Signed, String) {
    let u = app.user("operator").await;
    let store = portcullis_store::connect(&app.database_url).await.unwrap();
    store
        .accounts()
        .set_platform_admin(
            UserId::parse(&u.user_id).unwrap(),
            true,
            &AuditContext::cli(),
        )
        .await
        .unwrap();
    let r = app.login(&u.email, "correct horse battery").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let token = r.session_cookie().unwrap();
    (u, token)
}

async fn jwks(app: &TestApp) -> Vec<Value> {
    let r = TestApp::send(app.req(Method::GET, "/.well-known/jwks.json")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["keys"].as_array().unwrap().clone()
}

fn kids(keys: &[Value]) -> BTreeSet<String> {
    keys.iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

async fn jwks_is_public_and_well_formed(app: TestApp) {
    let r = TestApp::send(app.req(Method::GET, "/.well-known/jwks.json")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.headers.get("cache-control").unwrap(),
        "public, max-age=300"
    );
    assert!(
        r.headers
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    // EdDSA is ready from start-up; ES256 and RS256 are being prepared in the background.
    let keys = r.body["keys"].as_array().unwrap();
    assert!((1..=3).contains(&keys.len()), "{}", r.body);
    let ed = keys
        .iter()
        .find(|k| k["alg"] == "EdDSA")
        .expect("an EdDSA key from start-up");
    assert_eq!(ed["kty"], "OKP");
    assert_eq!(ed["crv"], "Ed25519");
    assert_eq!(ed["alg"], "EdDSA");
    assert_eq!(ed["use"], "sig");
    assert_eq!(ed["kid"].as_str().unwrap().len(), 43);
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(ed["x"].as_str().unwrap())
            .unwrap()
            .len(),
        32
    );

    for alg in [SigningAlg::ES256, SigningAlg::RS256] {
        app.state
            .keys
            .sign(alg, JwtType::Jwt, &claims(60))
            .await
            .unwrap();
    }
    let keys = jwks(&app).await;
    assert_eq!(keys.len(), 3);
    let by_alg = |alg: &str| keys.iter().find(|k| k["alg"] == alg).unwrap().clone();
    let ec = by_alg("ES256");
    assert_eq!(
        (ec["kty"].as_str(), ec["crv"].as_str()),
        (Some("EC"), Some("P-256"))
    );
    for c in ["x", "y"] {
        assert_eq!(
            URL_SAFE_NO_PAD
                .decode(ec[c].as_str().unwrap())
                .unwrap()
                .len(),
            32
        );
    }
    let rsa = by_alg("RS256");
    assert_eq!(rsa["kty"], "RSA");
    assert_eq!(rsa["e"], "AQAB");
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(rsa["n"].as_str().unwrap())
            .unwrap()
            .len(),
        256
    );
    for k in &keys {
        assert_eq!(k["use"], "sig");
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(k.get(private).is_none(), "{private} published: {k}");
        }
    }
    // The same set as the state reports.
    assert_eq!(Value::Array(keys), app.state.keys.jwks()["keys"]);

    // Documented in the OpenAPI document, as a public route.
    let doc = TestApp::send(app.req(Method::GET, "/openapi.json"))
        .await
        .body;
    assert_eq!(
        doc["paths"]["/.well-known/jwks.json"]["get"]["security"],
        json!([{}])
    );
}

async fn sign_and_verify_with_every_alg(app: TestApp) {
    let keys = &app.state.keys;
    let published = kids(&jwks(&app).await);
    for alg in SigningAlg::ALL {
        let c = claims(600);
        let jwt = keys.sign(alg, JwtType::Jwt, &c).await.unwrap();
        let header = part(&jwt, 0);
        assert_eq!(header["alg"], alg.as_str());
        assert_eq!(header["typ"], "JWT");
        let kid = header["kid"].as_str().unwrap();
        assert_eq!(part(&jwt, 1), c);
        assert_eq!(
            keys.verify::<Value>(&jwt, JwtType::Jwt).await.unwrap(),
            c,
            "{alg:?}"
        );
        // The kid is published (EdDSA from the start; the others once made).
        let now_published = kids(&jwks(&app).await);
        assert!(now_published.contains(kid), "{alg:?}");
        if alg == SigningAlg::EdDSA {
            assert!(published.contains(kid));
        }
        // The same key signs again until rotated.
        let again = keys.sign(alg, JwtType::Jwt, &claims(60)).await.unwrap();
        assert_eq!(part(&again, 0)["kid"], kid);
    }
    // Within the 30 s leeway an expired token still verifies; `nbf` likewise.
    let jwt = keys
        .sign(SigningAlg::EdDSA, JwtType::Jwt, &claims(-10))
        .await
        .unwrap();
    keys.verify::<Value>(&jwt, JwtType::Jwt).await.unwrap();
    let mut early = claims(600);
    early["nbf"] = json!(now() + 10);
    let jwt = keys
        .sign(SigningAlg::ES256, JwtType::Jwt, &early)
        .await
        .unwrap();
    keys.verify::<Value>(&jwt, JwtType::Jwt).await.unwrap();
}

/// What the signer serializes is what the verifier returns, typed, for the JWT type asked
/// for: a token of another `typ` is refused before its claims are read, and claims that do
/// not read as the asked type are malformed.
async fn verify_reads_claims_as_the_asked_type(app: TestApp) {
    use portcullis_core::access_token::AccessTokenClaims;
    let keys = &app.state.keys;
    let client = portcullis_core::oauth::ClientId::parse("pcc_client").unwrap();
    let access = AccessTokenClaims {
        iss: "https://issuer.test".into(),
        sub: UserId::new().to_string(),
        aud: client.clone(),
        client_id: client,
        iat: now(),
        exp: now() + 600,
        jti: "jti-1".into(),
        scope: portcullis_core::scope::ScopeSet::parse("openid email").unwrap(),
        org_id: portcullis_core::OrgId::new(),
        project_id: portcullis_core::ProjectId::new(),
        sid: Some(portcullis_core::SessionId::new()),
        fid: Some(portcullis_core::FamilyId::new()),
    };
    for alg in SigningAlg::ALL {
        let jwt = keys.sign(alg, JwtType::AccessToken, &access).await.unwrap();
        assert_eq!(part(&jwt, 0)["typ"], "at+jwt", "{alg:?}");
        let back: AccessTokenClaims = keys.verify(&jwt, JwtType::AccessToken).await.unwrap();
        assert_eq!(back, access, "{alg:?}");
        // An access token is not a JWT of any other type, whatever its claims.
        let err = keys.verify::<Value>(&jwt, JwtType::Jwt).await.unwrap_err();
        assert!(
            matches!(err, KeyError::WrongType { .. }),
            "{alg:?}: {err:?}"
        );
        assert!(err.is_rejection());
    }
    // An ID token (`typ: JWT`) is refused as an access token by its header, and its claims
    // would not read as one either.
    let id_token = keys
        .sign(SigningAlg::EdDSA, JwtType::Jwt, &claims(600))
        .await
        .unwrap();
    let err = keys
        .verify::<AccessTokenClaims>(&id_token, JwtType::AccessToken)
        .await
        .unwrap_err();
    assert!(matches!(err, KeyError::WrongType { .. }), "{err:?}");
    assert!(err.is_rejection());
    let mislabelled = keys
        .sign(SigningAlg::EdDSA, JwtType::AccessToken, &claims(600))
        .await
        .unwrap();
    let err = keys
        .verify::<AccessTokenClaims>(&mislabelled, JwtType::AccessToken)
        .await
        .unwrap_err();
    assert!(matches!(err, KeyError::Malformed(_)), "{err:?}");
    // Relabelling the header breaks the signature; a header without `typ` names no type.
    let segments: Vec<&str> = id_token.split('.').collect();
    let mut h = part(&id_token, 0);
    h["typ"] = json!("at+jwt");
    let relabelled = format!("{}.{}.{}", encode_part(&h), segments[1], segments[2]);
    assert!(matches!(
        keys.verify::<Value>(&relabelled, JwtType::AccessToken)
            .await,
        Err(KeyError::BadSignature)
    ));
    h.as_object_mut().unwrap().remove("typ");
    let untyped = format!("{}.{}.{}", encode_part(&h), segments[1], segments[2]);
    assert!(matches!(
        keys.verify::<Value>(&untyped, JwtType::Jwt).await,
        Err(KeyError::WrongType { found: None, .. })
    ));
    // Identifying an expired ID token (logout's id_token_hint): exp is ignored on request
    // only, and the signature still counts.
    let expired = keys
        .sign(SigningAlg::ES256, JwtType::Jwt, &claims(-3600))
        .await
        .unwrap();
    assert!(matches!(
        keys.verify::<Value>(&expired, JwtType::Jwt).await,
        Err(KeyError::Expired)
    ));
    assert_eq!(
        keys.verify_with::<Value>(&expired, JwtType::Jwt, Expiry::Ignore)
            .await
            .unwrap()["sub"],
        "user-1"
    );
    let segments: Vec<&str> = expired.split('.').collect();
    let mut c = part(&expired, 1);
    c["sub"] = json!("someone-else");
    let forged = format!("{}.{}.{}", segments[0], encode_part(&c), segments[2]);
    assert!(matches!(
        keys.verify_with::<Value>(&forged, JwtType::Jwt, Expiry::Ignore)
            .await,
        Err(KeyError::BadSignature)
    ));
}

async fn verify_refuses_tampered_expired_and_unknown(app: TestApp) {
    let keys = &app.state.keys;
    for alg in SigningAlg::ALL {
        let jwt = keys.sign(alg, JwtType::Jwt, &claims(600)).await.unwrap();
        let segments: Vec<&str> = jwt.split('.').collect();

        // A changed signature byte.
        let mut sig = URL_SAFE_NO_PAD.decode(segments[2]).unwrap();
        sig[5] ^= 0x40;
        let tampered = format!(
            "{}.{}.{}",
            segments[0],
            segments[1],
            URL_SAFE_NO_PAD.encode(&sig)
        );
        let err = keys
            .verify::<Value>(&tampered, JwtType::Jwt)
            .await
            .unwrap_err();
        assert!(matches!(err, KeyError::BadSignature), "{alg:?}: {err:?}");
        assert!(err.is_rejection());

        // Changed claims under the original signature.
        let mut c = part(&jwt, 1);
        c["sub"] = json!("admin");
        let forged = format!("{}.{}.{}", segments[0], encode_part(&c), segments[2]);
        assert!(
            matches!(
                keys.verify::<Value>(&forged, JwtType::Jwt).await,
                Err(KeyError::BadSignature)
            ),
            "{alg:?}"
        );

        // The header claims another algorithm for the same kid (alg confusion).
        let mut h = part(&jwt, 0);
        h["alg"] = json!("HS256");
        let confused = format!("{}.{}.{}", encode_part(&h), segments[1], segments[2]);
        assert!(
            matches!(
                keys.verify::<Value>(&confused, JwtType::Jwt).await,
                Err(KeyError::BadSignature)
            ),
            "{alg:?}"
        );
    }

    let expired = keys
        .sign(SigningAlg::EdDSA, JwtType::Jwt, &claims(-120))
        .await
        .unwrap();
    assert!(matches!(
        keys.verify::<Value>(&expired, JwtType::Jwt).await,
        Err(KeyError::Expired)
    ));
    let mut future = claims(600);
    future["nbf"] = json!(now() + 300);
    let jwt = keys
        .sign(SigningAlg::EdDSA, JwtType::Jwt, &future)
        .await
        .unwrap();
    assert!(matches!(
        keys.verify::<Value>(&jwt, JwtType::Jwt).await,
        Err(KeyError::NotYetValid)
    ));
    let mut no_exp = claims(600);
    no_exp.as_object_mut().unwrap().remove("exp");
    let jwt = keys
        .sign(SigningAlg::EdDSA, JwtType::Jwt, &no_exp)
        .await
        .unwrap();
    assert!(matches!(
        keys.verify::<Value>(&jwt, JwtType::Jwt).await,
        Err(KeyError::Malformed(_))
    ));

    // Unknown kids: a plausible one (looked up again in the store) and an implausible one.
    let jwt = keys
        .sign(SigningAlg::EdDSA, JwtType::Jwt, &claims(600))
        .await
        .unwrap();
    let segments: Vec<&str> = jwt.split('.').collect();
    for kid in ["A".repeat(43), "nope".to_owned()] {
        let mut h = part(&jwt, 0);
        h["kid"] = json!(kid);
        let unknown = format!("{}.{}.{}", encode_part(&h), segments[1], segments[2]);
        let err = keys
            .verify::<Value>(&unknown, JwtType::Jwt)
            .await
            .unwrap_err();
        assert!(matches!(err, KeyError::UnknownKid), "{err:?}");
    }
    let mut h = part(&jwt, 0);
    h.as_object_mut().unwrap().remove("kid");
    let kidless = format!("{}.{}.{}", encode_part(&h), segments[1], segments[2]);
    assert!(matches!(
        keys.verify::<Value>(&kidless, JwtType::Jwt).await,
        Err(KeyError::Malformed(_))
    ));
    for garbage in [
        "",
        "not-a-jwt",
        "a.b.c",
        &format!("{}.{}", segments[0], segments[1]),
    ] {
        let err = keys
            .verify::<Value>(garbage, JwtType::Jwt)
            .await
            .unwrap_err();
        assert!(err.is_rejection(), "{garbage:?}: {err:?}");
    }
}

async fn rotation_via_api_keeps_the_old_key_published(app: TestApp) {
    let (admin, token) = platform_admin(&app).await;
    let keys = &app.state.keys;
    let before = keys
        .sign(SigningAlg::EdDSA, JwtType::Jwt, &claims(3600))
        .await
        .unwrap();
    let old_kid = part(&before, 0)["kid"].as_str().unwrap().to_owned();
    // Served (and its body kept) before the rotation: the rotation must replace it at once.
    let served_before = kids(&jwks(&app).await);
    assert!(served_before.contains(&old_kid));
    assert_eq!(kids(&jwks(&app).await), served_before);

    let correlation = format!("rotate-{}", uuid::Uuid::now_v7().simple());
    let started = time::OffsetDateTime::now_utc();
    let r = TestApp::send(
        app.with_bearer(Method::POST, "/v1/admin/signing-keys/rotate", &token)
            .header("x-correlation-id", &correlation)
            .json(&json!({})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let new_kid = r.body["kid"].as_str().unwrap().to_owned();
    assert_ne!(new_kid, old_kid);
    assert_eq!(r.body["alg"], "EdDSA");
    assert_eq!(r.body["retired"], json!([old_kid]));
    let until = time::OffsetDateTime::parse(
        r.body["publish_until"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let lifetime = PREPUBLISH + MAX_TOKEN_LIFETIME;
    assert!(until >= started + lifetime - time::Duration::seconds(1));
    assert!(until <= time::OffsetDateTime::now_utc() + lifetime);
    assert_eq!(MAX_TOKEN_LIFETIME, time::Duration::minutes(65));

    // Both keys published; the old token still verifies. The new key is only published for
    // now: relying parties that cached the JWKS have not seen it, so the old key keeps
    // signing until the pre-publication window has passed.
    let published = kids(&jwks(&app).await);
    assert!(published.contains(&old_kid) && published.contains(&new_kid));
    assert_eq!(
        keys.verify::<Value>(&before, JwtType::Jwt).await.unwrap(),
        part(&before, 1)
    );
    let after = keys
        .sign(SigningAlg::EdDSA, JwtType::Jwt, &claims(60))
        .await
        .unwrap();
    assert_eq!(part(&after, 0)["kid"], old_kid.as_str());
    keys.verify::<Value>(&after, JwtType::Jwt).await.unwrap();

    // The admin listing tells which is which, and shows no private material.
    let list = app.get("/v1/admin/signing-keys", &token).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    let listed = list.body["keys"].as_array().unwrap();
    // The two EdDSA keys, and the ES256/RS256 keys prepared at start-up.
    assert_eq!(listed.iter().filter(|k| k["alg"] == "EdDSA").count(), 2);
    assert!(listed.len() <= 4);
    for k in listed {
        let fields: BTreeSet<&str> = k.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            fields,
            BTreeSet::from([
                "kid",
                "alg",
                "active",
                "created_at",
                "retired_at",
                "publish_until"
            ])
        );
    }
    let old = listed
        .iter()
        .find(|k| k["kid"] == old_kid.as_str())
        .unwrap();
    assert_eq!(old["active"], false);
    assert!(old["retired_at"].is_string());
    assert_eq!(old["publish_until"], r.body["publish_until"]);
    let new = listed
        .iter()
        .find(|k| k["kid"] == new_kid.as_str())
        .unwrap();
    assert_eq!(new["active"], true);
    assert!(new["retired_at"].is_null() && new["publish_until"].is_null());

    // Audited, under the request's correlation id.
    let audit = app
        .get(
            &format!("/v1/orgs/{}/audit?action=signing_key.rotated", admin.org_id),
            &token,
        )
        .await;
    assert_eq!(audit.status, StatusCode::OK, "{}", audit.body);
    let events = audit.body["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{}", audit.body);
    assert_eq!(events[0]["correlation_id"], correlation.as_str());
    assert_eq!(events[0]["actor_id"], admin.user_id.as_str());
    assert_eq!(events[0]["target"], format!("signing_key:{new_kid}"));

    // Another algorithm, then bad requests.
    let r = TestApp::send(
        app.with_bearer(Method::POST, "/v1/admin/signing-keys/rotate", &token)
            .json(&json!({"alg": "RS256"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["alg"], "RS256");
    // The RS256 key prepared at start-up may or may not exist yet: a first key signs at
    // once, a replacement only after pre-publication.
    let retired = r.body["retired"].as_array().unwrap().clone();
    let rs = keys
        .sign(SigningAlg::RS256, JwtType::Jwt, &claims(60))
        .await
        .unwrap();
    match retired.as_slice() {
        [] => assert_eq!(part(&rs, 0)["kid"], r.body["kid"]),
        [previous] => assert_eq!(&part(&rs, 0)["kid"], previous),
        more => panic!("one RS256 key at most was active: {more:?}"),
    }
    for (body, field) in [
        (json!({"alg": "HS256"}), "alg"),
        (json!({"alg": "EdDSA", "force": true}), "force"),
    ] {
        let r = TestApp::send(
            app.with_bearer(Method::POST, "/v1/admin/signing-keys/rotate", &token)
                .json(&body),
        )
        .await;
        r.assert_error(400, "invalid_request");
        assert_eq!(r.body["details"]["field"], field);
    }
    // Two EdDSA keys, one or two RS256 (with the start-up one), and the ES256 one if the
    // background preparation has finished.
    let published = jwks(&app).await;
    let count = |alg: &str| published.iter().filter(|k| k["alg"] == alg).count();
    assert_eq!(count("EdDSA"), 2);
    assert!((1..=2).contains(&count("RS256")));
    assert!(count("ES256") <= 1);
}

async fn only_platform_admins_see_and_rotate_keys(app: TestApp) {
    let user = app.user("plain").await;
    // Start-up prepares the ES256 and RS256 keys in the background; let that finish so the
    // JWKS only changes if a refused rotation went through after all.
    for alg in [SigningAlg::ES256, SigningAlg::RS256] {
        app.state.keys.ensure_active(alg).await.unwrap();
    }
    let before = kids(&jwks(&app).await);
    app.get("/v1/admin/signing-keys", &user.token)
        .await
        .assert_error(403, "forbidden");
    TestApp::send(
        app.with_bearer(Method::POST, "/v1/admin/signing-keys/rotate", &user.token)
            .json(&json!({})),
    )
    .await
    .assert_error(403, "forbidden");
    // Forbidden comes before looking at the body.
    TestApp::send(
        app.with_bearer(Method::POST, "/v1/admin/signing-keys/rotate", &user.token)
            .json(&json!({"alg": "nonsense"})),
    )
    .await
    .assert_error(403, "forbidden");
    // By cookie, from this server's origin: still forbidden.
    TestApp::send(
        app.with_cookie(Method::POST, "/v1/admin/signing-keys/rotate", &user.token)
            .json(&json!({})),
    )
    .await
    .assert_error(403, "forbidden");
    TestApp::send(app.req(Method::GET, "/v1/admin/signing-keys"))
        .await
        .assert_error(401, "unauthenticated");
    TestApp::send(
        app.req(Method::POST, "/v1/admin/signing-keys/rotate")
            .json(&json!({})),
    )
    .await
    .assert_error(401, "unauthenticated");
    assert_eq!(kids(&jwks(&app).await), before, "nothing rotated");
}

async fn private_keys_are_sealed_at_rest(app: TestApp) {
    for alg in [SigningAlg::ES256, SigningAlg::RS256] {
        app.state
            .keys
            .sign(alg, JwtType::Jwt, &claims(60))
            .await
            .unwrap();
    }
    // The rows exactly as stored.
    let store = portcullis_store::connect(&app.database_url).await.unwrap();
    let rows = store
        .keys()
        .published_signing_keys(portcullis_core::now())
        .await
        .unwrap();
    assert_eq!(rows.len(), 3);
    let config = Config {
        data_dir: app.data_dir.clone(),
        database_url: Some(app.database_url.clone().into()),
        dev: true,
        ..Config::default()
    };
    let sealer = portcullis_server::infra::crypto::SecretBox::new(
        &config.master_key().unwrap(),
        portcullis_server::infra::crypto::purpose::SIGNING_KEYS,
    )
    .unwrap();
    // PKCS#8 Ed25519 v1 and the DER SEQUENCE header every PKCS#8/PKCS#1 key starts with.
    let ed_prefix = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70,
    ];
    for row in &rows {
        let stored = &row.encrypted_private_key;
        assert_eq!(stored[0], 1, "sealed format version");
        assert!(!stored.windows(ed_prefix.len()).any(|w| w == ed_prefix));
        assert_ne!(
            &stored[..2],
            &[0x30, 0x82][..],
            "{:?} stored as plain DER",
            row.alg
        );
        assert!(row.public_jwk.get("d").is_none());
        // It opens only with the master key and only as this row's key.
        let aad = format!("signing_key:{}:{}", row.alg.as_str(), row.kid);
        let plain = sealer.open(stored, aad.as_bytes()).unwrap();
        assert_eq!(stored.len(), 1 + 12 + plain.len() + 16);
        assert!(plain.len() >= 48);
        for window in [16, 32] {
            let secret = &plain[plain.len() - window..];
            assert!(
                !stored.windows(window).any(|w| w == secret),
                "{:?}: key bytes appear in the stored row",
                row.alg
            );
        }
        if row.alg == SigningAlg::EdDSA {
            assert_eq!(&plain[..12], &ed_prefix[..]);
        }
        let other = format!("signing_key:{}:{}", row.alg.as_str(), "someone-else");
        assert!(sealer.open(stored, other.as_bytes()).is_err());
    }
}

async fn another_nodes_keys_are_found_and_a_wrong_master_key_refused(app: TestApp) {
    // A second node: same database, same master key.
    let config = Config {
        data_dir: app.data_dir.clone(),
        database_url: Some(app.database_url.clone().into()),
        dev: true,
        ..Config::default()
    };
    let store = portcullis_store::connect(&app.database_url).await.unwrap();
    let other = Arc::new(
        KeyRing::open(store.clone(), &config.master_key().unwrap())
            .await
            .unwrap(),
    );
    assert_eq!(
        other.jwks(),
        app.state.keys.jwks(),
        "same keys on both nodes"
    );

    // The other node rotates: the new key is published here too, while the old one keeps
    // signing on both nodes during pre-publication.
    let old_kid = part(
        &other
            .sign(SigningAlg::EdDSA, JwtType::Jwt, &claims(60))
            .await
            .unwrap(),
        0,
    )["kid"]
        .clone();
    let new_kid = other
        .rotate(SigningAlg::EdDSA, &AuditContext::cli())
        .await
        .unwrap();
    let jwt = other
        .sign(SigningAlg::EdDSA, JwtType::Jwt, &claims(60))
        .await
        .unwrap();
    assert_eq!(part(&jwt, 0)["kid"], old_kid);
    assert_eq!(
        app.state
            .keys
            .verify::<Value>(&jwt, JwtType::Jwt)
            .await
            .unwrap(),
        part(&jwt, 1)
    );
    tokio::time::sleep(JWKS_MAX_AGE).await;
    assert!(kids(&jwks(&app).await).contains(&new_kid));
    // And the other way round: a first ES256 key made here is found there.
    let es = app
        .state
        .keys
        .sign(SigningAlg::ES256, JwtType::Jwt, &claims(60))
        .await
        .unwrap();
    other.verify::<Value>(&es, JwtType::Jwt).await.unwrap();

    // A key the other node made is published here within JWKS_MAX_AGE, before this server
    // ever signs with or reloads for it.
    let rs = other
        .sign(SigningAlg::RS256, JwtType::Jwt, &claims(60))
        .await
        .unwrap();
    let rs_kid = part(&rs, 0)["kid"].as_str().unwrap().to_owned();
    tokio::time::sleep(JWKS_MAX_AGE).await;
    assert!(kids(&jwks(&app).await).contains(&rs_kid));

    // A node with another master key cannot open the keys: it refuses to start.
    let wrong = Config {
        master_key: Some(
            base64::engine::general_purpose::STANDARD
                .encode([9u8; 32])
                .into(),
        ),
        ..config.clone()
    };
    let wrong_key = wrong.master_key().unwrap();
    let err = KeyRing::open(store.clone(), &wrong_key).await.unwrap_err();
    assert!(matches!(err, KeyError::BadKey { .. }), "{err:?}");
    assert!(err.to_string().contains("master key"), "{err}");
    let data_dir =
        std::env::temp_dir().join(format!("portcullis-test-{}", uuid::Uuid::now_v7().simple()));
    let start = portcullis_server::Server::start(Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data_dir.clone(),
        ..wrong
    })
    .await;
    let _ = std::fs::remove_dir_all(&data_dir);
    match start {
        Err(portcullis_server::StartError::Keys(e)) => {
            assert!(e.to_string().contains("master key"), "{e}")
        }
        Err(e) => panic!("unexpected start error: {e}"),
        Ok(_) => panic!("a server with the wrong master key started"),
    }
}
