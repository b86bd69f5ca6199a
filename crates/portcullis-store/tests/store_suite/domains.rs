//! Verified domains: claims scoped to their org and audited, pending claims of several orgs
//! side by side, one verified owner per domain, and the cross-tenant questions sign-in and
//! member management ask.

use std::sync::Arc;

use portcullis_core::{
    AuditQuery, DomainName, DomainStatus, Email, OrgAccess, OrgDomain, VerificationMethod,
};
use portcullis_store::domains::VERIFIED_ELSEWHERE;
use portcullis_store::{Store, StoreError};

use super::{ctx, signup};

fn name(d: &str) -> DomainName {
    DomainName::parse(d).unwrap()
}

async fn actions(store: &dyn Store, access: &OrgAccess) -> Vec<String> {
    store
        .org(access)
        .audit()
        .query_audit(&AuditQuery {
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .filter(|a| a.starts_with("domain."))
        .collect()
}

pub async fn one_org_verifies_a_domain(store: Arc<dyn Store>) {
    let a = signup(&*store, "dom-a@example.org").await;
    let b = signup(&*store, "dom-b@example.org").await;
    let c = signup(&*store, "dom-c@example.org").await;
    let d = store.domains();
    let acme = name("acme-corp.example");

    // Both claim: pending claims never block each other.
    let claim_a = OrgDomain::claim(a.org.id, acme.clone()).unwrap();
    let claim_b = OrgDomain::claim(b.org.id, acme.clone()).unwrap();
    store
        .org(&a.access())
        .domains()
        .create_domain(&claim_a, &ctx())
        .await
        .unwrap();
    store
        .org(&b.access())
        .domains()
        .create_domain(&claim_b, &ctx())
        .await
        .unwrap();
    assert!(matches!(
        store.org(&a.access()).domains().create_domain(&claim_a, &ctx()).await,
        Err(StoreError::Conflict(m)) if m.contains("already claimed")
    ));
    // Nobody may write into another org.
    assert!(matches!(
        store
            .org(&c.access())
            .domains()
            .create_domain(&claim_a, &ctx())
            .await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(d.verified_owner(&acme).await.unwrap(), None);

    // B sees only its own claim; A's token never shows there.
    let listed = store
        .org(&b.access())
        .domains()
        .list_domains()
        .await
        .unwrap();
    assert_eq!(listed, vec![claim_b.clone()]);
    assert_eq!(
        store
            .org(&b.access())
            .domains()
            .get_domain(&acme)
            .await
            .unwrap(),
        Some(claim_b.clone())
    );
    assert_eq!(
        store
            .org(&c.access())
            .domains()
            .get_domain(&acme)
            .await
            .unwrap(),
        None
    );

    // B proves it first; A's verification then conflicts, and so do new claims.
    let verified = store
        .org(&b.access())
        .domains()
        .verify_domain(&acme, VerificationMethod::Dns, &ctx())
        .await
        .unwrap();
    assert_eq!(verified.status, DomainStatus::Verified);
    assert_eq!(verified.method, Some(VerificationMethod::Dns));
    assert!(verified.verified_at.is_some());
    assert_eq!(
        store
            .org(&b.access())
            .domains()
            .get_domain(&acme)
            .await
            .unwrap(),
        Some(verified.clone())
    );
    let again = store
        .org(&b.access())
        .domains()
        .verify_domain(&acme, VerificationMethod::Admin, &ctx())
        .await
        .unwrap();
    assert_eq!(again, verified, "verifying again changes nothing");
    assert!(matches!(
        store.org(&a.access()).domains().verify_domain(&acme, VerificationMethod::Dns, &ctx()).await,
        Err(StoreError::Conflict(m)) if m == VERIFIED_ELSEWHERE
    ));
    let claim_c = OrgDomain::claim(c.org.id, acme.clone()).unwrap();
    assert!(matches!(
        store.org(&c.access()).domains().create_domain(&claim_c, &ctx()).await,
        Err(StoreError::Conflict(m)) if m == VERIFIED_ELSEWHERE
    ));
    assert!(matches!(
        store
            .org(&c.access())
            .domains()
            .verify_domain(&acme, VerificationMethod::Dns, &ctx())
            .await,
        Err(StoreError::NotFound)
    ));

    // The questions of sign-in and member management.
    assert_eq!(d.verified_owner(&acme).await.unwrap(), Some(b.org.id));
    assert_eq!(
        d.verified_domains(b.org.id).await.unwrap(),
        vec![acme.clone()]
    );
    assert!(d.verified_domains(a.org.id).await.unwrap().is_empty());
    let inside = Email::parse("Dave@Acme-Corp.example").unwrap();
    let sub = Email::parse("dave@eu.acme-corp.example").unwrap();
    assert!(d.email_domain_verified(b.org.id, &inside).await.unwrap());
    assert!(!d.email_domain_verified(a.org.id, &inside).await.unwrap());
    assert!(!d.email_domain_verified(b.org.id, &sub).await.unwrap());

    // Deleting is scoped, audited, and frees the domain for the next org.
    assert!(matches!(
        store
            .org(&c.access())
            .domains()
            .delete_domain(&acme, &ctx())
            .await,
        Err(StoreError::NotFound)
    ));
    store
        .org(&b.access())
        .domains()
        .delete_domain(&acme, &ctx())
        .await
        .unwrap();
    assert!(matches!(
        store
            .org(&b.access())
            .domains()
            .delete_domain(&acme, &ctx())
            .await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(d.verified_owner(&acme).await.unwrap(), None);
    assert!(!d.email_domain_verified(b.org.id, &inside).await.unwrap());
    store
        .org(&a.access())
        .domains()
        .verify_domain(&acme, VerificationMethod::Admin, &ctx())
        .await
        .unwrap();
    assert_eq!(d.verified_owner(&acme).await.unwrap(), Some(a.org.id));

    assert_eq!(
        actions(&*store, &b.access()).await,
        ["domain.deleted", "domain.verified", "domain.created"]
    );
    assert_eq!(
        actions(&*store, &a.access()).await,
        ["domain.verified", "domain.created"]
    );
    assert!(actions(&*store, &c.access()).await.is_empty());
}

/// PostgreSQL checks the org of `org_domains` rows a second time (row-level security), for
/// the application role; the uniqueness of a verified domain holds across tenants anyway.
#[tokio::test]
async fn postgres_rls_confines_org_domains() {
    use sqlx::Connection;
    let db = super::fresh_postgres().await;
    let store = super::open(&db.url, true).await;
    let a = signup(&*store, "rls-dom-a@example.org").await;
    let b = signup(&*store, "rls-dom-b@example.org").await;
    let acme = name("rls-acme.example");
    store
        .org(&a.access())
        .domains()
        .create_domain(&OrgDomain::claim(a.org.id, acme.clone()).unwrap(), &ctx())
        .await
        .unwrap();
    store
        .org(&a.access())
        .domains()
        .verify_domain(&acme, VerificationMethod::Admin, &ctx())
        .await
        .unwrap();
    let mut conn = sqlx::postgres::PgConnection::connect(&db.url)
        .await
        .unwrap();
    sqlx::query("SET ROLE portcullis_app")
        .execute(&mut conn)
        .await
        .unwrap();
    let mut count_as = async |org: String, platform: &str| -> i64 {
        let mut tx = conn.begin().await.unwrap();
        sqlx::query(
            "SELECT set_config('app.org_id', $1, true), set_config('app.platform', $2, true)",
        )
        .bind(org)
        .bind(platform.to_owned())
        .execute(&mut *tx)
        .await
        .unwrap();
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM org_domains")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        tx.rollback().await.unwrap();
        n
    };
    assert_eq!(count_as(a.org.id.to_string(), "").await, 1);
    assert_eq!(count_as(b.org.id.to_string(), "").await, 0);
    assert_eq!(count_as(String::new(), "").await, 0);
    assert_eq!(count_as(String::new(), "on").await, 1);
    // B cannot write a row for A, and cannot hold A's verified domain verified either,
    // although it cannot see A's row.
    let mut tx = conn.begin().await.unwrap();
    sqlx::query("SELECT set_config('app.org_id', $1, true)")
        .bind(b.org.id.to_string())
        .execute(&mut *tx)
        .await
        .unwrap();
    let e = sqlx::query(
        "INSERT INTO org_domains (org_id, domain, token, status, created_at) \
         VALUES ($1, 'other.example', 't', 'pending', now())",
    )
    .bind(a.org.id.0)
    .execute(&mut *tx)
    .await
    .unwrap_err();
    assert!(
        matches!(&e, sqlx::Error::Database(d) if d.code().as_deref() == Some("42501")),
        "{e}"
    );
    tx.rollback().await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    sqlx::query("SELECT set_config('app.org_id', $1, true)")
        .bind(b.org.id.to_string())
        .execute(&mut *tx)
        .await
        .unwrap();
    let e = sqlx::query(
        "INSERT INTO org_domains (org_id, domain, token, status, method, created_at, verified_at) \
         VALUES ($1, 'rls-acme.example', 't', 'verified', 'dns', now(), now())",
    )
    .bind(b.org.id.0)
    .execute(&mut *tx)
    .await
    .unwrap_err();
    assert!(
        matches!(&e, sqlx::Error::Database(d) if d.is_unique_violation()),
        "{e}"
    );
}
