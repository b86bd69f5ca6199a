//! The JSON shapes of the API: one set of types, used by the handlers, the OpenAPI document
//! and the tests. Request types reject unknown fields (api.md).

use portcullis_core::{Org, Project, Role, Session, User};
use portcullis_store::{MemberRecord, MemberSession, MembershipView};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// RFC 3339 UTC, as every timestamp of the API.
pub fn ts(t: portcullis_core::Timestamp) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Stable error code (api.md).
    #[schema(example = "invalid_request")]
    pub code: String,
    pub message: String,
    pub correlation_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct PosixIdentity {
    pub uid: u32,
    pub gid: u32,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct UserDto {
    pub id: Uuid,
    pub email: String,
    pub name: Option<String>,
    /// Stable POSIX identity for running the user's jobs.
    pub posix: PosixIdentity,
    pub is_platform_admin: bool,
    pub created_at: String,
}

impl From<&User> for UserDto {
    fn from(u: &User) -> Self {
        Self {
            id: u.id.0,
            email: u.email.as_str().to_owned(),
            name: u.name.as_ref().map(|n| n.as_str().to_owned()),
            posix: PosixIdentity {
                uid: u.posix.uid,
                gid: u.posix.gid,
            },
            is_platform_admin: u.is_platform_admin,
            created_at: ts(u.created_at),
        }
    }
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct OrgDto {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub personal: bool,
    pub created_at: String,
}

impl From<&Org> for OrgDto {
    fn from(o: &Org) -> Self {
        Self {
            id: o.id.0,
            name: o.name.as_str().to_owned(),
            slug: o.slug.as_str().to_owned(),
            personal: o.personal,
            created_at: ts(o.created_at),
        }
    }
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct ProjectDto {
    pub id: Uuid,
    pub org_id: Uuid,
    pub name: String,
    #[schema(example = "active")]
    pub status: String,
    pub redirect_uris: Vec<String>,
    pub allowed_origins: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&Project> for ProjectDto {
    fn from(p: &Project) -> Self {
        Self {
            id: p.id.0,
            org_id: p.org_id.0,
            name: p.name.as_str().to_owned(),
            status: p.status.as_str().to_owned(),
            redirect_uris: p
                .redirect_uris
                .iter()
                .map(|u| u.as_str().to_owned())
                .collect(),
            allowed_origins: p
                .allowed_origins
                .iter()
                .map(|o| o.as_str().to_owned())
                .collect(),
            created_at: ts(p.created_at),
            updated_at: ts(p.updated_at),
        }
    }
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct SessionDto {
    pub id: Uuid,
    pub created_at: String,
    pub last_seen_at: String,
    pub expires_at: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The app and device of a mobile session; absent for browser sessions.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub device: Option<DeviceDto>,
    /// The session this request was made with.
    pub current: bool,
}

/// What a mobile app reported about itself when it signed in.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct DeviceDto {
    pub platform: String,
    pub model: Option<String>,
    pub app_version: Option<String>,
}

impl SessionDto {
    pub fn new(s: &Session, current: Option<portcullis_core::SessionId>) -> Self {
        Self {
            id: s.id.0,
            created_at: ts(s.created_at),
            last_seen_at: ts(s.last_seen_at),
            expires_at: ts(s.expires_at),
            ip: s.ip.clone(),
            user_agent: s.user_agent.clone(),
            device: s.device.as_ref().map(|d| DeviceDto {
                platform: d.platform.clone(),
                model: d.model.clone(),
                app_version: d.app_version.clone(),
            }),
            current: Some(s.id) == current,
        }
    }
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct ProjectWithRole {
    #[serde(flatten)]
    pub project: ProjectDto,
    pub role: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct MembershipDto {
    pub org: OrgDto,
    pub role: String,
    pub projects: Vec<ProjectWithRole>,
}

impl From<&MembershipView> for MembershipDto {
    fn from(m: &MembershipView) -> Self {
        Self {
            org: (&m.org).into(),
            role: m.role.as_str().to_owned(),
            projects: m
                .projects
                .iter()
                .map(|p| ProjectWithRole {
                    project: (&p.project).into(),
                    role: p.role.as_str().to_owned(),
                })
                .collect(),
        }
    }
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct MeResponse {
    pub user: UserDto,
    pub session: SessionDto,
    pub memberships: Vec<MembershipDto>,
    /// Present when the request names a project with `X-Project-ID`: the org, project and
    /// role the caller acts with there, resolved together.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<ProjectContextDto>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct ProjectContextDto {
    pub org: OrgDto,
    pub project: ProjectDto,
    pub role: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    pub email: String,
    pub password: String,
    pub name: Option<String>,
    /// An invitation token (`inv_…`) addressed to `email`: the new account also joins the
    /// inviting org with the invited role.
    pub invitation: Option<String>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct SignupResponse {
    pub user: UserDto,
    /// The new account's personal org.
    pub org: OrgDto,
    pub project: ProjectDto,
    /// The org joined through `invitation`, when one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub joined: Option<JoinedOrg>,
}

/// An org membership gained through an invitation.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct JoinedOrg {
    pub org_id: Uuid,
    #[schema(example = "member")]
    pub role: String,
    pub invitation_id: Uuid,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct LoginResponse {
    pub user: UserDto,
    pub session: SessionDto,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct SessionList {
    pub sessions: Vec<SessionDto>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrgRequest {
    pub name: String,
    /// Derived from the name when absent.
    pub slug: Option<String>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct CreateOrgResponse {
    pub org: OrgDto,
    pub project: ProjectDto,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct OrgWithRole {
    #[serde(flatten)]
    pub org: OrgDto,
    pub role: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct OrgList {
    pub orgs: Vec<OrgWithRole>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct MemberDto {
    pub user: UserDto,
    pub role: String,
    pub joined_at: String,
    /// The member's email is in one of the org's verified domains: a managed account,
    /// whose sessions and sign-ins the org's admins see.
    pub managed: bool,
}

impl MemberDto {
    pub fn new(m: &MemberRecord, managed: bool) -> Self {
        Self {
            user: (&m.user).into(),
            role: m.role.as_str().to_owned(),
            joined_at: ts(m.joined_at),
            managed,
        }
    }
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct MemberList {
    pub members: Vec<MemberDto>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMemberRequest {
    pub email: String,
    #[schema(example = "member")]
    pub role: String,
    /// Used only when the account has to be created.
    pub name: Option<String>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct AddMemberResponse {
    #[serde(flatten)]
    pub member: MemberDto,
    /// True when no account had this email and one was created.
    pub user_created: bool,
    /// For a created account: where its owner sets a first password (one-time token
    /// `pst_…`, shown only here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub setup_url: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeRoleRequest {
    pub role: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct OrgSessionDto {
    #[serde(flatten)]
    pub session: SessionDto,
    pub user_id: Uuid,
    pub email: String,
}

impl OrgSessionDto {
    pub fn new(s: &MemberSession, current: Option<portcullis_core::SessionId>) -> Self {
        Self {
            session: SessionDto::new(&s.session, current),
            user_id: s.user_id.0,
            email: s.email.as_str().to_owned(),
        }
    }
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct OrgSessionList {
    pub sessions: Vec<OrgSessionDto>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProjectRequest {
    pub name: String,
    /// `live` (default) or `test`: the mode of the project's keys, fixed at creation.
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub allowed_origins: Vec<String>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct ProjectList {
    pub projects: Vec<ProjectDto>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchProjectRequest {
    pub name: Option<String>,
    #[schema(example = "disabled")]
    pub status: Option<String>,
    pub redirect_uris: Option<Vec<String>>,
    pub allowed_origins: Option<Vec<String>>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct AuditEventDto {
    pub id: Uuid,
    pub at: String,
    pub org_id: Option<Uuid>,
    pub actor_id: Option<Uuid>,
    /// When a project's secret key made the change: the key's prefix (`sk_live_abcd1234`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor_key: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub outcome: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub correlation_id: String,
    pub details: serde_json::Value,
}

impl From<&portcullis_core::AuditEvent> for AuditEventDto {
    fn from(e: &portcullis_core::AuditEvent) -> Self {
        Self {
            id: e.id.0,
            at: ts(e.at),
            org_id: e.org_id.map(|o| o.0),
            actor_id: e.actor_id.map(|a| a.0),
            actor_key: e.actor_key.clone(),
            action: e.action.clone(),
            target: e.target.clone(),
            outcome: e.outcome.as_str().to_owned(),
            ip: e.ip.clone(),
            user_agent: e.user_agent.clone(),
            correlation_id: e.correlation_id.clone(),
            details: e.details.clone(),
        }
    }
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    pub events: Vec<AuditEventDto>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: String,
    pub version: String,
    pub commit: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct Readiness {
    pub status: String,
    pub checks: Vec<ReadinessCheck>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct ReadinessCheck {
    pub name: String,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

pub fn role_str(r: Role) -> String {
    r.as_str().to_owned()
}

// ---- OAuth clients (`/v1/project/clients`) ---------------------------------------------------

/// An OAuth client (application) of the project. Never carries its secret or a digest of it.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ClientDto {
    #[schema(example = "pcc_Xq3b5yT0d2mGfA1nK8wVZQ")]
    pub client_id: String,
    pub project_id: Uuid,
    pub name: String,
    /// `confidential` or `public`.
    #[serde(rename = "type")]
    #[schema(example = "confidential")]
    pub client_type: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// Among `authorization_code`, `refresh_token`, `client_credentials`.
    #[schema(example = json!(["authorization_code", "refresh_token"]))]
    pub grant_types: Vec<String>,
    /// `client_secret_basic`, `client_secret_post` (confidential) or `none` (public).
    #[schema(example = "client_secret_basic")]
    pub token_endpoint_auth_method: String,
    /// True for public clients: their authorization requests must use PKCE (S256).
    pub pkce_required: bool,
    #[schema(example = 600)]
    pub access_token_ttl_secs: u32,
    /// `EdDSA`, `ES256` or `RS256`.
    #[schema(example = "EdDSA")]
    pub signing_alg: String,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&portcullis_core::oauth::OAuthClient> for ClientDto {
    fn from(c: &portcullis_core::oauth::OAuthClient) -> Self {
        let uris =
            |u: &[portcullis_core::RedirectUri]| u.iter().map(|u| u.as_str().to_owned()).collect();
        Self {
            client_id: c.id.as_str().to_owned(),
            project_id: c.project_id.0,
            name: c.name.clone(),
            client_type: c.client_type.as_str().to_owned(),
            redirect_uris: uris(&c.redirect_uris),
            post_logout_redirect_uris: uris(&c.post_logout_redirect_uris),
            grant_types: c
                .grant_types
                .iter()
                .map(|g| g.as_str().to_owned())
                .collect(),
            token_endpoint_auth_method: c.token_endpoint_auth_method.as_str().to_owned(),
            pkce_required: c.requires_pkce(),
            access_token_ttl_secs: c.access_token_ttl_secs,
            signing_alg: c.signing_alg.as_str().to_owned(),
            created_at: ts(c.created_at),
            updated_at: ts(c.updated_at),
        }
    }
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct ClientList {
    pub clients: Vec<ClientDto>,
}

/// A client with its secret, in the one reply that shows it: creation (confidential
/// clients) or rotation. Only the secret's SHA-256 is kept; a lost secret is rotated.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ClientWithSecret {
    #[serde(flatten)]
    pub client: ClientDto,
    /// `pcs_` + 256 random bits (base64url). Absent for public clients.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "pcs_3q2-7wfVVm0PMB9KcNk6a1bT1o4fZV4nE0uxs0z6Qzc")]
    pub client_secret: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateClientRequest {
    pub name: String,
    /// `confidential` (a server-side app; gets a secret) or `public` (single-page or native
    /// app; no secret, PKCE required).
    #[serde(rename = "type")]
    #[schema(example = "confidential")]
    pub client_type: String,
    /// Exact-match redirect URIs: `https`, loopback `http` (any port matches, RFC 8252) or a
    /// private-use scheme; no fragments, no wildcards. Required for `authorization_code`.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// Default `["authorization_code", "refresh_token"]`.
    pub grant_types: Option<Vec<String>>,
    /// Default `client_secret_basic` (confidential) or `none` (public).
    pub token_endpoint_auth_method: Option<String>,
    /// 300–3600; default 600.
    pub access_token_ttl_secs: Option<i64>,
    /// `EdDSA` (default), `ES256` or `RS256`.
    pub signing_alg: Option<String>,
}

/// Absent fields stay as they are; the result must still be a valid client. The type cannot
/// change.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchClientRequest {
    pub name: Option<String>,
    /// Accepted only when equal to the current type.
    #[serde(rename = "type")]
    pub client_type: Option<String>,
    pub redirect_uris: Option<Vec<String>>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    pub grant_types: Option<Vec<String>>,
    pub token_endpoint_auth_method: Option<String>,
    pub access_token_ttl_secs: Option<i64>,
    pub signing_alg: Option<String>,
}

/// `GET /v1/mobile/connect`: what the console's "connect this server" card shows.
#[derive(Serialize, ToSchema)]
pub struct MobileConnect {
    /// `SCHEME://server?url=ORIGIN`, the link a mobile app opens (or scans) to use this server.
    pub url: String,
}
