//! An org's own OIDC providers, managed by its admins: checked fields, the client secret
//! sealed before it is stored, and the registry's cached copy dropped on every change.

use portcullis_core::{AuditContext, OrgAccess, ValidationError};
use portcullis_store::{OrgSsoProvider, SsoProviderPatch, StoreError};
use uuid::Uuid;

use super::Sso;
use crate::infra::upstream;
use crate::infra::upstream::net::{Reach, is_public};

#[derive(Debug, thiserror::Error)]
pub enum OrgProviderError {
    #[error("no such SSO provider")]
    NotFound,
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

pub type OrgProviderResult<T> = Result<T, OrgProviderError>;

/// A provider as an admin registers it.
pub struct NewOrgProvider {
    pub name: String,
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// None: the default scopes.
    pub scopes: Option<Vec<String>>,
}

/// What an admin changes; None leaves a field as it is.
#[derive(Default)]
pub struct OrgProviderChanges {
    pub name: Option<String>,
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub scopes: Option<Vec<String>>,
}

fn text(field: &'static str, v: &str, max: usize) -> Result<String, ValidationError> {
    let v = v.trim();
    if v.is_empty() || v.chars().count() > max || v.chars().any(char::is_control) {
        return Err(ValidationError::new(
            field,
            format!("{field} must be 1 to {max} characters"),
        ));
    }
    Ok(v.to_owned())
}

fn scopes(v: Vec<String>) -> Result<Vec<String>, ValidationError> {
    if v.len() > 20
        || v.iter().any(|s| {
            s.is_empty()
                || s.len() > 64
                || !s
                    .chars()
                    .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\')
        })
    {
        return Err(ValidationError::new(
            "scopes",
            "scopes must be up to 20 scope tokens (no spaces or quotes)",
        ));
    }
    Ok(upstream::normalize_scopes(v))
}

impl Sso<'_> {
    /// An org provider's issuer: `https://` on a public host (see [`upstream::net`]). A
    /// name that resolves to a non-public address is refused here already; it would be
    /// at every connection anyway (that check is the one DNS rebinding cannot pass).
    async fn issuer(&self, v: &str) -> Result<String, ValidationError> {
        let v = text("issuer", v, 512)?;
        let invalid = |why: &str| {
            ValidationError::new(
                "issuer",
                format!(
                    "issuer must be an https:// URL of a public host, without query or fragment ({why}); \
                     loopback, private and link-local addresses need the server setting sso_allow_private_networks"
                ),
            )
        };
        let Some(url) = url::Url::parse(&v)
            .ok()
            .filter(|u| u.query().is_none() && u.fragment().is_none())
        else {
            return Err(invalid("not such a URL"));
        };
        let reach = self.providers.org_reach();
        reach.check(&v).map_err(|why| invalid(&why))?;
        if reach
            == (Reach::Org {
                allow_private: false,
            })
            && let Some(url::Host::Domain(host)) = url.host()
            && let Ok(Ok(addrs)) = tokio::time::timeout(
                std::time::Duration::from_secs(3),
                tokio::net::lookup_host((host, url.port_or_known_default().unwrap_or(443))),
            )
            .await
        {
            let addrs: Vec<_> = addrs.collect();
            if addrs.iter().any(|a| !is_public(a.ip())) {
                return Err(invalid(&format!("{host} resolves to a non-public address")));
            }
        }
        Ok(v)
    }

    /// The client secret sealed to provider `id`.
    fn seal(&self, id: Uuid, secret: &str) -> OrgProviderResult<Vec<u8>> {
        let secret = text("client_secret", secret, 4096)?;
        upstream::seal_client_secret(self.master_key, id, &secret)
            .map_err(|e| OrgProviderError::Internal(e.to_string()))
    }

    pub async fn org_providers(
        &self,
        access: &OrgAccess,
    ) -> OrgProviderResult<Vec<OrgSsoProvider>> {
        Ok(self
            .store
            .org(access)
            .sso_providers()
            .list_providers()
            .await?)
    }

    pub async fn org_provider(
        &self,
        access: &OrgAccess,
        id: Uuid,
    ) -> OrgProviderResult<OrgSsoProvider> {
        self.store
            .org(access)
            .sso_providers()
            .get_provider(id)
            .await?
            .ok_or(OrgProviderError::NotFound)
    }

    pub async fn create_org_provider(
        &self,
        access: &OrgAccess,
        new: NewOrgProvider,
        audit: &AuditContext,
    ) -> OrgProviderResult<OrgSsoProvider> {
        let now = portcullis_core::now();
        let id = Uuid::now_v7();
        let p = OrgSsoProvider {
            id,
            org_id: access.org_id(),
            name: text("name", &new.name, 100)?,
            issuer: self.issuer(&new.issuer).await?,
            client_id: text("client_id", &new.client_id, 512)?,
            client_secret_sealed: self.seal(id, &new.client_secret)?,
            scopes: scopes(new.scopes.unwrap_or_default())?,
            created_at: now,
            updated_at: now,
        };
        self.store
            .org(access)
            .sso_providers()
            .create_provider(&p, audit)
            .await?;
        Ok(p)
    }

    pub async fn update_org_provider(
        &self,
        access: &OrgAccess,
        id: Uuid,
        changes: OrgProviderChanges,
        audit: &AuditContext,
    ) -> OrgProviderResult<OrgSsoProvider> {
        let patch = SsoProviderPatch {
            name: changes
                .name
                .as_deref()
                .map(|v| text("name", v, 100))
                .transpose()?,
            issuer: match changes.issuer.as_deref() {
                Some(v) => Some(self.issuer(v).await?),
                None => None,
            },
            client_id: changes
                .client_id
                .as_deref()
                .map(|v| text("client_id", v, 512))
                .transpose()?,
            client_secret_sealed: changes
                .client_secret
                .as_deref()
                .map(|v| self.seal(id, v))
                .transpose()?,
            scopes: changes.scopes.map(scopes).transpose()?,
        };
        let p = self
            .store
            .org(access)
            .sso_providers()
            .update_provider(id, &patch, audit)
            .await?;
        self.providers.forget_org(id);
        Ok(p)
    }

    pub async fn delete_org_provider(
        &self,
        access: &OrgAccess,
        id: Uuid,
        audit: &AuditContext,
    ) -> OrgProviderResult<()> {
        self.store
            .org(access)
            .sso_providers()
            .delete_provider(id, audit)
            .await?;
        self.providers.forget_org(id);
        Ok(())
    }
}
