//! A webhook's page (`/webhooks/:id`): its figures and flags over a window (24 h, 7 d, 30 d), the
//! charts, last success and failure, its latest attempts, Send Test, Edit and the Enabled switch.

use crate::api::program_path;
use crate::api::webhooks::{load_webhook_details, SetWebhookEnabled};
use crate::components::insights::{use_window, Charts, FigureTiles, FlagNotes, WindowTabs};
use crate::components::program::use_program;
use crate::components::send_test::SendTestIsland;
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
    let window = use_window();
    let details = Resource::new(
        move || {
            (
                program.get(),
                params.with(|p| p.get("id").unwrap_or_default()),
                window.get(),
            )
        },
        |(program, id, window)| load_webhook_details(program, id, window.as_str().to_owned()),
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
    let program = use_program().get_untracked();
    let edit = program_path(&program, &format!("/webhooks/{}/edit", w.id));
    let logs = program_path(&program, &format!("/audit-logs?webhook_id={}", w.id));
    let queue = program_path(
        &program,
        &format!("/deliveries?status=pending&webhook_id={}", w.id),
    );
    let list = program_path(&program, "");
    let (toggle_id, toggle_name, w_enabled) = (w.id.clone(), w.name.clone(), w.enabled);
    let held = w.held_label();
    let for_test = w.clone();
    let test_program = program.clone();
    view! {
        <Title text=w.name.clone()/>
        <header class="page-head">
            <div>
                <p class="crumbs"><a href=list>"Webhooks"</a>" / "{w.name.clone()}</p>
                <h1>{w.name.clone()}" "<WebhookBadge status=w.status/></h1>
                <p class="lede mono">{w.method.clone()}" "{w.url.clone()}</p>
                {w.disabled_reason.clone().map(|r| view! {
                    <p class="notice" role="status">
                        {format!("Disabled by Herald: {r}. Deliveries wait until it is switched on again.")}
                    </p>
                })}
                {held.clone().map(|held| {
                    let queue = queue.clone();
                    view! {
                        <p class="notice" role="status">
                            {format!("{held} deliveries held: they go out in order when it is switched on, unless you discard them then. ")}
                            <a href=queue>"See them"</a>
                        </p>
                    }
                })}
                {(!w.description.is_empty()).then(|| view! { <p class="muted">{w.description.clone()}</p> })}
            </div>
            <div class="head-actions">
                <AdminOnly>
                    <EnabledToggle id=toggle_id.clone() name=toggle_name.clone() enabled=w_enabled held=held.clone() action=toggle/>
                    <a class="button secondary" href=edit.clone()>"Edit"</a>
                </AdminOnly>
                <a class="button secondary" href=logs>"Logs"</a>
                <a class="button secondary" href=queue.clone() title="Its deliveries waiting to go out (retries, held)">"Waiting"</a>
            </div>
        </header>
        <div class="section-head">
            <h2>"Deliveries"</h2>
            <WindowTabs keep=&[]/>
        </div>
        <FlagNotes flags=d.insights.flags.clone()/>
        <FigureTiles figures=d.insights.figures.clone()/>
        <section class="stats compact" aria-label="Last results">
            <div class="stat">
                <span class="stat-label">"Last Success"</span>
                <span class="stat-value small"><Timestamp at=w.last_success_at/></span>
            </div>
            <div class="stat">
                <span class="stat-label">"Last Failure"</span>
                <span class="stat-value small"><Timestamp at=w.last_failure_at/></span>
            </div>
            <div class="stat" title="When it was last switched on: deliveries it held while off wait from here">
                <span class="stat-label">"On Since"</span>
                <span class="stat-value small"><Timestamp at=w.enabled_at.filter(|_| w.enabled)/></span>
            </div>
            <div class="stat">
                <span class="stat-label">"All Time"</span>
                <span class="stat-value small">{format!("{} of {} live attempts succeeded", w.successful_attempts, w.total_attempts)}</span>
            </div>
        </section>
        <Charts insights=d.insights.clone()/>
        <AdminOnly>
            <section class="card" id="send-test">
                <h2>"Send Test"</h2>
                <SendTestIsland program=test_program.clone() webhook=for_test.clone()/>
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
                                    .map(|a| {
                                        let href = program_path(&program, &format!("/audit-logs/{}", a.id));
                                        view! {
                                            <tr>
                                                <td><a href=href><code class="id">{a.event_id}</code></a></td>
                                                <td>{a.trigger.label()}</td>
                                                <td><AttemptBadge status=a.status/></td>
                                                <td>{a.status_code.map(|c| c.to_string()).unwrap_or_else(|| "—".into())}</td>
                                                <td>{a.latency_ms.map(|l| herald::domain::insights::format_ms(l as f64)).unwrap_or_else(|| "—".into())}</td>
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
