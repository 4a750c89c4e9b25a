//! Timestamps: rendered in UTC on the server (so hydration matches), with the exact ISO instant in
//! the tooltip and the `datetime` attribute.

use chrono::{DateTime, Utc};
use leptos::prelude::*;

/// `2026-11-22 10:00 UTC`, or an em dash for "never".
#[component]
pub fn Timestamp(at: Option<DateTime<Utc>>) -> impl IntoView {
    match at {
        None => view! { <span class="muted">"—"</span> }.into_any(),
        Some(t) => {
            let iso = t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            let text = t.format("%Y-%m-%d %H:%M UTC").to_string();
            view! { <time datetime=iso.clone() title=iso>{text}</time> }.into_any()
        }
    }
}
