//! Settings: what this Herald instance runs on.

use crate::api::settings::instance_info;
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn SettingsPage() -> impl IntoView {
    let info = Resource::new(|| (), |_| instance_info());
    view! {
        <Title text="Settings"/>
        <header class="page-head">
            <div>
                <h1>"Settings"</h1>
                <p class="lede">"How this Herald instance is set up."</p>
            </div>
        </header>
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match info.await {
                    Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                    Ok(i) => view! {
                        <section class="card">
                            <h2>"Instance"</h2>
                            <dl class="facts">
                                <dt>"Version"</dt><dd>{i.version}</dd>
                                <dt>"Database"</dt><dd>{i.database}</dd>
                                <dt>"Private webhook targets"</dt>
                                <dd>{if i.private_targets_allowed { "Allowed (development mode)" } else { "Refused (SSRF guard on)" }}</dd>
                            </dl>
                        </section>
                    }
                    .into_any(),
                }
            })}
        </Suspense>
    }
}
