//! Step 2, Event Subscriptions: pick a feed, tick its events (or all of them), and optionally add
//! a payload filter.

use super::{FieldError, WizardState};
use herald::domain::catalog::{self, FEEDS};
use leptos::prelude::*;

#[component]
pub fn EventsStep(state: WizardState) -> impl IntoView {
    let draft = state.draft;
    let feed = RwSignal::new(FEEDS[0].key);
    let filter_text = RwSignal::new(draft.with_untracked(|d| {
        if d.filter.is_null() || d.filter.as_array().is_some_and(Vec::is_empty) {
            String::new()
        } else {
            serde_json::to_string_pretty(&d.filter).unwrap_or_default()
        }
    }));
    let filter_error = RwSignal::new(None::<String>);
    let on_filter = move |ev| {
        let text = event_target_value(&ev);
        filter_text.set(text.clone());
        if text.trim().is_empty() {
            filter_error.set(None);
            draft.update(|d| d.filter = serde_json::Value::Null);
            return;
        }
        match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(v) => {
                filter_error.set(None);
                draft.update(|d| d.filter = v);
            }
            Err(e) => {
                filter_error.set(Some(format!("Filter is not valid JSON: {e}")));
                // An unparsable filter must not pass Next: keep something the validator refuses.
                draft.update(|d| d.filter = serde_json::Value::String(text));
            }
        }
    };
    let server_filter_error = state.error_for("filter");
    let filter_message =
        Signal::derive(move || filter_error.get().or_else(|| server_filter_error.get()));
    let selected =
        move |name: &'static str| draft.with(|d| d.event_types.iter().any(|t| t == name));
    let toggle = move |name: &'static str, on: bool| {
        draft.update(|d| {
            d.event_types.retain(|t| t != name);
            if on {
                d.event_types.push(name.to_owned());
            }
        })
    };
    let all_in_feed = move || catalog::events_of_feed(feed.get()).all(selected);
    view! {
        <h2>"Event Subscriptions"</h2>
        <div class="form-grid">
            <label class="field">
                <span>"Feed Type"</span>
                <select
                    name="feed"
                    on:change=move |ev| {
                        let v = event_target_value(&ev);
                        if let Some(f) = FEEDS.iter().find(|f| f.key == v) {
                            feed.set(f.key);
                        }
                    }
                >
                    {FEEDS
                        .iter()
                        .map(|f| view! { <option value=f.key selected=move || feed.get() == f.key>{f.label}</option> })
                        .collect_view()}
                </select>
            </label>
            <p class="hint">
                {move || {
                    let n = draft.with(|d| d.event_types.len());
                    format!("{n} event{} selected across all feeds", if n == 1 { "" } else { "s" })
                }}
            </p>
        </div>
        <fieldset class="events" aria-describedby="event-types-error">
            <legend>{move || format!("{} events", FEEDS.iter().find(|f| f.key == feed.get()).map_or("", |f| f.label))}</legend>
            <label class="checkbox select-all">
                <input
                    type="checkbox"
                    prop:checked=all_in_feed
                    on:change=move |ev| {
                        let on = event_target_checked(&ev);
                        for name in catalog::events_of_feed(feed.get_untracked()) {
                            toggle(name, on);
                        }
                    }
                />
                <span>"Select all"</span>
            </label>
            {move || {
                catalog::events_of_feed(feed.get())
                    .map(|name| {
                        let description = catalog::event_type(name).map(|e| e.description).unwrap_or_default();
                        view! {
                            <label class="checkbox">
                                <input
                                    type="checkbox"
                                    value=name
                                    prop:checked=move || selected(name)
                                    on:change=move |ev| toggle(name, event_target_checked(&ev))
                                />
                                <span><code>{name}</code>" "<span class="muted">{description}</span></span>
                            </label>
                        }
                    })
                    .collect_view()
            }}
        </fieldset>
        <FieldError id="event-types-error" message=state.error_for("event_types")/>
        <label class="field wide">
            <span>"Payload filter (optional)"</span>
            <textarea
                name="filter"
                rows="4"
                class="mono"
                aria-describedby="filter-error"
                placeholder=r#"[{"path": "data.tier", "op": "eq", "value": "Gold"}]"#
                prop:value=move || filter_text.get()
                on:input=on_filter
            ></textarea>
            <FieldError id="filter-error" message=filter_message/>
            <span class="hint">
                "Conditions that must all hold; op is one of eq, ne, gt, gte, lt, lte, in, contains, exists."
            </span>
        </label>
    }
}
