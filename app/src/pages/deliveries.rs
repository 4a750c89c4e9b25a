//! Deliveries (`/deliveries`): the dead letters by default, or the deliveries of another status
//! (waiting, in flight, delivered, any), filtered like the audit log (date accepted, webhook,
//! event type) a page at a time; each replayable on its own (a waiting one: retried now), and
//! every matching dead letter at once as a background job whose progress bar moves while it runs.

use crate::api::audit::ReplayDelivery;
use crate::api::deliveries::{list_deliveries, list_replay_jobs, load_replay_job, StartBulkReplay};
use crate::api::program_path;
use crate::components::filters::{DateRangeFields, WebhookSelect};
use crate::components::form::general_message;
use crate::components::program::{use_program, ProgramField};
use crate::components::returned::form_action;
use crate::components::session::AdminOnly;
use crate::components::time::Timestamp;
use crate::components::timer::every;
use crate::pages::audit_logs::urlencode;
use herald::domain::catalog;
use herald::domain::delivery::DeliveryStatus;
use herald::domain::replay::{ReplayJobStatus, ReplayJobView};
use herald::domain::views::DeliveryView;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Form;
use leptos_router::hooks::use_query_map;

const FILTERS: [&str; 4] = ["webhook_id", "event_type", "start", "end"];

/// The Status filter's choices: the value sent (empty: dead letters) and its label.
const STATUSES: [(&str, &str); 5] = [
    ("", "Dead letters"),
    ("pending", "Waiting (retries, held)"),
    ("in_flight", "In flight"),
    ("succeeded", "Delivered"),
    ("all", "Any status"),
];

/// How often a running job's progress is read again.
const PROGRESS_MS: u32 = 1_000;

