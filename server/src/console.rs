//! What stands in front of the console and the server functions: the session gate (anonymous
//! visitors are sent to the sign-in page, anonymous server-function calls get 401), a same-origin
//! check on every state-changing request (CSRF), a CSP with a per-response nonce for Leptos's
//! inline hydration script, and the security headers every response carries.

use app::api::{into_program, PREFIX, PUBLIC_ENDPOINTS, SESSION_COOKIE, SIGNED_OUT_PAGES};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use herald::auth::Access;
use rand::RngCore;

/// The nonce this response's CSP allows inline scripts with (read by the Leptos context).
#[derive(Debug, Clone)]
pub struct CspNonce(pub String);

/// The console's policy: its own scripts (the inline hydration script by `nonce`), its own wasm,
/// nothing from other origins. Set on console responses, with a fresh nonce each.
pub async fn content_security_policy(mut req: Request, next: Next) -> Response {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let nonce = URL_SAFE_NO_PAD.encode(bytes);
    req.extensions_mut().insert(CspNonce(nonce.clone()));
    let mut res = next.run(req).await;
    let csp = format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        res.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
    }
    res
}

/// The console's script, wasm and stylesheet (`site-pkg-dir`) keep their names from one release
/// to the next, so a browser must ask again each time (answered 304 while unchanged, from the
/// file's Last-Modified) rather than guess a freshness that would pair a new page with old wasm.
/// Release builds also ship `.br` and `.gz` copies, chosen by the request's Accept-Encoding.
/// Wraps the `/pkg` file service only.
pub async fn static_file_caching(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    if res.status().is_success() || res.status() == StatusCode::NOT_MODIFIED {
        let headers = res.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        // The answer depends on Accept-Encoding; a shared cache must keep the encodings apart.
        headers.append(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    res
}

/// Adds the security headers to every response (console, server functions, API, files); a
/// response without a policy of its own (the API's JSON) gets one that allows nothing.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let headers = res.headers_mut();
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(
            "default-src 'none'; frame-ancestors 'none'",
        ));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    res
}

/// Works out the client's address (see `herald::auth::client_ip`) and puts it in the request's
/// extensions for sign-in throttling.
pub async fn client_address(
    State(trusted): State<std::sync::Arc<Vec<herald::auth::client_ip::ProxyNet>>>,
    mut req: Request,
    next: Next,
) -> Response {
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    if let Some(peer) = peer {
        let forwarded = req
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok());
        let ip = herald::auth::client_ip::client_address(peer, forwarded, &trusted);
        req.extensions_mut().insert(herald::auth::ClientAddress(ip));
    }
    next.run(req).await
}

/// Resolves the session cookie to a user (stored in the request's extensions for the server
/// functions), refuses cross-site state changes, and keeps anonymous visitors to public paths.
pub async fn gate(State(access): State<Access>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    if is_static_file(&path) {
        // Public to everyone; no session to look up.
        return next.run(req).await;
    }
    if !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        && !same_origin(req.headers())
    {
        tracing::warn!(%path, "refused a cross-origin request");
        return (
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "application/json")],
            "\"Forbidden\"",
        )
            .into_response();
    }
    let token = herald::auth::cookie(
        req.headers()
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok()),
        SESSION_COOKIE,
    );
    let caller = match token {
        Some(t) => access.session(&t).await.unwrap_or_else(|e| {
            tracing::error!(error = %e, "session lookup failed");
            None
        }),
        None => None,
    };
    let signed_in = caller.is_some();
    if let Some(caller) = caller {
        if matches!(*req.method(), Method::GET | Method::HEAD) {
            let home = caller.home.as_ref().map(|h| h.as_str());
            if let Some(to) = into_program(&path, req.uri().query(), home) {
                return Redirect::to(&to).into_response();
            }
        }
        req.extensions_mut().insert(caller);
    }
    let server_fn = path.starts_with(&format!("{PREFIX}/"));
    // A plain HTML form (or the console's own in-place submit, which asks the same way) is
    // answered with a redirect to a page, never with JSON.
    let from_form = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if !signed_in && !is_public(&path) {
        if server_fn && from_form {
            return Redirect::to("/login").into_response();
        }
        if server_fn {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::CONTENT_TYPE, "application/json")],
                "\"Unauthorized\"",
            )
                .into_response();
        }
        let wanted = req
            .uri()
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
            .to_owned();
        let to = if wanted == "/" {
            "/login".to_owned()
        } else {
            format!("/login?next={}", urlencode(&wanted))
        };
        return Redirect::to(&to).into_response();
    }
    if signed_in && SIGNED_OUT_PAGES.contains(&path.as_str()) {
        return Redirect::to("/").into_response();
    }
    let mut res = next.run(req).await;
    if server_fn && from_form && res.headers().contains_key(header::LOCATION) {
        // A refused form comes back to its page with the error in the URL (server_fn's
        // `__err`); the function's own status (401, 422...) would keep the browser from going
        // there.
        *res.status_mut() = StatusCode::SEE_OTHER;
        return res;
    }
    if server_fn && res.status() == StatusCode::INTERNAL_SERVER_ERROR {
        return with_error_status(res).await;
    }
    res
}

