//! Verified domains without HTTP: claiming (free-mail domains refused), proving by DNS or
//! by a platform admin's word, listing and deleting. One org per verified domain is the
//! store's rule; pending claims of several orgs live side by side.

use portcullis_core::{
    AuditContext, DomainName, OrgAccess, OrgDomain, Principal, ValidationError, VerificationMethod,
};
use portcullis_store::{Store, StoreError};

use crate::infra::dns::TxtResolver;

#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    #[error("no such domain claim in this organization")]
    NotFound,
    #[error(
        "{0} is a free-mail domain: its addresses belong to the mail provider's customers, so no organization may claim it"
    )]
    FreeMail(DomainName),
    #[error("only platform admins may mark a domain verified without DNS (method \"admin\")")]
    AdminOnly,
    /// DNS answered, without this claim's record.
    #[error(
        "no TXT record at {name} with the value {expected}; found {}. Publish the record, wait for DNS to \
         serve it, and verify again",
        found_list(found)
    )]
    RecordMissing {
        name: String,
        expected: String,
        found: Vec<String>,
    },
    /// DNS did not answer.
    #[error(
        "could not look up the TXT record at {name} (expected the value {expected}): {cause}; try again later"
    )]
    DnsFailed {
        name: String,
        expected: String,
        cause: String,
    },
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

fn found_list(found: &[String]) -> String {
    if found.is_empty() {
        "no TXT record there".into()
    } else {
        found
            .iter()
            .take(10)
            .map(|v| format!("{:?}", v.chars().take(200).collect::<String>()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

pub type DomainResult<T> = Result<T, DomainError>;

/// The domain operations over the store and the DNS.
pub struct Domains<'a> {
    pub store: &'a dyn Store,
    pub dns: &'a TxtResolver,
    /// The operator's additions to the built-in free-mail list.
    pub free_mail: &'a [String],
}

impl Domains<'_> {
    /// A new pending claim with its own token (`domain.created`).
    pub async fn claim(
        &self,
        access: &OrgAccess,
        raw: &str,
        audit: &AuditContext,
    ) -> DomainResult<OrgDomain> {
        let domain = DomainName::parse(raw)?;
        if domain.is_free_mail(self.free_mail) {
            return Err(DomainError::FreeMail(domain));
        }
        let claim = OrgDomain::claim(access.org_id(), domain)
            .map_err(|e| DomainError::Internal(format!("no randomness: {e}")))?;
        self.store
            .org(access)
            .domains()
            .create_domain(&claim, audit)
            .await?;
        Ok(claim)
    }

    pub async fn list(&self, access: &OrgAccess) -> DomainResult<Vec<OrgDomain>> {
        Ok(self.store.org(access).domains().list_domains().await?)
    }

    /// Proves the claim: by its TXT record, or (platform admins only) by the caller's word.
    pub async fn verify(
        &self,
        access: &OrgAccess,
        principal: &Principal,
        domain: &DomainName,
        method: VerificationMethod,
        audit: &AuditContext,
    ) -> DomainResult<OrgDomain> {
        if method == VerificationMethod::Admin && !principal.is_platform_admin {
            return Err(DomainError::AdminOnly);
        }
        let claim = self
            .store
            .org(access)
            .domains()
            .get_domain(domain)
            .await?
            .ok_or(DomainError::NotFound)?;
        if claim.is_verified() {
            return Ok(claim);
        }
        if method == VerificationMethod::Dns {
            let name = domain.challenge_name();
            let expected = claim.challenge_value();
            let found = self
                .dns
                .txt(&name)
                .await
                .map_err(|cause| DomainError::DnsFailed {
                    name: name.clone(),
                    expected: expected.clone(),
                    cause,
                })?;
            if !claim.proven_by(&found) {
                return Err(DomainError::RecordMissing {
                    name,
                    expected,
                    found,
                });
            }
        }
        Ok(self
            .store
            .org(access)
            .domains()
            .verify_domain(domain, method, audit)
            .await?)
    }

    pub async fn delete(
        &self,
        access: &OrgAccess,
        domain: &DomainName,
        audit: &AuditContext,
    ) -> DomainResult<()> {
        match self
            .store
            .org(access)
            .domains()
            .delete_domain(domain, audit)
            .await
        {
            Err(StoreError::NotFound) => Err(DomainError::NotFound),
            other => Ok(other?),
        }
    }
}
