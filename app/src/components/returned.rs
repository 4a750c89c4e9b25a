//! A server function's result after a plain form post.
//!
//! A form posted without the wasm's help (before it loads, or any form outside an island) gets a
//! redirect back to the page it came from, and the page is rendered again on the server. A failure
//! already travels in that URL (server_fn's `__path` and `__err`, which `ServerAction` reads). A
//! success did not, so "Alert settings saved." or a replay's message was lost. `returned` puts the
//! successful value in the URL the same way (`__done`, the function's path, and `__ok`, its JSON),
//! and `form_action` gives the page an action already holding it, so the page shows the outcome
//! with the code that shows it after an in-page submit. Values that hold secrets (an API key, an
//! export document) must not come this way: those forms are islands.

use leptos::prelude::*;
use leptos::server_fn::error::FromServerFnError;
use leptos::server_fn::ServerFn;

/// The query parameters that carry a result (ours, then server_fn's for errors).
pub const RESULT_PARAMS: [&str; 4] = ["__done", "__ok", "__path", "__err"];

/// `url` without any earlier result, then with `pairs` (already encoded) appended.
pub fn with_result(url: &str, pairs: &[(&str, String)]) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut kept: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter(|p| !RESULT_PARAMS.contains(&p.split('=').next().unwrap_or_default()))
        .map(str::to_owned)
        .collect();
    kept.extend(
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", crate::pages::audit_logs::urlencode(v))),
    );
    if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    }
}

/// Hands `value` back, and when the request is a plain form post, sends the browser back to the
/// page it came from with `value` in the URL (see the module's comment). Never for secrets.
#[cfg(feature = "ssr")]
pub fn returned<T: serde::Serialize>(value: T) -> T {
    use axum::http::header::{ACCEPT, REFERER};
    use axum::http::request::Parts;
    let Some(parts) = use_context::<Parts>() else {
        return value;
    };
    let header = |name| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let from_form = header(ACCEPT).is_some_and(|a| a.contains("text/html"));
    if let (true, Some(referer), Ok(json)) =
        (from_form, header(REFERER), serde_json::to_string(&value))
    {
        let url = with_result(
            referer,
            &[("__done", parts.uri.path().to_owned()), ("__ok", json)],
        );
        leptos_axum::redirect(&url);
    }
    value
}

/// A server action for a form whose outcome the page shows: on the server, after a plain form post
/// of this function, it already holds the value the function returned (from the URL).
#[track_caller]
pub fn form_action<S>() -> ServerAction<S>
where
    S: ServerFn + Clone + Send + Sync + 'static,
    S::Output: serde::de::DeserializeOwned + Send + Sync + 'static,
    S::Error: FromServerFnError + Send + Sync + 'static,
{
    let action = ServerAction::<S>::new();
    #[cfg(feature = "ssr")]
    {
        let query = leptos_router::hooks::use_query_map();
        // A failure's `__err` is always newer: a success clears it from the URL, a failure does not
        // clear an earlier success.
        let value = query.with_untracked(|q| {
            (q.get("__done").as_deref() == Some(S::PATH) && q.get("__err").is_none())
                .then(|| q.get("__ok"))
                .flatten()
                .and_then(|json| serde_json::from_str::<S::Output>(&json).ok())
        });
        if let Some(value) = value {
            action.value().set(Some(Ok(value)));
        }
    }
    action
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_replaces_any_earlier_one_and_keeps_the_rest() {
        assert_eq!(
            with_result(
                "http://h/p/x/deliveries?status=failed&__done=%2Fsfn%2Fa&__ok=1&__path=a&__err=b",
                &[
                    ("__done", "/sfn/replay".into()),
                    ("__ok", "\"Replayed\"".into())
                ]
            ),
            "http://h/p/x/deliveries?status=failed&__done=%2Fsfn%2Freplay&__ok=%22Replayed%22"
        );
        assert_eq!(with_result("/p/x?__ok=1", &[]), "/p/x");
        assert_eq!(with_result("/p/x", &[("a", "b c".into())]), "/p/x?a=b%20c");
    }
}
