//! Server functions for signing in and out, first-run setup, and the admin's Settings screens
//! (users, API keys) and the activity log.

use crate::error::AppError;
use herald::domain::account::{
    ActivityView, ApiKeyView, CurrentUser, NewApiKey, ProgramView, UserView,
};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// The signed-in user and the programs they can open, or `None` for an anonymous visitor.
#[server(prefix = "/sfn", endpoint = "signed_in_user", output = crate::api::JsonText)]
pub async fn signed_in_user() -> Result<Option<CurrentUser>, AppError> {
    use herald::domain::account::ProgramChoice;
    Ok(super::ssr::caller().map(|c| CurrentUser {
        email: c.email,
        install_admin: c.install_admin,
        home: c.home.map(|h| h.to_string()),
        programs: c
            .programs
            .into_iter()
            .map(|p| ProgramChoice {
                id: p.id.to_string(),
                name: p.name,
                role: p.role,
            })
            .collect(),
    }))
}

/// What the banner on every signed-in page says about the database.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Banner {
    pub text: String,
    /// Something has stopped working (writes refused, a background task stopped) rather than
    /// being about to (the disk nearly full).
    pub refusing: bool,
}

/// That a background task of Herald's has stopped (see `Engine::stopped_tasks`), why the
/// database is refusing Herald's writes right now (see `Engine::write_trouble`) or,
/// while it takes them, that its disk is nearly full (see `Engine::disk_warning`), as the
/// sentence the banner on every signed-in page shows; `None` while all is well. Signed-in users
/// only (anonymous callers are refused before it runs; rendered on the server for one, it
/// answers `None`).
#[server(prefix = "/sfn", endpoint = "database_notice", output = crate::api::JsonText)]
pub async fn database_notice() -> Result<Option<Banner>, AppError> {
    if super::ssr::caller().is_none() {
        return Ok(None);
    }
    let engine = super::ssr::engine()?;
    if let Some(stopped) = engine.stopped_tasks().first() {
        return Ok(Some(Banner {
            text: format!("{}.", stopped.describe()),
            refusing: true,
        }));
    }
    if let Some(t) = engine.write_trouble() {
        return Ok(Some(Banner {
            text: format!(
                "Herald cannot store new events: {} (since {} UTC). Senders are answered 503 and \
                 should send again; nothing already accepted is lost.",
                t.reason,
                t.since.format("%Y-%m-%d %H:%M")
            ),
            refusing: true,
        }));
    }
    Ok(engine.disk_warning().map(|text| Banner {
        text,
        refusing: false,
    }))
}

/// What the sign-in page needs to know before anyone signs in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignInState {
    /// No account exists yet: the first admin is created with the setup link.
    pub needs_setup: bool,
}

#[server(prefix = "/sfn", endpoint = "sign_in_status", output = crate::api::JsonText)]
pub async fn sign_in_status() -> Result<SignInState, AppError> {
    let access = super::ssr::access()?;
    Ok(SignInState {
        needs_setup: access.needs_setup().await?,
    })
}

/// Signs in and goes to `next` (a local path). Wrong e-mail and wrong password read the same.
#[server(prefix = "/sfn", endpoint = "login", output = crate::api::JsonText)]
pub async fn login(email: String, password: String, next: String) -> Result<(), AppError> {
    use super::ssr::{access, client_address, refuse, safe_next, set_session_cookie};
    use axum::http::StatusCode;
    let access = access()?;
    let session = match access.login(&email, &password, &client_address()).await {
        Ok(s) => s,
        Err(e @ herald::auth::AccessError::Throttled(_)) => {
            return Err(refuse(StatusCode::TOO_MANY_REQUESTS, e.into()))
        }
        Err(e @ herald::auth::AccessError::InvalidLogin) => {
            return Err(refuse(StatusCode::UNAUTHORIZED, e.into()))
        }
        Err(e) => return Err(e.into()),
    };
    let max_age = access.policy().absolute.num_seconds();
    set_session_cookie(Some((&session.token, max_age)));
    // Straight into the user's program (the browser may navigate without asking the server).
    let next = safe_next(&next);
    let (path, query) = next.split_once('?').unwrap_or((&next, ""));
    let home = session.caller.home.as_ref().map(|h| h.as_str());
    let to = super::into_program(path, Some(query), home).unwrap_or_else(|| next.clone());
    leptos_axum::redirect(&to);
    Ok(())
}

