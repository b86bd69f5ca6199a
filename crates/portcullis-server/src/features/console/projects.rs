//! Projects, for the runbook "load the project, confirm status is active, confirm redirect
//! URLs and browser origins match": each project's status, redirect URIs, allowed origins
//! (edited here, a bad line refused beside its field with nothing saved) and OAuth
//! clients. Changes go through the projects service, as `PATCH /v1/project` does.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use portcullis_core::{
    OrgId, Origin, Project, ProjectId, ProjectStatus, RedirectUri, Role, ValidationError,
};
use portcullis_store::ProjectPatch;

use crate::features::clients::service::ProjectClients;
use crate::features::console::guard::{ConsoleUser, see_other};
use crate::features::console::page::{self, Chrome, NoticeQuery, notice, org_id, when};
use crate::features::orgs::service::Orgs;
use crate::features::projects::service::ProjectScope;
use crate::http::error::ApiError;
use crate::http::extract::authorize_project_scope;
use crate::state::AppState;

pub struct ClientRow {
    pub id: String,
    pub name: String,
    pub kind: &'static str,
    pub redirect_uris: String,
}

pub struct ProjectCard {
    pub id: String,
    pub name: String,
    pub active: bool,
    pub updated: String,
    pub admin: bool,
    /// The form's text: what was saved, or what was posted when it was refused.
    pub redirect_uris: String,
    pub allowed_origins: String,
    pub redirect_error: Option<String>,
    pub origins_error: Option<String>,
    pub clients: Vec<ClientRow>,
}

#[derive(Template)]
#[template(path = "console/projects.html")]
struct ProjectsPage {
    chrome: Chrome,
    org_id: String,
    projects: Vec<ProjectCard>,
}

/// A refused edit of one project, shown again on its card.
struct Refused {
    project: ProjectId,
    redirect_uris: String,
    allowed_origins: String,
    redirect_error: Option<String>,
    origins_error: Option<String>,
}

/// One value per line; blank lines are ignored.
fn lines(raw: &str) -> impl Iterator<Item = &str> {
    raw.lines().map(str::trim).filter(|l| !l.is_empty())
}

/// Every line parsed, or the first bad one named (line number and reason).
fn parse_lines<T>(
    raw: &str,
    parse: impl Fn(&str) -> Result<T, ValidationError>,
) -> Result<Vec<T>, String> {
    lines(raw)
        .enumerate()
        .map(|(i, l)| parse(l).map_err(|e| format!("line {}: {}: {}", i + 1, l, e.message)))
        .collect()
}

