//! Server functions, by area. All live under `/sfn` (apart from the REST API's `/api/v1`), take
//! their engine from the request context, and return `AppError`.
//!
//! Every function decides who may call it first thing, through `ssr::viewer()` or `ssr::admin()`
//! (the signed-in user comes from the session the server's gate resolved). Only the functions in
//! `PUBLIC_ENDPOINTS` answer anonymous callers.

pub mod account;
pub mod alerts;
pub mod audit;
pub mod deliveries;
pub mod settings;
pub mod transfer;
pub mod webhooks;

/// Prefix of every server function's URL.
pub const PREFIX: &str = "/sfn";

/// Server functions an anonymous caller may reach (signing in and first-run setup).
pub const PUBLIC_ENDPOINTS: &[&str] = &[
    "signed_in_user",
    "sign_in_status",
    "login",
    "check_setup_token",
    "complete_setup",
];

/// The pages anonymous visitors use (a signed-in visitor is sent on to the app).
pub const SIGNED_OUT_PAGES: &[&str] = &["/login", "/setup"];

/// Console pages that belong to a program: `/p/{program}` followed by one of these (or nothing,
/// for the Webhooks list, which `/webhooks` also opens). Visited without the prefix (old
/// bookmarks), they redirect into the user's own program.
pub const PROGRAM_PAGES: &[&str] = &[
    "/webhooks",
    "/overview",
    "/audit-logs",
    "/deliveries",
    "/event-types",
    "/settings",
    "/activity",
];

/// A console path inside `program`: `rest` is empty (the Webhooks list) or starts with `/`.
pub fn program_path(program: &str, rest: &str) -> String {
    format!("/p/{program}{rest}")
}

/// Where a signed-in visitor of a page outside any program goes: `/` to their `home` program,
/// and a program page without its prefix (an old bookmark) to the same page of their home
/// program. A program's `/webhooks` is its Webhooks list, at `/p/{program}` itself. `None` for
/// every other path (or, outside a program, without a home program).
pub fn into_program(path: &str, query: Option<&str>, home: Option<&str>) -> Option<String> {
    let query = query
        .filter(|q| !q.is_empty())
        .map(|q| format!("?{}", q.trim_start_matches('?')))
        .unwrap_or_default();
    if let Some(program) = path
        .strip_prefix("/p/")
        .and_then(|p| p.strip_suffix("/webhooks"))
        .filter(|p| !p.is_empty() && !p.contains('/'))
    {
        return Some(program_path(program, &query));
    }
    let home = home?;
    let legacy = PROGRAM_PAGES
        .iter()
        .any(|page| path == *page || path.starts_with(&format!("{page}/")));
    if path != "/" && !legacy {
        return None;
    }
    let rest = if path == "/" || path == "/webhooks" {
        ""
    } else {
        path
    };
    Some(program_path(home, &format!("{rest}{query}")))
}

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "herald_session";

#[cfg(feature = "ssr")]
pub(crate) mod ssr {
    use crate::error::AppError;
    use axum::http::request::Parts;
    use axum::http::StatusCode;
    use herald::auth::{Access, Actor, Caller, InstallAdmin};
    use herald::delivery::Engine;
    use leptos::prelude::use_context;
    use leptos_axum::ResponseOptions;

    /// The engine the server put in the request context.
    pub fn engine() -> Result<Engine, AppError> {
        use_context::<Engine>().ok_or_else(|| {
            tracing::error!("no engine in the server-function context");
            AppError::Internal
        })
    }

    pub fn access() -> Result<Access, AppError> {
        use_context::<Access>().ok_or_else(|| {
            tracing::error!("no access service in the server-function context");
            AppError::Internal
        })
    }

    /// The signed-in user of this request, if any (put there by the server's session gate).
    pub fn caller() -> Option<Caller> {
        use_context::<Parts>().and_then(|p| p.extensions.get::<Caller>().cloned())
    }

    /// Any signed-in user, whatever program.
    pub fn signed_in() -> Result<Caller, AppError> {
        caller().ok_or_else(|| refuse(StatusCode::UNAUTHORIZED, AppError::Unauthorized))
    }

    /// A signed-in install admin (programs).
    pub fn install_admin() -> Result<InstallAdmin, AppError> {
        signed_in()?
            .install_admin()
            .map_err(|_| refuse(StatusCode::FORBIDDEN, AppError::Forbidden))
    }

    /// Parses a program id from a form or URL; a malformed one is simply not found.
    pub fn program_id(raw: &str) -> Result<herald::domain::ids::ProgramId, AppError> {
        herald::domain::ids::ProgramId::parse(raw)
            .ok_or_else(|| AppError::NotFound("program".into()))
    }

