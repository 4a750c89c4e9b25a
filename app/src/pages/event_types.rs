//! The event catalog: what the loyalty platform can send, with each event's payload example and
//! the JSON schema of its `data`, and (per program, off by default) whether ingest checks `data`
//! against that schema.

use crate::api::settings::{list_validated_event_types, SetEventTypeValidation};
use crate::components::program::{use_program, ProgramField};
use crate::components::session::AdminOnly;
use crate::components::snippets::{method_title, VerifySnippets};
use herald::domain::catalog::{self, FEEDS};
use herald::domain::webhook::AuthKind;
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn EventTypesPage() -> impl IntoView {
    let all = catalog::catalog();
    let program = use_program();
    let toggle = ServerAction::<SetEventTypeValidation>::new();
    let validated = Resource::new(move || program.get(), list_validated_event_types);
    let is_on = move |name: &'static str| {
        validated
            .get()
            .and_then(Result::ok)
            .is_some_and(|v| v.iter().any(|t| t == name))
    };
    view! {
        <Title text="Event Types"/>
        <header class="page-head">
            <div>
                <h1>"Event Types"</h1>
                <p class="lede">"Every event Herald accepts, grouped by feed. Subscribe webhooks to the ones they need. Admins can have Herald refuse events whose data breaks the type's schema (off by default)."</p>
            </div>
        </header>
        <section class="card" aria-labelledby="verify-title">
            <h2 id="verify-title">"Verify Herald's requests"</h2>
            <p class="muted">"Check every request before trusting it. Pick the method your webhook uses; each snippet is tested against real deliveries. Pass the raw body, byte for byte, not re-serialised JSON."</p>
            {[AuthKind::Signature, AuthKind::Jwt, AuthKind::Basic, AuthKind::Hmac]
                .into_iter()
                .map(|kind| view! {
                    <details class="method">
                        <summary>{method_title(kind)}</summary>
                        <VerifySnippets kind/>
                    </details>
                })
                .collect_view()}
        </section>
        {FEEDS
            .iter()
            .map(|feed| {
                let events: Vec<_> = all.iter().filter(|e| e.feed == feed.key).cloned().collect();
                view! {
                    <section class="card">
                        <h2>{feed.label}</h2>
                        <ul class="event-list">
                            {events
                                .into_iter()
                                .map(|e| {
                                    let example = serde_json::to_string_pretty(&e.example).unwrap_or_default();
                                    let schema = serde_json::to_string_pretty(&e.schema).unwrap_or_default();
                                    view! {
                                        <li>
                                            <details>
                                                <summary>
                                                    <code>{e.name}</code>
                                                    <span class="muted">{e.description}</span>
                                                    <Transition>
                                                        {move || is_on(e.name).then(|| view! { <span class="badge badge-ok">"Validated at ingest"</span> })}
                                                    </Transition>
                                                </summary>
                                                <AdminOnly>
                                                    <ActionForm action=toggle attr:class="inline validation-toggle">
                                                        <ProgramField/>
                                                        <input type="hidden" name="event_type" value=e.name/>
                                                        <Transition>
                                                            <input type="hidden" name="enabled" value=move || (!is_on(e.name)).to_string()/>
                                                            <button type="submit" class="button secondary">
                                                                {move || if is_on(e.name) { format!("Stop validating {}", e.name) } else { format!("Validate {} data at ingest", e.name) }}
                                                            </button>
                                                        </Transition>
                                                    </ActionForm>
                                                </AdminOnly>
                                                {move || toggle.value().get().and_then(Result::err).map(|e| view! { <p class="error" role="alert">{e.to_string()}</p> })}
                                                <div class="event-docs">
                                                    <div>
                                                        <h3>"Example "<code>"data"</code></h3>
                                                        <pre class="code">{example}</pre>
                                                    </div>
                                                    <div>
                                                        <h3>"JSON schema of "<code>"data"</code></h3>
                                                        <pre class="code">{schema}</pre>
                                                    </div>
                                                </div>
                                            </details>
                                        </li>
                                    }
                                })
                                .collect_view()}
                        </ul>
                    </section>
                }
            })
            .collect_view()}
    }
}