/// Server functions fail with 500 unless told otherwise; give each `AppError` its own status
/// (422 validation, 404, 409, 401, 403...) so clients and logs can tell them apart.
async fn with_error_status(res: Response) -> Response {
    let (mut parts, body) = res.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 1 << 20).await else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "").into_response();
    };
    if let Ok(error) = serde_json::from_slice::<app::error::AppError>(&bytes) {
        if let Ok(status) = StatusCode::from_u16(error.status()) {
            parts.status = status;
        }
    }
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

/// The built site's files: the wasm bundle, its JS and CSS, and the public assets.
fn is_static_file(path: &str) -> bool {
    path.starts_with("/pkg/") || path == "/favicon.svg"
}

/// Paths an anonymous visitor may reach.
fn is_public(path: &str) -> bool {
    if is_static_file(path) || SIGNED_OUT_PAGES.contains(&path) {
        return true;
    }
    path.strip_prefix(PREFIX)
        .and_then(|rest| rest.strip_prefix('/'))
        .is_some_and(|endpoint| PUBLIC_ENDPOINTS.contains(&endpoint))
}

/// Whether the request's `Origin` (or, lacking it, `Referer`) names the host it was sent to.
/// Browsers send one of them on every cross-site POST; a request with neither is refused too.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let source = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|v| v.to_str().ok());
    let Some(url) = source.and_then(|s| url::Url::parse(s).ok()) else {
        return false;
    };
    let authority = match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        _ => return false,
    };
    authority.eq_ignore_ascii_case(host)
        || url
            .port_or_known_default()
            .is_some_and(|p| format!("{authority}:{p}").eq_ignore_ascii_case(host))
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn origin_must_match_host() {
        assert!(same_origin(&headers(&[
            ("host", "127.0.0.1:3000"),
            ("origin", "http://127.0.0.1:3000")
        ])));
        assert!(same_origin(&headers(&[
            ("host", "herald.example.com"),
            ("origin", "https://herald.example.com")
        ])));
        assert!(same_origin(&headers(&[
            ("host", "127.0.0.1:3000"),
            ("referer", "http://127.0.0.1:3000/webhooks/new")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "127.0.0.1:3000"),
            ("origin", "http://evil.example:3000")
        ])));
        assert!(!same_origin(&headers(&[("host", "127.0.0.1:3000")])));
        assert!(!same_origin(&headers(&[
            ("host", "127.0.0.1:3000"),
            ("origin", "null")
        ])));
    }

    #[test]
    fn pages_outside_a_program_lead_into_the_home_program() {
        let home = Some("prg_1");
        assert_eq!(into_program("/", None, home), Some("/p/prg_1".into()));
        assert_eq!(
            into_program("/audit-logs", Some("status=failure"), home),
            Some("/p/prg_1/audit-logs?status=failure".into())
        );
        assert_eq!(
            into_program("/webhooks/wh_1/edit", Some(""), home),
            Some("/p/prg_1/webhooks/wh_1/edit".into())
        );
        // The Webhooks list is the program's own page, whichever way it is asked for.
        assert_eq!(
            into_program("/webhooks", Some("name=points"), home),
            Some("/p/prg_1?name=points".into())
        );
        assert_eq!(
            into_program("/p/prg_2/webhooks", None, None),
            Some("/p/prg_2".into())
        );
        assert_eq!(
            into_program("/overview", None, home),
            Some("/p/prg_1/overview".into())
        );
        assert_eq!(into_program("/p/prg_2/webhooks/new", None, home), None);
        assert_eq!(into_program("/programs", None, home), None);
        assert_eq!(into_program("/p/prg_1", None, home), None);
        assert_eq!(into_program("/settingsx", None, home), None);
        assert_eq!(into_program("/", None, None), None);
    }

    /// The console's glue is generated by scripts/bindgen: it must be the version of the
    /// `wasm-bindgen` crate the console compiles against, or the browser gets glue that does not
    /// fit the wasm.
    #[test]
    fn the_bindgen_tool_follows_the_pinned_wasm_bindgen() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
        let read = |path: &str| std::fs::read_to_string(format!("{root}/{path}")).unwrap();
        let value = |text: &str, key: &str| -> String {
            text.lines()
                .find_map(|l| l.strip_prefix(key))
                .unwrap_or_else(|| panic!("no `{key}` line"))
                .trim_matches(|c| c == '"' || c == '=')
                .to_owned()
        };
        let pinned = value(&read("Cargo.toml"), "wasm-bindgen = ");
        let tool = read("scripts/bindgen/Cargo.toml");
        assert_eq!(value(&tool, "version = "), pinned);
        assert_eq!(value(&tool, "wasm-bindgen-cli-support = "), pinned);
    }

    #[test]
    fn public_paths() {
        assert!(is_public("/login"));
        assert!(is_public("/pkg/herald.wasm"));
        assert!(is_public("/sfn/login"));
        assert!(!is_public("/sfn/list_webhooks"));
        assert!(!is_public("/"));
        assert!(!is_public("/settings"));
    }
}
