//! The event catalog: what the loyalty platform can send, with each event's payload example and
//! the JSON schema of its `data`.

use herald::domain::catalog::{self, FEEDS};
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn EventTypesPage() -> impl IntoView {
    let all = catalog::catalog();
    view! {
        <Title text="Event Types"/>
        <header class="page-head">
            <div>
                <h1>"Event Types"</h1>
                <p class="lede">"Every event Herald accepts, grouped by feed. Subscribe webhooks to the ones they need."</p>
            </div>
        </header>
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
                                                </summary>
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
