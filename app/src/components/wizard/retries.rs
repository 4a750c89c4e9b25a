//! Step 3, Securities & Retries: retry policy, timeout, rate limit, custom headers and sandbox
//! mode.

use super::{FieldError, WizardState};
use herald::domain::headers::{HeaderDraft, MAX_HEADERS};
use herald::domain::settings::WebhookDraft;
use herald::domain::webhook::Schedule;
use leptos::prelude::*;

#[component]
pub fn RetriesStep(state: WizardState) -> impl IntoView {
    let draft = state.draft;
    view! {
        <h2>"Securities & Retries"</h2>
        <div class="form-grid">
            <label class="field">
                <span>"Backoff"</span>
                <select
                    name="backoff"
                    on:change=move |ev| draft.update(|d| d.retry.backoff = event_target_value(&ev))
                >
                    <option value="exponential" selected=move || draft.with(|d| d.retry.backoff == "exponential")>
                        "Exponential"
                    </option>
                    <option value="fixed" selected=move || draft.with(|d| d.retry.backoff == "fixed")>"Fixed"</option>
                    <option value="schedule" selected=move || draft.with(|d| d.retry.backoff == "schedule")>
                        "Schedule (a list of delays)"
                    </option>
                </select>
            </label>
            <Show
                when=move || draft.with(|d| d.retry.backoff == "schedule")
                fallback=move || view! {
                    <NumberField
                        label="Retry Attempts"
                        name="retry-attempts"
                        range=(0, 10)
                        error=state.error_for("retry.attempts")
                        value=Signal::derive(move || draft.with(|d| d.retry.attempts))
                        set=Callback::new(move |n| draft.update(|d| d.retry.attempts = n))
                    />
                    <NumberField
                        label="Retry Delay (seconds)"
                        name="retry-delay"
                        range=(1, 86_400)
                        error=state.error_for("retry.delay_seconds")
                        value=Signal::derive(move || draft.with(|d| d.retry.delay_seconds))
                        set=Callback::new(move |n| draft.update(|d| d.retry.delay_seconds = n))
                    />
                }
            >
                <ScheduleField state/>
            </Show>
            <NumberField
                label="Request Timeout (seconds)"
                name="timeout"
                range=(1, 60)
                error=state.error_for("retry.timeout_seconds")
                value=Signal::derive(move || draft.with(|d| d.retry.timeout_seconds))
                set=Callback::new(move |n| draft.update(|d| d.retry.timeout_seconds = n))
            />
            <label class="field">
                <span>"Rate Limit (per second, optional)"</span>
                <input
                    type="number"
                    name="rate-limit"
                    min="1"
                    max="10000"
                    aria-describedby="rate-error"
                    prop:value=move || draft.with(|d| d.rate_limit_per_second.map(|n| n.to_string()).unwrap_or_default())
                    on:input=move |ev| {
                        let raw = event_target_value(&ev);
                        draft.update(|d| {
                            d.rate_limit_per_second = (!raw.trim().is_empty()).then(|| raw.trim().parse().unwrap_or(-1))
                        })
                    }
                />
                <FieldError id="rate-error" message=state.error_for("rate_limit_per_second")/>
            </label>
            <label class="field wide">
                <span>"Ordering Key (optional)"</span>
                <input
                    type="text"
                    name="ordering-key"
                    placeholder="data.member_id"
                    aria-describedby="ordering-hint ordering-error"
                    prop:value=move || draft.with(|d| d.ordering_key.clone())
                    on:input=move |ev| draft.update(|d| d.ordering_key = event_target_value(&ev))
                />
                <span class="hint" id="ordering-hint">
                    "Events with the same value here are delivered one at a time, in the order they arrived: the next waits until the previous one succeeded or was dead-lettered. Others are not held up."
                </span>
                <FieldError id="ordering-error" message=state.error_for("ordering_key")/>
            </label>
        </div>
        <HeadersField state/>
        <label class="checkbox">
            <input
                type="checkbox"
                name="sandbox"
                prop:checked=move || draft.with(|d| d.sandbox)
                on:change=move |ev| draft.update(|d| d.sandbox = event_target_checked(&ev))
            />
            <span>"Sandbox mode "<span class="muted">"(record the requests that would be sent, send nothing)"</span></span>
        </label>
    }
}

