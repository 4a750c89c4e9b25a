//! Code that checks Herald's requests, one panel per language (see `herald::domain::snippets`;
//! the same text the tests run against real deliveries).

use crate::components::copy::CopyButton;
use herald::domain::snippets::{snippet, Language};
use herald::domain::webhook::AuthKind;
use leptos::prelude::*;

/// How a receiver checks requests of `kind`, in Python (open), Node.js, Go and Rust. `header`
/// names an `hmac` webhook's header.
#[component]
pub fn VerifySnippets(
    kind: AuthKind,
    #[prop(default = None)] header: Option<String>,
) -> impl IntoView {
    Language::ALL
        .iter()
        .enumerate()
        .filter_map(|(i, lang)| {
            let code = snippet(kind, *lang, header.as_deref())?;
            Some(view! {
                <details class="snippet" open=i == 0>
                    <summary>{lang.label()}</summary>
                    <p class="hint">{lang.needs(kind)}</p>
                    <pre class="code"><code>{code.clone()}</code></pre>
                    <CopyButton text=code/>
                </details>
            })
        })
        .collect_view()
}

/// The name of an authentication method as the snippet sections title it.
pub fn method_title(kind: AuthKind) -> &'static str {
    match kind {
        AuthKind::Signature => "Standard Webhooks signature (webhook-signature header)",
        AuthKind::Jwt => "JWT (Authorization: Bearer)",
        AuthKind::Basic => "Basic Auth (Authorization: Basic)",
        AuthKind::Hmac => "HMAC of the body in a header of your choice",
        AuthKind::None => "No authentication",
    }
}
