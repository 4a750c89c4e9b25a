//! Send Test: choose an event type (the first subscribed one by default), see the example payload
//! that will be posted, send it, and see the outcome in place, with a link to its audit-log row.

use crate::api::webhooks::send_test;
use herald::domain::catalog;
use herald::domain::views::{TestOutcome, WebhookView};
use leptos::prelude::*;

/// Send Test on a server-rendered page (a webhook's own): the panel as an island.
#[island]
pub fn SendTestIsland(program: String, webhook: WebhookView) -> impl IntoView {
    crate::components::program::provide_program_of(program);
    view! { <SendTestPanel webhook/> }
}

#[component]
pub fn SendTestPanel(webhook: WebhookView) -> impl IntoView {
    let id = StoredValue::new(webhook.id.clone());
    let choices: Vec<String> = if webhook.event_types.is_empty() {
        catalog::EVENT_NAMES
            .iter()
            .map(|s| (*s).to_owned())
            .collect()
    } else {
        webhook.event_types.clone()
    };
    let event_type = RwSignal::new(choices.first().cloned().unwrap_or_default());
    let example = move || {
        catalog::event_type(&event_type.get())
            .map(|e| serde_json::to_string_pretty(&e.example).unwrap_or_default())
            .unwrap_or_default()
    };
    let program = crate::components::program::use_program();
    let send = Action::new(move |t: &String| {
        let (program, id, t) = (program.get_untracked(), id.get_value(), t.clone());
        async move { send_test(program, id, t).await }
    });
    let select_id = format!("test-event-{}", webhook.id);
    let label_for = select_id.clone();
    view! {
        <section class="send-test" aria-label="Send Test">
            <div class="send-test-controls">
                <label class="field" for=label_for>
                    <span>"Event Type"</span>
                    <select
                        id=select_id
                        on:change=move |ev| event_type.set(event_target_value(&ev))
                    >
                        {choices
                            .into_iter()
                            .map(|t| {
                                let selected = event_type.get_untracked() == t;
                                view! { <option value=t.clone() selected=selected>{t.clone()}</option> }
                            })
                            .collect_view()}
                    </select>
                </label>
                <button
                    type="button"
                    class="button"
                    on:click=move |_| { send.dispatch(event_type.get_untracked()); }
                    disabled=move || send.pending().get()
                >
                    {move || if send.pending().get() { "Sending…" } else { "Send Test" }}
                </button>
            </div>
            <details>
                <summary>"Example payload (data)"</summary>
                <pre class="code">{example}</pre>
            </details>
            {move || send.value().get().map(|r| match r {
                Ok(outcome) => view! { <TestResult outcome/> }.into_any(),
                Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
            })}
        </section>
    }
}

#[component]
fn TestResult(outcome: TestOutcome) -> impl IntoView {
    let (class, headline) = match (outcome.sandboxed, outcome.success) {
        (true, _) => (
            "test-result muted-box",
            "Sandboxed: recorded, not sent".to_owned(),
        ),
        (false, true) => ("test-result ok-box", "Success".to_owned()),
        (false, false) => ("test-result bad-box", "Failure".to_owned()),
    };
    let code = outcome
        .status_code
        .map_or_else(|| "—".to_owned(), |c| c.to_string());
    let latency = outcome
        .latency_ms
        .map_or_else(|| "—".to_owned(), |l| format!("{l} ms"));
    let program = crate::components::program::use_program().get_untracked();
    let link = crate::api::program_path(&program, &format!("/audit-logs/{}", outcome.attempt_id));
    view! {
        <div class=class role="status">
            <strong>{headline}</strong>
            <dl class="facts">
                <dt>"Status Code"</dt><dd>{code}</dd>
                <dt>"Latency"</dt><dd>{latency}</dd>
                {outcome.error.map(|e| view! { <dt>"Error"</dt><dd class="error">{e}</dd> })}
            </dl>
            {outcome.response_body.filter(|b| !b.is_empty()).map(|b| view! {
                <details open>
                    <summary>"Response body"</summary>
                    <pre class="code">{b}</pre>
                </details>
            })}
            <a href=link>"View in Audit Logs"</a>
        </div>
    }
}