    /// Answers with `status` and returns `error` (for `?`).
    pub fn refuse(status: StatusCode, error: AppError) -> AppError {
        if let Some(res) = use_context::<ResponseOptions>() {
            res.set_status(status);
        }
        error
    }

    /// A signed-in member of `program` (admins and viewers: reading). Someone who cannot open
    /// the program is refused exactly as a viewer asking for an admin's function is.
    pub fn viewer(program: &str) -> Result<Actor, AppError> {
        let caller = signed_in()?;
        herald::domain::ids::ProgramId::parse(program)
            .and_then(|id| caller.actor(&id).ok())
            .ok_or_else(|| refuse(StatusCode::FORBIDDEN, AppError::Forbidden))
    }

    /// A signed-in admin of `program` (anything that changes state, tests, replays or shows
    /// secrets).
    pub fn admin(program: &str) -> Result<Actor, AppError> {
        let who = viewer(program)?;
        if who.role.can_manage() {
            Ok(who)
        } else {
            Err(refuse(StatusCode::FORBIDDEN, AppError::Forbidden))
        }
    }

    /// Parses a webhook id from a form or URL; a malformed one is simply not found.
    pub fn webhook_id(raw: &str) -> Result<herald::domain::ids::WebhookId, AppError> {
        herald::domain::ids::WebhookId::parse(raw)
            .ok_or_else(|| AppError::NotFound("webhook".into()))
    }

    /// The client's address (for sign-in throttling).
    pub fn client_address() -> String {
        use_context::<Parts>()
            .and_then(|p| {
                p.extensions
                    .get::<herald::auth::ClientAddress>()
                    .map(|c| c.0.to_string())
            })
            .unwrap_or_else(|| "unknown".into())
    }

    /// Whether the browser reached us over HTTPS (directly or through a proxy that says so).
    fn over_https() -> bool {
        use_context::<Parts>().is_some_and(|p| {
            let header = |name: &str| {
                p.headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_ascii_lowercase()
            };
            header("x-forwarded-proto") == "https" || header("origin").starts_with("https://")
        })
    }

    /// Sets (or, with `None`, clears) the session cookie on the response.
    pub fn set_session_cookie(token: Option<(&str, i64)>) {
        let (value, max_age) = token.unwrap_or(("", 0));
        let secure = if over_https() { "; Secure" } else { "" };
        let cookie = format!(
            "{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}",
            super::SESSION_COOKIE
        );
        if let (Some(res), Ok(v)) = (
            use_context::<ResponseOptions>(),
            axum::http::HeaderValue::from_str(&cookie),
        ) {
            res.append_header(axum::http::header::SET_COOKIE, v);
        }
    }

    /// The session token the request carried.
    pub fn session_token() -> Option<String> {
        let parts = use_context::<Parts>()?;
        herald::auth::cookie(
            parts
                .headers
                .get_all(axum::http::header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok()),
            super::SESSION_COOKIE,
        )
    }

    /// A local path to go to after signing in (never another site).
    pub fn safe_next(next: &str) -> String {
        if next.starts_with('/') && !next.starts_with("//") && !next.starts_with("/\\") {
            next.to_owned()
        } else {
            "/".to_owned()
        }
    }
}

/// The server functions' result encoding: JSON, as `server_fn::codec::Json`, read back with
/// `serde_json::from_str` like the results the server renders into the page for hydration, so the
/// browser's wasm holds one JSON reader per result type instead of two (one for bytes, one for
/// text); the wire is the same `application/json`.
pub type JsonText = server_fn::codec::Post<JsonTextEncoding>;

/// JSON encoded with `serde_json::to_vec` and decoded from text (see `JsonText`).
pub struct JsonTextEncoding;

impl server_fn::ContentType for JsonTextEncoding {
    const CONTENT_TYPE: &'static str = "application/json";
}

impl server_fn::FormatType for JsonTextEncoding {
    const FORMAT_TYPE: server_fn::Format = server_fn::Format::Text;
}

impl<T: serde::Serialize> server_fn::Encodes<T> for JsonTextEncoding {
    type Error = serde_json::Error;

    fn encode(output: &T) -> Result<server_fn::Bytes, Self::Error> {
        serde_json::to_vec(output).map(server_fn::Bytes::from)
    }
}

impl<T: serde::de::DeserializeOwned> server_fn::Decodes<T> for JsonTextEncoding {
    type Error = serde_json::Error;

    fn decode(bytes: server_fn::Bytes) -> Result<T, Self::Error> {
        let text = std::str::from_utf8(&bytes).map_err(serde::de::Error::custom)?;
        serde_json::from_str(text)
    }
}