/// Ends this session and returns to the sign-in page.
#[server(prefix = "/sfn", endpoint = "logout", output = crate::api::JsonText)]
pub async fn logout() -> Result<(), AppError> {
    use super::ssr::{access, session_token, set_session_cookie, signed_in};
    signed_in()?;
    if let Some(token) = session_token() {
        access()?.logout(&token).await?;
    }
    set_session_cookie(None);
    leptos_axum::redirect("/login");
    Ok(())
}

/// Whether a setup link is still good (the setup page says so before asking for anything).
#[server(prefix = "/sfn", endpoint = "check_setup_token", output = crate::api::JsonText)]
pub async fn check_setup_token(token: String) -> Result<bool, AppError> {
    Ok(super::ssr::access()?.setup_token_valid(&token).await?)
}

/// Creates the first admin from a setup link and signs them in.
#[server(prefix = "/sfn", endpoint = "complete_setup", output = crate::api::JsonText)]
pub async fn complete_setup(
    token: String,
    email: String,
    password: String,
    confirm: String,
) -> Result<(), AppError> {
    use super::ssr::{access, set_session_cookie};
    if password != confirm {
        return Err(AppError::Validation {
            field: "confirm".into(),
            message: "The two passwords differ".into(),
        });
    }
    let access = access()?;
    let session = access.complete_setup(&token, &email, &password).await?;
    set_session_cookie(Some((
        &session.token,
        access.policy().absolute.num_seconds(),
    )));
    let home = session.caller.home.as_ref().map(|h| h.as_str());
    leptos_axum::redirect(&super::into_program("/", None, home).unwrap_or_else(|| "/".into()));
    Ok(())
}

// --- members ---------------------------------------------------------------------------------

/// The program's members with their roles.
#[server(prefix = "/sfn", endpoint = "list_users", output = crate::api::JsonText)]
pub async fn list_users(program: String) -> Result<Vec<UserView>, AppError> {
    let who = super::ssr::admin(&program)?;
    let members = super::ssr::access()?.list_members(&who.program).await?;
    Ok(members.iter().map(Into::into).collect())
}

/// Adds a member with `role`: a new account with `password`, or, when the e-mail already has an
/// account, that account joins the program (its password is left as it is).
#[server(prefix = "/sfn", endpoint = "create_user", output = crate::api::JsonText)]
pub async fn create_user(
    program: String,
    email: String,
    password: String,
    role: String,
) -> Result<UserView, AppError> {
    use herald::domain::account::Role;
    let who = super::ssr::admin(&program)?;
    let role = Role::parse(&role).ok_or_else(|| AppError::Validation {
        field: "role".into(),
        message: "Choose Admin or Viewer".into(),
    })?;
    let added = super::ssr::access()?
        .add_member(&who, &email, &password, role)
        .await?;
    Ok((&added.member).into())
}

/// Takes a member out of the program.
#[server(prefix = "/sfn", endpoint = "delete_user", output = crate::api::JsonText)]
pub async fn delete_user(program: String, id: String) -> Result<(), AppError> {
    let who = super::ssr::admin(&program)?;
    let id =
        herald::domain::ids::UserId::parse(&id).ok_or_else(|| AppError::NotFound("user".into()))?;
    Ok(super::ssr::access()?.remove_member(&who, &id).await?)
}

// --- programs (install admins) -------------------------------------------------------------------

