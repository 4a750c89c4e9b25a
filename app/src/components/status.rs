//! Coloured status badges for webhooks and attempts (text first: colour is never the only cue).

use herald::domain::delivery::AttemptStatus;
use herald::domain::webhook::WebhookStatus;
use leptos::prelude::*;

#[component]
pub fn WebhookBadge(status: WebhookStatus) -> impl IntoView {
    let class = match status {
        WebhookStatus::Active => "badge badge-ok",
        WebhookStatus::Inactive => "badge badge-muted",
        WebhookStatus::Failed => "badge badge-bad",
    };
    view! { <span class=class>{status.label()}</span> }
}

#[component]
pub fn AttemptBadge(status: AttemptStatus) -> impl IntoView {
    let class = match status {
        AttemptStatus::Success => "badge badge-ok",
        AttemptStatus::Failure => "badge badge-bad",
        AttemptStatus::Sandboxed => "badge badge-muted",
    };
    view! { <span class=class>{status.label()}</span> }
}
