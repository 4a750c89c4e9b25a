//! A webhook's page (`/webhooks/:id`): its figures (success rate, attempts, retries, latency),
//! last success and failure, its latest attempts, Send Test, Edit and the Enabled switch.

use crate::api::program_path;
use crate::api::webhooks::{load_webhook_details, SetWebhookEnabled};
use crate::components::program::use_program;
use crate::components::send_test::SendTestPanel;
use crate::components::session::AdminOnly;
use crate::components::status::{AttemptBadge, WebhookBadge};
use crate::components::time::Timestamp;
use crate::components::toggle::EnabledToggle;
use herald::domain::views::WebhookDetails;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

#[component]
pub fn WebhookPage() -> impl IntoView {
    let params = use_params_map();
    let toggle = ServerAction::<SetWebhookEnabled>::new();
    let program = use_program();
    let details = Resource::new(
        move || {
            (
                program.get(),
                params.with(|p| p.get("id").unwrap_or_default()),
                toggle.version().get(),
            )
        },
        |(program, id, _)| load_webhook_details(program, id),
    );
    view! {
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match details.await {
                    Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                    Ok(d) => view! { <Details d toggle/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn Details(d: WebhookDetails, toggle: ServerAction<SetWebhookEnabled>) -> impl IntoView {
    let w = d.webhook.clone();
    let rate = w
        .success_rate
        .map_or_else(|| "—".to_owned(), |r| format!("{r:.1}%"));
    let avg = d
        .avg_latency_ms
        .map_or_else(|| "—".to_owned(), |v| format!("{v:.0} ms"));
    let p95 = d
        .p95_latency_ms
        .map_or_else(|| "—".to_owned(), |v| format!("{v} ms"));
    let lag = d.avg_lag_ms.map_or_else(|| "—".to_owned(), format_lag);
    let program = use_program().get_untracked();
    let edit = program_path(&program, &format!("/webhooks/{}/edit", w.id));
    let logs = program_path(&program, &format!("/audit-logs?webhook_id={}", w.id));
    let list = program_path(&program, "");
    let (toggle_id, toggle_name, w_enabled) = (w.id.clone(), w.name.clone(), w.enabled);
    let for_test = w.clone();
    view! {
        <Title text=w.name.clone()/>
        <header class="page-head">
            <div>
                <p class="crumbs"><a href=list>"Webhooks"</a>" / "{w.name.clone()}</p>
                <h1>{w.name.clone()}" "<WebhookBadge status=w.status/></h1>
                <p class="lede mono">{w.method.clone()}" "{w.url.clone()}</p>
                {(!w.description.is_empty()).then(|| view! { <p class="muted">{w.description.clone()}</p> })}
            </div>
            <div class="head-actions">
                <AdminOnly>
                    <EnabledToggle id=toggle_id.clone() name=toggle_name.clone() enabled=w_enabled action=toggle/>
                    <a class="button secondary" href=edit.clone()>"Edit"</a>
                </AdminOnly>
                <a class="button secondary" href=logs>"Logs"</a>
            </div>
        </header>
        <section class="stats" aria-label="Figures">
            <Stat label="Success Rate" value=rate hint=format!("{} of {} live attempts", w.successful_attempts, w.total_attempts)/>
            <Stat label="Total Attempts" value=w.total_attempts.to_string() hint="live attempts".to_owned()/>
            <Stat label="Retries" value=d.retries.to_string() hint="in the latest attempts".to_owned()/>
            <Stat label="Average Latency" value=avg hint="latest live attempts".to_owned()/>
            <Stat label="p95 Latency" value=p95 hint="latest live attempts".to_owned()/>
            <Stat label="Average Lag" value=lag hint="event accepted → delivered, latest deliveries".to_owned()/>
            <div class="stat">
                <span class="stat-label">"Last Success"</span>
                <span class="stat-value small"><Timestamp at=w.last_success_at/></span>
                <span class="stat-label">"Last Failure"</span>
                <span class="stat-value small"><Timestamp at=w.last_failure_at/></span>
            </div>
        </section>
        <AdminOnly>
            <section class="card" id="send-test">
                <h2>"Send Test"</h2>
                <SendTestPanel webhook=for_test.clone()/>
            </section>
        </AdminOnly>
        <section class="card">
            <h2>"Latest Attempts"</h2>
            {if d.latest.is_empty() {
                view! { <p class="muted">"No attempts yet."</p> }.into_any()
            } else {
                view! {
                    <div class="table-wrap flat">
                        <table class="data">
                            <thead>
                                <tr>
                                    <th scope="col">"Event ID"</th>
                                    <th scope="col">"Trigger"</th>
                                    <th scope="col">"Status"</th>
                                    <th scope="col">"Status Code"</th>
                                    <th scope="col">"Latency"</th>
                                    <th scope="col">"Created At"</th>
                                </tr>
                            </thead>
                            <tbody>
                                {d.latest
                                    .into_iter()
                                    .take(20)
                                    .map(|a| {
                                        let href = program_path(&program, &format!("/audit-logs/{}", a.id));
                                        view! {
                                            <tr>
                                                <td><a href=href><code class="id">{a.event_id}</code></a></td>
                                                <td>{a.trigger.label()}</td>
                                                <td><AttemptBadge status=a.status/></td>
                                                <td>{a.status_code.map(|c| c.to_string()).unwrap_or_else(|| "—".into())}</td>
                                                <td>{a.latency_ms.map(|l| format!("{l} ms")).unwrap_or_else(|| "—".into())}</td>
                                                <td><Timestamp at=Some(a.created_at)/></td>
                                            </tr>
                                        }
                                    })
                                    .collect_view()}
                            </tbody>
                        </table>
                    </div>
                }
                .into_any()
            }}
        </section>
    }
}

#[component]
fn Stat(label: &'static str, value: String, hint: String) -> impl IntoView {
    view! {
        <div class="stat" title=hint>
            <span class="stat-label">{label}</span>
            <span class="stat-value">{value}</span>
        </div>
    }
}

/// A lag in ms as people read it: "840 ms", "12.5 s", "3.2 min", "1.5 h".
fn format_lag(ms: f64) -> String {
    match ms {
        ms if ms < 1_000.0 => format!("{ms:.0} ms"),
        ms if ms < 60_000.0 => format!("{:.1} s", ms / 1_000.0),
        ms if ms < 3_600_000.0 => format!("{:.1} min", ms / 60_000.0),
        ms => format!("{:.1} h", ms / 3_600_000.0),
    }
}