#[component]
pub fn DeliveriesPage() -> impl IntoView {
    let query = use_query_map();
    let param = move |k: &str| query.with(|q| q.get(k).unwrap_or_default());
    let program = use_program();
    let start_job = form_action::<StartBulkReplay>();
    let replay_one = form_action::<ReplayDelivery>();
    // Rendered by the server: after a replay the page comes back whole, so the list is read again.
    let letters = Resource::new(
        move || {
            [program.get(), param("status")]
                .into_iter()
                .chain(FILTERS.map(param))
                .chain([param("cursor")])
                .collect::<Vec<_>>()
        },
        |p| {
            list_deliveries(
                p[0].clone(),
                p[1].clone(),
                p[2].clone(),
                p[3].clone(),
                p[4].clone(),
                p[5].clone(),
                p[6].clone(),
            )
        },
    );
    // The status and filters in force, as query parameters.
    let filters = move || -> Vec<String> {
        ["status"]
            .iter()
            .chain(FILTERS.iter())
            .filter_map(|k| {
                let v = param(k);
                (!v.is_empty()).then(|| format!("{k}={}", urlencode(&v)))
            })
            .collect()
    };
    // A page link keeps the filters and swaps the cursor (empty: the first page).
    let page_link = move |cursor: &str| {
        let mut parts = filters();
        if !cursor.is_empty() {
            parts.push(format!("cursor={}", urlencode(cursor)));
        }
        program_path(
            &program.get_untracked(),
            &format!("/deliveries?{}", parts.join("&")),
        )
    };
    view! {
        <Title text="Deliveries"/>
        <header class="page-head">
            <div>
                <h1>"Deliveries"</h1>
                <p class="lede">"Dead letters: deliveries that used up their retries. Replay one, or every one that matches the filters. Other statuses show what is waiting, under way or delivered."</p>
            </div>
            // A file download, not a page: the router leaves `rel="external"` links alone. The
            // page shows the dead letters until another status is chosen; so does the file.
            <a
                class="button secondary"
                rel="external"
                download=""
                title="The deliveries shown, with these filters, newest first, as CSV (up to 100,000)"
                href=move || {
                    let mut parts = filters();
                    if param("status").is_empty() {
                        parts.insert(0, "status=failed".to_owned());
                    }
                    program_path(&program.get(), &format!("/deliveries.csv?{}", parts.join("&")))
                }
            >
                "Download CSV"
            </a>
        </header>
        <Form method="GET" action="" attr:class="filters" attr:aria-label="Filter deliveries">
            <label>
                <span>"Status"</span>
                <select name="status">
                    {STATUSES
                        .map(|(value, label)| {
                            let selected = move || param("status") == value;
                            view! { <option value=value selected=selected>{label}</option> }
                        })
                        .collect_view()}
                </select>
            </label>
            <DateRangeFields/>
            <WebhookSelect/>
            <label>
                <span>"Event Type"</span>
                <select name="event_type">
                    <option value="">"All event types"</option>
                    {catalog::EVENT_NAMES
                        .iter()
                        .map(|t| {
                            let selected = move || param("event_type") == *t;
                            view! { <option value=*t selected=selected>{*t}</option> }
                        })
                        .collect_view()}
                </select>
            </label>
            <button type="submit" class="button">"Filter"</button>
        </Form>
        <AdminOnly>
            <section class="card" aria-labelledby="bulk-title">
                <h2 id="bulk-title">"Replay in bulk"</h2>
                <p class="muted">"Puts every dead letter matching the filters above back in the queue with a fresh retry budget, in the background. Starting it again while it runs changes nothing."</p>
                <ActionForm action=start_job attr:class="inline" attr:aria-label="Replay all matching dead letters">
                    <ProgramField/>
                    {FILTERS.map(|k| view! { <input type="hidden" name=k value=move || param(k)/> })}
                    <button type="submit" class="button">"Replay all matching"</button>
                </ActionForm>
                {general_message(start_job.value(), &[])}
                <RecentJobs/>
            </section>
        </AdminOnly>
        {general_message(replay_one.value(), &[])}
        {move || replay_one.value().get().and_then(Result::ok).map(|m| view! { <p class="saved" role="status">{m}</p> })}
        <Transition fallback=|| view! { <p class="muted">"Loading dead letters…"</p> }>
            {move || Suspend::new(async move {
                match letters.await {
                    Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                    Ok(page) if page.items.is_empty() && param("cursor").is_empty() => {
                        let (title, text) = if param("status").is_empty() {
                            ("No dead letters", "Nothing matching has used up its retries.")
                        } else {
                            ("No deliveries", "Nothing matching has this status.")
                        };
                        view! {
                            <section class="empty card">
                                <h2>{title}</h2>
                                <p>{text}</p>
                            </section>
                        }
                        .into_any()
                    }
                    Ok(page) => {
                        let first = (!param("cursor").is_empty()).then(|| page_link(""));
                        let next = page.next_cursor.as_deref().map(page_link);
                        view! {
                            <LetterTable items=page.items replay=replay_one/>
                            <nav class="pager" aria-label="Pages">
                                {first.map(|href| view! { <a class="button secondary" href=href>"Newest"</a> })}
                                {next.map(|href| view! { <a class="button secondary" href=href>"Older"</a> })}
                            </nav>
                        }
                        .into_any()
                    }
                }
            })}
        </Transition>
    }
}

/// The latest job's progress bar, read again every second while it runs: an island.
#[island]
fn JobProgress(program: String, job: ReplayJobView) -> impl IntoView {
    // A signal, not a resource: the island may be hydrated again after the page's content is
    // swapped in place, without the data the server rendered with it.
    let current = RwSignal::new(job);
    let reading = RwSignal::new(false);
    // Read again while it runs; a finished job stays as it is. (A copy a form's in-place submit
    // replaced is disposed with its timer: see `components::live`.)
    every(PROGRESS_MS, move || {
        if reading.get_untracked() || current.with_untracked(|j| j.status == ReplayJobStatus::Done)
        {
            return;
        }
        reading.set(true);
        let (program, id) = (program.clone(), current.with_untracked(|j| j.id.clone()));
        leptos::task::spawn_local(async move {
            if let Ok(job) = load_replay_job(program, id).await {
                current.set(job);
            }
            reading.set(false);
        });
    });
    let shown = move || current.get();
    view! {
        <div class="job-progress" role="status">
            <progress max=move || shown().total.max(1) value=move || if shown().total == 0 { 1 } else { shown().replayed } aria-label="Bulk replay progress"></progress>
            <span>{move || {
                let j = shown();
                match j.status {
                    ReplayJobStatus::Running => format!("Replaying: {} of {} dead letters back in the queue", j.replayed, j.total),
                    ReplayJobStatus::Done => format!("Done: {} of {} dead letters back in the queue", j.replayed, j.total),
                }
            }}</span>
        </div>
    }
}

