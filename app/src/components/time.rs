//! Timestamps: rendered in UTC on the server (so hydration matches), then shown in the viewer's
//! local time with its zone once the page is interactive; the exact ISO instant stays in the
//! tooltip and the `datetime` attribute.

use chrono::{DateTime, Utc};
use leptos::prelude::*;

/// `2026-11-22 10:00 UTC` (then local time in the browser), or an em dash for "never".
#[component]
pub fn Timestamp(at: Option<DateTime<Utc>>) -> impl IntoView {
    let Some(t) = at else {
        return view! { <span class="muted">"—"</span> }.into_any();
    };
    let iso = t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let utc = t.format("%Y-%m-%d %H:%M UTC").to_string();
    let local = RwSignal::new(None::<String>);
    // Effects run only in the browser, after hydration: the first render always matches the server.
    Effect::new(move |_| local.set(local_text(t.timestamp_millis())));
    view! { <time datetime=iso.clone() title=iso>{move || local.get().unwrap_or_else(|| utc.clone())}</time> }
        .into_any()
}

/// The instant in the browser's locale and time zone, e.g. "Nov 22, 2026, 11:00 AM GMT+1".
#[cfg(feature = "hydrate")]
pub(crate) fn local_text(millis: i64) -> Option<String> {
    use wasm_bindgen::JsValue;
    let date = js_sys::Date::new(&JsValue::from_f64(millis as f64));
    let options = js_sys::Object::new();
    for (k, v) in [
        ("year", "numeric"),
        ("month", "short"),
        ("day", "numeric"),
        ("hour", "2-digit"),
        ("minute", "2-digit"),
        ("timeZoneName", "short"),
    ] {
        js_sys::Reflect::set(&options, &JsValue::from_str(k), &JsValue::from_str(v)).ok()?;
    }
    date.to_locale_string("default", &options).as_string()
}

#[cfg(not(feature = "hydrate"))]
pub(crate) fn local_text(_millis: i64) -> Option<String> {
    None
}
