//! The Webhooks list (`/`): filters in the URL, one row per webhook with its health figures, and
//! an Enabled switch that works with or without the wasm (it is a real form).

use crate::api::webhooks::{list_webhooks, SetWebhookEnabled};
use crate::components::status::WebhookBadge;
use crate::components::time::Timestamp;
use herald::domain::views::WebhookView;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Form;
use leptos_router::hooks::use_query_map;

#[component]
pub fn WebhooksPage() -> impl IntoView {
    let query = use_query_map();
    let param = move |k: &str| query.with(|q| q.get(k).unwrap_or_default());
    let toggle = ServerAction::<SetWebhookEnabled>::new();
    let hooks = Resource::new(
        move || {
            (
                param("name"),
                param("start"),
                param("end"),
                toggle.version().get(),
            )
        },
        |(name, start, end, _)| list_webhooks(name, start, end),
    );
    view! {
        <Title text="Webhooks"/>
        <header class="page-head">
            <div>
                <h1>"Webhooks"</h1>
                <p class="lede">"Endpoints that receive your program's events, and how their deliveries are going."</p>
            </div>
        </header>
        <Form method="GET" action="" attr:class="filters" attr:aria-label="Filter webhooks">
            <label>
                <span>"Start Date"</span>
                <input type="date" name="start" prop:value=move || param("start")/>
            </label>
            <label>
                <span>"End Date"</span>
                <input type="date" name="end" prop:value=move || param("end")/>
            </label>
            <label class="grow">
                <span>"Name"</span>
                <input type="search" name="name" placeholder="Search by name" prop:value=move || param("name")/>
            </label>
            <button type="submit" class="button">"Search"</button>
        </Form>
        <Suspense fallback=|| view! { <p class="muted">"Loading webhooks…"</p> }>
            {move || Suspend::new(async move {
                match hooks.await {
                    Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                    Ok(list) if list.is_empty() => {
                        let filtered = !(param("name").is_empty() && param("start").is_empty() && param("end").is_empty());
                        view! { <EmptyState filtered/> }.into_any()
                    }
                    Ok(list) => view! { <WebhookTable hooks=list toggle/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn EmptyState(filtered: bool) -> impl IntoView {
    if filtered {
        return view! {
            <section class="empty card">
                <h2>"No webhooks match these filters"</h2>
                <p>"Try a wider date range or another name."</p>
                <a class="button secondary" href="/">"Clear filters"</a>
            </section>
        }
        .into_any();
    }
    view! {
        <section class="empty card">
            <h2>"No webhooks yet"</h2>
            <p>
                "A webhook is an HTTPS endpoint of yours that Herald calls whenever something happens in "
                "your program: a member enrols, earns points, redeems a reward. Herald signs every request, "
                "retries failures and keeps a record of each attempt."
            </p>
            <p class="muted">"Create one with POST /api/v1/webhooks; the API reference is in the README."</p>
        </section>
    }
    .into_any()
}

#[component]
fn WebhookTable(hooks: Vec<WebhookView>, toggle: ServerAction<SetWebhookEnabled>) -> impl IntoView {
    view! {
        <div class="table-wrap">
            <table class="data">
                <thead>
                    <tr>
                        <th scope="col">"Name"</th>
                        <th scope="col">"URL"</th>
                        <th scope="col">"Method"</th>
                        <th scope="col">"Status"</th>
                        <th scope="col">"Success Rate"</th>
                        <th scope="col">"Last Success"</th>
                        <th scope="col">"Last Failure"</th>
                        <th scope="col">"Create Date"</th>
                        <th scope="col">"Enabled"</th>
                        <th scope="col">"Actions"</th>
                    </tr>
                </thead>
                <tbody>
                    {hooks.into_iter().map(|w| view! { <WebhookRow w toggle/> }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

#[component]
fn WebhookRow(w: WebhookView, toggle: ServerAction<SetWebhookEnabled>) -> impl IntoView {
    let rate = w
        .success_rate
        .map_or_else(|| "—".to_owned(), |r| format!("{r:.1}%"));
    let counts = format!(
        "{} of {} live attempts succeeded",
        w.successful_attempts, w.total_attempts
    );
    let logs = format!("/audit-logs?webhook_id={}", w.id);
    let label = format!("Enabled: {}", w.name);
    view! {
        <tr>
            <th scope="row" class="name">{w.name.clone()}</th>
            <td class="url"><span title=w.url.clone()>{w.url.clone()}</span></td>
            <td>{w.method.clone()}</td>
            <td><WebhookBadge status=w.status/></td>
            <td><span title=counts>{rate}</span></td>
            <td><Timestamp at=w.last_success_at/></td>
            <td><Timestamp at=w.last_failure_at/></td>
            <td><Timestamp at=Some(w.created_at)/></td>
            <td>
                <ActionForm action=toggle attr:class="inline">
                    <input type="hidden" name="id" value=w.id.clone()/>
                    <input type="hidden" name="enabled" value=(!w.enabled).to_string()/>
                    <button
                        type="submit"
                        class="switch"
                        role="switch"
                        aria-checked=w.enabled.to_string()
                        aria-label=label
                    >
                        <span class="knob" aria-hidden="true"></span>
                    </button>
                </ActionForm>
            </td>
            <td class="actions">
                <a href=logs>"Logs"</a>
            </td>
        </tr>
    }
}
