//! Partial updates (`PATCH`) of a project and of an OAuth client: which fields a patch
//! changes, and whether the result is allowed. The store reads the current record under a
//! lock, applies the patch here and persists what comes back, so both backends decide alike.

use crate::oauth::{ClientType, GrantType, OAuthClient, SigningAlg, TokenEndpointAuthMethod};
use crate::{Origin, Project, ProjectName, ProjectStatus, RedirectUri, Timestamp, ValidationError};

/// Fields of `PATCH /v1/project`; None leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct ProjectPatch {
    pub name: Option<ProjectName>,
    pub status: Option<ProjectStatus>,
    pub redirect_uris: Option<Vec<RedirectUri>>,
    pub allowed_origins: Option<Vec<Origin>>,
}

impl ProjectPatch {
    /// The patched project and the names of the fields that changed. `updated_at` moves
    /// even when nothing changed: every accepted patch is recorded as an update.
    pub fn apply(&self, mut p: Project, now: Timestamp) -> (Project, Vec<&'static str>) {
        let mut changed = Vec::new();
        set(&mut p.name, self.name.as_ref(), "name", &mut changed);
        set(&mut p.status, self.status.as_ref(), "status", &mut changed);
        set(
            &mut p.redirect_uris,
            self.redirect_uris.as_ref(),
            "redirect_uris",
            &mut changed,
        );
        set(
            &mut p.allowed_origins,
            self.allowed_origins.as_ref(),
            "allowed_origins",
            &mut changed,
        );
        p.updated_at = now;
        (p, changed)
    }
}

/// Fields of `PATCH /v1/project/clients/{client_id}`; None leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct ClientPatch {
    /// Accepted only when it names the type the client already has: a public client cannot
    /// be given a secret after the fact, nor a confidential one lose it.
    pub client_type: Option<ClientType>,
    pub name: Option<String>,
    pub redirect_uris: Option<Vec<RedirectUri>>,
    pub post_logout_redirect_uris: Option<Vec<RedirectUri>>,
    pub grant_types: Option<Vec<GrantType>>,
    pub token_endpoint_auth_method: Option<TokenEndpointAuthMethod>,
    pub access_token_ttl_secs: Option<u32>,
    pub signing_alg: Option<SigningAlg>,
}

impl ClientPatch {
    /// The patched client and the names of the fields that changed; the result as a whole
    /// must validate. `updated_at` moves only when something changed.
    pub fn apply(
        &self,
        mut c: OAuthClient,
        now: Timestamp,
    ) -> Result<(OAuthClient, Vec<&'static str>), ValidationError> {
        if self.client_type.is_some_and(|t| t != c.client_type) {
            return Err(ValidationError::new(
                "type",
                "the client type cannot change; register a new client instead",
            ));
        }
        let mut changed = Vec::new();
        set(&mut c.name, self.name.as_ref(), "name", &mut changed);
        set(
            &mut c.redirect_uris,
            self.redirect_uris.as_ref(),
            "redirect_uris",
            &mut changed,
        );
        set(
            &mut c.post_logout_redirect_uris,
            self.post_logout_redirect_uris.as_ref(),
            "post_logout_redirect_uris",
            &mut changed,
        );
        set(
            &mut c.grant_types,
            self.grant_types.as_ref(),
            "grant_types",
            &mut changed,
        );
        set(
            &mut c.token_endpoint_auth_method,
            self.token_endpoint_auth_method.as_ref(),
            "token_endpoint_auth_method",
            &mut changed,
        );
        set(
            &mut c.access_token_ttl_secs,
            self.access_token_ttl_secs.as_ref(),
            "access_token_ttl_secs",
            &mut changed,
        );
        set(
            &mut c.signing_alg,
            self.signing_alg.as_ref(),
            "signing_alg",
            &mut changed,
        );
        c.validate()?;
        if !changed.is_empty() {
            c.updated_at = now;
        }
        Ok((c, changed))
    }
}

/// Takes `new` when it is given and differs, noting the field as changed.
fn set<T: PartialEq + Clone>(
    field: &mut T,
    new: Option<&T>,
    name: &'static str,
    changed: &mut Vec<&'static str>,
) {
    if let Some(new) = new
        && new != field
    {
        *field = new.clone();
        changed.push(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::{ClientId, ClientRegistration};
    use crate::{OrgId, ProjectId, TokenHash};

    fn project() -> Project {
        crate::bootstrap::default_project(OrgId::new(), crate::now()).unwrap()
    }

    #[test]
    fn project_patch_changes_only_what_differs() {
        let before = project();
        let later = before.created_at + time::Duration::seconds(5);
        let patch = ProjectPatch {
            name: Some(before.name.clone()),
            status: Some(ProjectStatus::Disabled),
            redirect_uris: Some(vec![
                RedirectUri::parse("https://app.example.com/cb").unwrap(),
            ]),
            allowed_origins: None,
        };
        let (after, changed) = patch.apply(before.clone(), later);
        assert_eq!(changed, ["status", "redirect_uris"]);
        assert_eq!(after.status, ProjectStatus::Disabled);
        assert_eq!(after.name, before.name);
        assert_eq!(after.allowed_origins, before.allowed_origins);
        assert_eq!((after.id, after.created_at), (before.id, before.created_at));
        assert_eq!(after.updated_at, later);

        let (same, changed) = ProjectPatch::default().apply(before.clone(), later);
        assert!(changed.is_empty());
        assert_eq!(same.updated_at, later);
        assert_eq!(same.name, before.name);
    }

    fn client(client_type: ClientType) -> OAuthClient {
        let secret = (client_type == ClientType::Confidential).then(|| TokenHash::of("s"));
        OAuthClient::register(
            ClientId::parse("pcc_test").unwrap(),
            OrgId::new(),
            ProjectId::new(),
            ClientRegistration {
                name: "App".into(),
                client_type,
                redirect_uris: vec![RedirectUri::parse("https://app.example.com/cb").unwrap()],
                post_logout_redirect_uris: vec![],
                grant_types: None,
                token_endpoint_auth_method: None,
                access_token_ttl_secs: None,
                signing_alg: None,
            },
            secret,
            crate::now(),
        )
        .unwrap()
    }

    #[test]
    fn client_patch_changes_only_what_differs() {
        let before = client(ClientType::Confidential);
        let later = before.created_at + time::Duration::seconds(5);
        let patch = ClientPatch {
            client_type: Some(ClientType::Confidential),
            name: Some("App".into()),
            access_token_ttl_secs: Some(300),
            ..ClientPatch::default()
        };
        let (after, changed) = patch.apply(before.clone(), later).unwrap();
        assert_eq!(changed, ["access_token_ttl_secs"]);
        assert_eq!(after.access_token_ttl_secs, 300);
        assert_eq!(after.updated_at, later);

        let (same, changed) = ClientPatch::default().apply(before.clone(), later).unwrap();
        assert!(changed.is_empty());
        assert_eq!(same.updated_at, before.updated_at);
    }

    #[test]
    fn client_patch_refuses_a_type_change_and_an_invalid_result() {
        let public = client(ClientType::Public);
        let now = crate::now();
        let retype = ClientPatch {
            client_type: Some(ClientType::Confidential),
            ..ClientPatch::default()
        };
        assert_eq!(retype.apply(public.clone(), now).unwrap_err().field, "type");
        let secretless = ClientPatch {
            grant_types: Some(vec![GrantType::ClientCredentials]),
            ..ClientPatch::default()
        };
        assert_eq!(
            secretless.apply(public, now).unwrap_err().field,
            "grant_types"
        );
    }
}