async fn card(
    state: &AppState,
    user: &ConsoleUser,
    project: &Project,
    refused: Option<&Refused>,
) -> Result<ProjectCard, ApiError> {
    let (record, access) = authorize_project_scope(state, &user.auth.principal, project.id).await?;
    let clients = ProjectClients {
        scope: state.store.project(&access),
        cache: &state.cache,
        project: &record.project,
        role: access.role(),
        audit: &user.auth.audit,
    }
    .list()
    .await?;
    let join = |v: Vec<&str>| v.join("\n");
    let refused = refused.filter(|r| r.project == project.id);
    Ok(ProjectCard {
        id: project.id.to_string(),
        name: project.name.as_str().to_owned(),
        active: project.status == ProjectStatus::Active,
        updated: when(project.updated_at),
        admin: access.role() >= Role::Admin,
        redirect_uris: refused.map_or_else(
            || join(project.redirect_uris.iter().map(|u| u.as_str()).collect()),
            |r| r.redirect_uris.clone(),
        ),
        allowed_origins: refused.map_or_else(
            || join(project.allowed_origins.iter().map(|o| o.as_str()).collect()),
            |r| r.allowed_origins.clone(),
        ),
        redirect_error: refused.and_then(|r| r.redirect_error.clone()),
        origins_error: refused.and_then(|r| r.origins_error.clone()),
        clients: clients
            .iter()
            .map(|c| ClientRow {
                id: c.id.as_str().to_owned(),
                name: c.name.clone(),
                kind: c.client_type.as_str(),
                redirect_uris: c
                    .redirect_uris
                    .iter()
                    .map(|u| u.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
            .collect(),
    })
}

async fn projects_page(
    state: &AppState,
    user: &ConsoleUser,
    org: OrgId,
    status: StatusCode,
    notice_text: Option<String>,
    refused: Option<Refused>,
) -> Result<Response, ApiError> {
    let access = user.org_access(state, org, Role::Member).await?;
    let projects = Orgs {
        store: &*state.store,
        cache: &state.cache,
    }
    .projects(&access, user.auth.principal.user_id)
    .await?;
    let mut cards = Vec::with_capacity(projects.len());
    for p in &projects {
        cards.push(card(state, user, p, refused.as_ref()).await?);
    }
    let page = ProjectsPage {
        chrome: user
            .chrome(Some(org), "projects", "Projects")
            .with_notice(notice_text),
        org_id: org.to_string(),
        projects: cards,
    };
    Ok(page::render(state, status, &page))
}

/// `GET /console/orgs/{org}/projects`.
pub async fn show(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(org): Path<String>,
    Query(q): Query<NoticeQuery>,
) -> Response {
    let result = async {
        projects_page(
            &state,
            &user,
            org_id(&org)?,
            StatusCode::OK,
            notice(q.notice.as_deref()),
            None,
        )
        .await
    }
    .await;
    result.unwrap_or_else(|e| {
        page::failure(&state, Some(user.chrome(None, "projects", "Projects")), e)
    })
}

/// `POST /console/orgs/{org}/projects/{project}`: status, redirect URIs and allowed
/// origins, one per line.
pub async fn update(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path((org, project)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        // A project of another org than the page's is not this page's to change (404).
        let (form, at) = user
            .project_form(&state, &headers, &body, &org, &project)
            .await?;
        let (org, project_id) = (at.org, at.record.project.id);
        let admin = ProjectScope {
            access: at.access.org(),
            project_id,
            role: at.role,
            audit: &user.auth.audit,
        }
        .admin()?;
        let raw_uris = form.get("redirect_uris").unwrap_or_default();
        let raw_origins = form.get("allowed_origins").unwrap_or_default();
        let uris = parse_lines(raw_uris, RedirectUri::parse);
        let origins = parse_lines(raw_origins, Origin::parse);
        let (redirect_uris, allowed_origins) = match (uris, origins) {
            (Ok(u), Ok(o)) => (u, o),
            (u, o) => {
                let refused = Refused {
                    project: project_id,
                    redirect_uris: raw_uris.to_owned(),
                    allowed_origins: raw_origins.to_owned(),
                    redirect_error: u.err(),
                    origins_error: o.err(),
                };
                return projects_page(
                    &state,
                    &user,
                    org,
                    StatusCode::BAD_REQUEST,
                    None,
                    Some(refused),
                )
                .await;
            }
        };
        let patch = ProjectPatch {
            name: None,
            status: Some(ProjectStatus::parse(
                form.get("status").unwrap_or("active"),
            )?),
            redirect_uris: Some(redirect_uris),
            allowed_origins: Some(allowed_origins),
        };
        admin.update(&*state.store, &patch).await?;
        Ok(see_other(&format!(
            "/console/orgs/{org}/projects?notice=project_saved"
        )))
    }
    .await;
    result.unwrap_or_else(|e| {
        page::failure(&state, Some(user.chrome(None, "projects", "Projects")), e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_name_the_first_bad_one() {
        let ok = parse_lines(
            "https://a.example\n\n  https://b.example  \n",
            Origin::parse,
        )
        .unwrap();
        assert_eq!(ok.len(), 2);
        let e = parse_lines("https://a.example\nnot an origin", Origin::parse).unwrap_err();
        assert!(e.starts_with("line 2: not an origin:"), "{e}");
        assert!(parse_lines("", Origin::parse).unwrap().is_empty());
    }
}
