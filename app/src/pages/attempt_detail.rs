//! One attempt (`/audit-logs/:id`): what was sent (headers with credentials redacted, the body
//! pretty-printed), what came back, timing and trigger, and Replay for a dead-lettered delivery.

use crate::api::audit::AttemptWithExchange;
use crate::api::audit::{attempt_detail, ReplayDelivery};
use crate::api::program_path;
use crate::components::program::{use_program, ProgramField};
use crate::components::returned::form_action;
use crate::components::session::AdminOnly;
use crate::components::status::AttemptBadge;
use crate::components::time::Timestamp;
use crate::pages::audit_logs;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

#[component]
pub fn AttemptPage() -> impl IntoView {
    let params = use_params_map();
    let program = use_program();
    let detail = Resource::new(
        move || {
            (
                program.get(),
                params.with(|p| p.get("id").unwrap_or_default()),
            )
        },
        |(program, id)| attempt_detail(program, id),
    );
    view! {
        <Title text="Attempt"/>
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match detail.await {
                    Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                    Ok(d) => view! { <Attempt d/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

fn pretty(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| body.to_owned())
}

fn header_lines(headers: &[(String, String)]) -> String {
    headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[component]
fn Attempt(d: AttemptWithExchange) -> impl IntoView {
    let a = d.attempt.clone();
    let program = use_program().get_untracked();
    let replay = form_action::<ReplayDelivery>();
    let replayable =
        a.status == herald::domain::delivery::AttemptStatus::Failure && a.delivery_id.is_some();
    let delivery = StoredValue::new(a.delivery_id.clone().unwrap_or_default());
    let webhook_logs = program_path(
        &program,
        &format!("/audit-logs?webhook_id={}", a.webhook_id),
    );
    let all_logs = program_path(&program, "/audit-logs");
    view! {
        <header class="page-head">
            <div>
                <p class="crumbs"><a href=all_logs>"Audit Logs"</a>" / "<code>{a.id.clone()}</code></p>
                <h1>{a.webhook_name.clone()}" "<AttemptBadge status=a.status/></h1>
                <p class="lede"><code>{a.event_type.clone()}</code>" · event "<code>{a.event_id.clone()}</code></p>
            </div>
            <div class="head-actions">
                <a class="button secondary" href=webhook_logs>"All attempts of this webhook"</a>
                {replayable.then(|| view! {
                    <AdminOnly>
                        <ActionForm action=replay attr:class="inline">
                            <ProgramField/>
                            <input type="hidden" name="delivery_id" value=delivery.get_value()/>
                            <button type="submit" class="button">"Replay"</button>
                        </ActionForm>
                    </AdminOnly>
                })}
            </div>
        </header>
        {move || replay.value().get().map(|r| match r {
            Ok(message) => view! { <p class="notice" role="status">{message}</p> }.into_any(),
            Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
        })}
        <section class="card">
            <dl class="facts">
                {a.member.clone().map(|m| {
                    let about = audit_logs::member_search(&program, &m);
                    view! {
                        <dt>"Member"</dt>
                        <dd><a href=about title=audit_logs::MEMBER_SEARCH_TITLE><code>{m}</code></a></dd>
                    }
                })}
                <dt>"Trigger"</dt><dd>{a.trigger.label()}</dd>
                <dt>"Attempt"</dt><dd>{a.attempt}</dd>
                <dt>"Status Code"</dt><dd>{a.status_code.map(|c| c.to_string()).unwrap_or_else(|| "—".into())}</dd>
                <dt>"Latency"</dt><dd>{a.latency_ms.map(|l| herald::domain::insights::format_ms(l as f64)).unwrap_or_else(|| "—".into())}</dd>
                <dt>"Event to Delivery"</dt><dd>{a.lag_ms.map(|l| format!("{l} ms after the event was accepted")).unwrap_or_else(|| "—".into())}</dd>
                <dt>"Error"</dt><dd class:error=a.error.is_some()>{a.error.clone().unwrap_or_else(|| "—".into())}</dd>
                {a.superseded.then(|| view! {
                    <dt>"Superseded"</dt>
                    <dd>"Sent after this claim's lease had run out; a newer claim owns the delivery, so this attempt moved neither the delivery nor the figures."</dd>
                })}
                <dt>"Created At"</dt><dd><Timestamp at=Some(a.created_at)/></dd>
                <dt>"Delivered At"</dt><dd><Timestamp at=a.delivered_at/></dd>
            </dl>
        </section>
        <div class="two-col">
            <section class="card">
                <h2>"Request"</h2>
                <p class="mono">"POST "{d.request.url.clone()}</p>
                <h3>"Headers"</h3>
                <pre class="code">{header_lines(&d.request.headers)}</pre>
                <h3>"Body"</h3>
                <pre class="code">{pretty(&d.request.body)}</pre>
            </section>
            <section class="card">
                <h2>"Response"</h2>
                {match d.response {
                    None => view! { <p class="muted">"No response (the request did not complete, or was sandboxed)."</p> }.into_any(),
                    Some(r) => view! {
                        <h3>"Headers"</h3>
                        <pre class="code">{header_lines(&r.headers)}</pre>
                        <h3>"Body (first 4 KiB)"</h3>
                        {if r.body.is_empty() {
                            view! { <p class="muted">"Empty: the receiver answered without a body."</p> }.into_any()
                        } else {
                            view! { <pre class="code">{pretty(&r.body)}</pre> }.into_any()
                        }}
                    }
                    .into_any(),
                }}
            </section>
        </div>
    }
}