/// The retry delays as people write them ("0, 5m, 30m, 2h, 24h"), kept as typed; what does not
/// read as a list of delays leaves the schedule empty, which validation refuses by name.
#[component]
fn ScheduleField(state: WizardState) -> impl IntoView {
    let draft = state.draft;
    let text = RwSignal::new(draft.with_untracked(|d| Schedule::format_list(&d.retry.schedule)));
    view! {
        <label class="field wide">
            <span>"Retry Delays"</span>
            <input
                type="text"
                name="retry-schedule"
                placeholder="0, 5m, 30m, 2h, 24h"
                aria-describedby="retry-schedule-hint retry-schedule-error"
                prop:value=move || text.get()
                on:input=move |ev| {
                    let raw = event_target_value(&ev);
                    let delays = Schedule::parse_list(&raw).unwrap_or_default();
                    text.set(raw);
                    draft.update(|d| d.retry.schedule = delays);
                }
            />
            <span class="hint" id="retry-schedule-hint">
                "The wait before each retry after a failure: seconds, or 30s, 5m, 2h, 1d. 0 retries at once."
            </span>
            <FieldError id="retry-schedule-error" message=state.error_for("retry.schedule")/>
        </label>
    }
}

/// A labelled number input bound to one draft field. Whatever does not parse becomes -1, which
/// validation then refuses with the field's range.
#[component]
fn NumberField(
    label: &'static str,
    name: &'static str,
    range: (i64, i64),
    error: Signal<Option<String>>,
    value: Signal<i64>,
    set: Callback<i64>,
) -> impl IntoView {
    let error_id = format!("{name}-error");
    view! {
        <label class="field">
            <span>{label}</span>
            <input
                type="number"
                name=name
                min=range.0
                max=range.1
                aria-describedby=error_id.clone()
                prop:value=move || value.get().to_string()
                on:input=move |ev| set.run(event_target_value(&ev).trim().parse().unwrap_or(-1))
            />
            <FieldError id=error_id message=error/>
        </label>
    }
}

/// Custom headers as rows of name, value and a Secret switch. A secret value is typed like a
/// password; when editing, leaving it empty keeps the stored value.
#[component]
fn HeadersField(state: WizardState) -> impl IntoView {
    let draft = state.draft;
    let editing = state.editing.is_some();
    let count = Memo::new(move |_| draft.with(|d| d.headers.len()));
    view! {
        <fieldset class="headers">
            <legend>"Custom Headers "<span class="muted">"(optional, sent with every request)"</span></legend>
            {move || {
                (0..count.get())
                    .map(|i| view! { <HeaderRow draft i editing/> })
                    .collect_view()
            }}
            <button
                type="button"
                class="button secondary"
                name="add-header"
                disabled=move || { count.get() >= MAX_HEADERS }
                on:click=move |_| {
                    draft.update(|d| {
                        if d.headers.len() < MAX_HEADERS {
                            d.headers.push(HeaderDraft::default())
                        }
                    })
                }
            >
                "Add header"
            </button>
            <FieldError id="headers-error" message=state.error_for("headers")/>
        </fieldset>
    }
}

#[component]
fn HeaderRow(draft: RwSignal<WebhookDraft>, i: usize, editing: bool) -> impl IntoView {
    let get = move |f: fn(&HeaderDraft) -> String| {
        draft.with(|d| d.headers.get(i).map(f).unwrap_or_default())
    };
    let set = move |f: fn(&mut HeaderDraft, String), v: String| {
        draft.update(|d| {
            if let Some(h) = d.headers.get_mut(i) {
                f(h, v)
            }
        })
    };
    let secret = move || draft.with(|d| d.headers.get(i).is_some_and(|h| h.secret));
    view! {
        <div class="header-row">
            <input
                type="text"
                name=format!("header-name-{i}")
                aria-label=format!("Header {} name", i + 1)
                placeholder="X-Tenant"
                aria-describedby="headers-error"
                prop:value=move || get(|h| h.name.clone())
                on:input=move |ev| set(|h, v| h.name = v, event_target_value(&ev))
            />
            <input
                type=move || if secret() { "password" } else { "text" }
                name=format!("header-value-{i}")
                aria-label=format!("Header {} value", i + 1)
                autocomplete="off"
                placeholder=move || if secret() && editing { "(unchanged)" } else { "value" }
                aria-describedby="headers-error"
                prop:value=move || get(|h| h.value.clone())
                on:input=move |ev| set(|h, v| h.value = v, event_target_value(&ev))
            />
            <label class="checkbox">
                <input
                    type="checkbox"
                    name=format!("header-secret-{i}")
                    prop:checked=secret
                    on:change=move |ev| {
                        let on = event_target_checked(&ev);
                        draft.update(|d| {
                            if let Some(h) = d.headers.get_mut(i) {
                                h.secret = on
                            }
                        })
                    }
                />
                <span>"Secret"</span>
            </label>
            <button
                type="button"
                class="button secondary"
                name=format!("remove-header-{i}")
                on:click=move |_| {
                    draft.update(|d| {
                        if i < d.headers.len() {
                            d.headers.remove(i);
                        }
                    })
                }
            >
                "Remove"
            </button>
        </div>
    }
}