/// Every program, archived ones too.
#[server(prefix = "/sfn", endpoint = "list_programs", output = crate::api::JsonText)]
pub async fn list_programs() -> Result<Vec<ProgramView>, AppError> {
    let admin = super::ssr::install_admin()?;
    let programs = super::ssr::access()?.list_programs(&admin).await?;
    Ok(programs
        .into_iter()
        .map(|p| ProgramView {
            id: p.id.to_string(),
            name: p.name,
            is_default: p.is_default,
            archived_at: p.archived_at,
            created_at: p.created_at,
        })
        .collect())
}

/// Creates a program and answers its id.
#[server(prefix = "/sfn", endpoint = "create_program", output = crate::api::JsonText)]
pub async fn create_program(name: String) -> Result<String, AppError> {
    let admin = super::ssr::install_admin()?;
    let created = super::ssr::access()?.create_program(&admin, &name).await?;
    Ok(crate::components::returned::returned(
        created.id.to_string(),
    ))
}

#[server(prefix = "/sfn", endpoint = "rename_program", output = crate::api::JsonText)]
pub async fn rename_program(id: String, name: String) -> Result<(), AppError> {
    let admin = super::ssr::install_admin()?;
    let id = super::ssr::program_id(&id)?;
    Ok(super::ssr::access()?
        .rename_program(&admin, &id, &name)
        .await?)
}

/// Archives (`archived = true`) or restores a program.
#[server(prefix = "/sfn", endpoint = "set_program_archived", output = crate::api::JsonText)]
pub async fn set_program_archived(id: String, archived: bool) -> Result<(), AppError> {
    let admin = super::ssr::install_admin()?;
    let id = super::ssr::program_id(&id)?;
    Ok(super::ssr::access()?
        .set_program_archived(&admin, &id, archived)
        .await?)
}

// --- API keys ------------------------------------------------------------------------------------

#[server(prefix = "/sfn", endpoint = "list_api_keys", output = crate::api::JsonText)]
pub async fn list_api_keys(program: String) -> Result<Vec<ApiKeyView>, AppError> {
    let who = super::ssr::admin(&program)?;
    let keys = super::ssr::access()?.list_api_keys(&who.program).await?;
    Ok(keys.iter().map(Into::into).collect())
}

/// Creates a key (`scope`: `ingest` or `admin`, the default); the answer carries its only plain
/// copy.
#[server(prefix = "/sfn", endpoint = "create_api_key", output = crate::api::JsonText)]
pub async fn create_api_key(
    program: String,
    name: String,
    scope: Option<String>,
) -> Result<NewApiKey, AppError> {
    let who = super::ssr::admin(&program)?;
    let scope = match scope.as_deref().filter(|s| !s.is_empty()) {
        None => herald::domain::account::KeyScope::Admin,
        Some(raw) => herald::domain::account::KeyScope::parse(raw)?,
    };
    let (key, summary) = super::ssr::access()?
        .create_api_key(&who, &name, scope)
        .await?;
    Ok(NewApiKey {
        key,
        view: (&summary).into(),
    })
}

#[server(prefix = "/sfn", endpoint = "revoke_api_key", output = crate::api::JsonText)]
pub async fn revoke_api_key(program: String, id: String) -> Result<(), AppError> {
    let who = super::ssr::admin(&program)?;
    let id = herald::domain::ids::ApiKeyId::parse(&id)
        .ok_or_else(|| AppError::NotFound("API key".into()))?;
    Ok(super::ssr::access()?.revoke_api_key(&who, &id).await?)
}

// --- activity ------------------------------------------------------------------------------------

/// The admin activity log, newest first, 50 at a time (`before`: the last id of the previous page).
#[server(prefix = "/sfn", endpoint = "list_activity", output = crate::api::JsonText)]
pub async fn list_activity(program: String, before: String) -> Result<Vec<ActivityView>, AppError> {
    let who = super::ssr::admin(&program)?;
    let before = herald::domain::ids::ActivityId::parse(&before);
    let rows = super::ssr::access()?
        .activity(&who.program, before.as_ref(), 50)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| ActivityView {
            id: r.id.to_string(),
            actor: r.actor,
            action: r.action,
            target: r.target,
            detail: r.detail,
            created_at: r.created_at,
        })
        .collect())
}