#[component]
fn RecentJobs() -> impl IntoView {
    let program = use_program();
    let jobs = Resource::new(move || program.get(), list_replay_jobs);
    view! {
        <Transition>
            {move || Suspend::new(async move {
                let mut list = jobs.await.unwrap_or_default();
                // The latest job keeps its progress bar (after a reload too); the rest are listed.
                let latest = (!list.is_empty()).then(|| list.remove(0));
                let earlier = (!list.is_empty()).then(|| view! {
                    <details class="jobs">
                        <summary>"Earlier bulk replays"</summary>
                        <ul>
                            {list.into_iter().map(|j| view! {
                                <li>
                                    <Timestamp at=Some(j.created_at)/>
                                    {format!(" by {}: {} of {} replayed ({})", j.started_by, j.replayed, j.total, j.status.as_str())}
                                </li>
                            }).collect_view()}
                        </ul>
                    </details>
                });
                view! {
                    {latest.map(|job| view! { <JobProgress program=program.get_untracked() job/> })}
                    {earlier}
                }
            })}
        </Transition>
    }
}

#[component]
fn LetterTable(items: Vec<DeliveryView>, replay: ServerAction<ReplayDelivery>) -> impl IntoView {
    let program = use_program().get_untracked();
    view! {
        <div class="table-wrap">
            <table class="data">
                <thead>
                    <tr>
                        <th scope="col">"Webhook Name"</th>
                        <th scope="col">"Event ID"</th>
                        <th scope="col">"Event Type"</th>
                        <th scope="col">"Status"</th>
                        <th scope="col">"Tries"</th>
                        <th scope="col">"Last Error"</th>
                        <th scope="col">"Accepted"</th>
                        <th scope="col">"Last Change"</th>
                        <th scope="col">"Actions"</th>
                    </tr>
                </thead>
                <tbody>
                    {items
                        .into_iter()
                        .map(|d| {
                            let logs = program_path(&program, &format!("/audit-logs?q={}", d.event_id));
                            let (verb, label) = match d.status {
                                DeliveryStatus::Pending => ("Retry now", "Retry now the delivery"),
                                _ => ("Replay", "Replay the delivery"),
                            };
                            let label = format!("{label} of {} to {}", d.event_id, d.webhook_name);
                            let id = d.id.clone();
                            let (status, next_try) = status_cell(&d);
                            // Nothing to do for one under way, or one held until its webhook is on.
                            let acts = d.status != DeliveryStatus::InFlight && !d.is_held();
                            let action = acts.then(|| view! {
                                <AdminOnly>
                                    <ReplayOne id=id.clone() verb label=label.clone() action=replay/>
                                </AdminOnly>
                            });
                            view! {
                                <tr>
                                    <th scope="row">{d.webhook_name.clone()}</th>
                                    <td><a href=logs title="Its attempts in the audit log"><code class="id">{d.event_id.clone()}</code></a></td>
                                    <td><code>{d.event_type.clone()}</code></td>
                                    <td>{status}{next_try.map(|at| view! { <Timestamp at=Some(at)/> })}</td>
                                    <td>{d.tries}</td>
                                    <td class="error-cell">{d.last_error.clone().unwrap_or_default()}</td>
                                    <td><Timestamp at=Some(d.created_at)/></td>
                                    <td><Timestamp at=Some(d.updated_at)/></td>
                                    <td class="actions">{action}</td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </div>
    }
}

/// A delivery's status as the table says it, and when a waiting one is next tried (a held one
/// has no next try of its own).
fn status_cell(d: &DeliveryView) -> (&'static str, Option<chrono::DateTime<chrono::Utc>>) {
    match d.status {
        DeliveryStatus::Failed => ("Dead letter", None),
        DeliveryStatus::Succeeded => ("Delivered", None),
        DeliveryStatus::InFlight => ("In flight", None),
        DeliveryStatus::Pending if d.is_held() => ("Held (webhook off)", None),
        DeliveryStatus::Pending => ("Waiting, next try ", Some(d.next_attempt_at)),
    }
}

/// The Replay (or, for a waiting delivery, Retry now) button of one delivery.
#[component]
fn ReplayOne(
    id: String,
    verb: &'static str,
    label: String,
    action: ServerAction<ReplayDelivery>,
) -> impl IntoView {
    view! {
        <ActionForm action attr:class="inline">
            <ProgramField/>
            <input type="hidden" name="delivery_id" value=id/>
            <button type="submit" class="button secondary small" aria-label=label>{verb}</button>
        </ActionForm>
    }
}
