//! The audit log (`/audit-logs`): every attempt, newest first, filtered by date, webhook, status
//! and event id, member id or webhook name, with keyset paging that stays fast on millions of rows.

use crate::api::audit::list_attempts;
use crate::api::program_path;
use crate::components::filters::{DateRangeFields, WebhookSelect};
use crate::components::program::use_program;
use crate::components::status::AttemptBadge;
use crate::components::time::Timestamp;
use herald::domain::delivery::AttemptStatus;
use herald::domain::views::AttemptView;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Form;
use leptos_router::hooks::use_query_map;

const FILTERS: [&str; 5] = ["webhook_id", "start", "end", "status", "q"];

#[component]
pub fn AuditLogsPage() -> impl IntoView {
    let query = use_query_map();
    let param = move |k: &str| query.with(|q| q.get(k).unwrap_or_default());
    let program = use_program();
    let page = Resource::new(
        move || {
            [program.get()]
                .into_iter()
                .chain(FILTERS.map(param))
                .chain([param("cursor")])
                .collect::<Vec<_>>()
        },
        |p| {
            list_attempts(
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
    // The filters in force, as query parameters.
    let filters = move || -> Vec<String> {
        FILTERS
            .iter()
            .filter_map(|k| {
                let v = param(k);
                (!v.is_empty()).then(|| format!("{k}={}", urlencode(&v)))
            })
            .collect()
    };
    // A page link keeps the filters and swaps the cursor.
    let link_with_cursor = move |cursor: String| {
        let mut parts = filters();
        parts.push(format!("cursor={}", urlencode(&cursor)));
        program_path(
            &program.get_untracked(),
            &format!("/audit-logs?{}", parts.join("&")),
        )
    };
    view! {
        <Title text="Audit Logs"/>
        <header class="page-head">
            <div>
                <h1>"Audit Logs"</h1>
                <p class="lede">"Every delivery attempt, test and verification, with what was sent and what came back."</p>
            </div>
            // A file download, not a page: the router leaves `rel="external"` links alone.
            <a
                class="button secondary"
                rel="external"
                download=""
                title="The attempts these filters match, newest first, as CSV (up to 100,000)"
                href=move || {
                    let parts = filters();
                    let query = if parts.is_empty() { String::new() } else { format!("?{}", parts.join("&")) };
                    program_path(&program.get(), &format!("/audit-logs.csv{query}"))
                }
            >
                "Download CSV"
            </a>
        </header>
        <Form method="GET" action="" attr:class="filters" attr:aria-label="Filter audit logs">
            <DateRangeFields/>
            <WebhookSelect/>
            <label>
                <span>"Status"</span>
                <select name="status">
                    <option value="">"Any status"</option>
                    {AttemptStatus::ALL
                        .iter()
                        .map(|s| {
                            let selected = move || param("status") == s.as_str();
                            view! { <option value=s.as_str() selected=selected>{s.label()}</option> }
                        })
                        .collect_view()}
                </select>
            </label>
            <label class="grow">
                <span>"Search"</span>
                <input type="search" name="q" placeholder="Event ID, member ID or webhook name" value=move || param("q")/>
            </label>
            <button type="submit" class="button">"Search"</button>
        </Form>
        <Suspense fallback=|| view! { <p class="muted">"Loading attempts…"</p> }>
            {move || Suspend::new(async move {
                match page.await {
                    Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                    Ok(p) if p.items.is_empty() => view! {
                        <section class="empty card">
                            <h2>"No attempts to show"</h2>
                            <p>"Attempts appear here as events are delivered, tests are sent and endpoints verified."</p>
                        </section>
                    }
                    .into_any(),
                    Ok(p) => {
                        let prev = p.prev_cursor.clone().map(link_with_cursor);
                        let next = p.next_cursor.clone().map(link_with_cursor);
                        view! {
                            <AttemptTable items=p.items/>
                            <nav class="pager" aria-label="Pages">
                                {prev.map(|href| view! { <a class="button secondary" href=href>"Previous"</a> })}
                                {next.map(|href| view! { <a class="button secondary" href=href>"Next"</a> })}
                            </nav>
                        }
                        .into_any()
                    }
                }
            })}
        </Suspense>
    }
}

#[component]
fn AttemptTable(items: Vec<AttemptView>) -> impl IntoView {
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
                        <th scope="col">"Status Code"</th>
                        <th scope="col">"Error"</th>
                        <th scope="col">"Delivered At"</th>
                        <th scope="col">"Created At"</th>
                    </tr>
                </thead>
                <tbody>
                    {items
                        .into_iter()
                        .map(|a| {
                            let code = a.status_code.map(|c| c.to_string()).unwrap_or_else(|| "—".into());
                            let href = program_path(&program, &format!("/audit-logs/{}", a.id));
                            let member = a.member.map(|m| {
                                let about = member_search(&program, &m);
                                view! {
                                    <a class="member" href=about title=MEMBER_SEARCH_TITLE>"member "<code>{m}</code></a>
                                }
                            });
                            view! {
                                <tr>
                                    <th scope="row">{a.webhook_name}</th>
                                    <td><a href=href title="Open the request and response"><code class="id">{a.event_id}</code></a>{member}</td>
                                    <td><code>{a.event_type}</code>" "<span class="muted">{a.trigger.label()}</span></td>
                                    <td><AttemptBadge status=a.status/></td>
                                    <td>{code}</td>
                                    <td class="error-cell">{a.error.unwrap_or_default()}</td>
                                    <td><Timestamp at=a.delivered_at/></td>
                                    <td><Timestamp at=Some(a.created_at)/></td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </div>
    }
}

/// The audit log searched for everything about one member (linked from each row naming one).
pub fn member_search(program: &str, member: &str) -> String {
    program_path(program, &format!("/audit-logs?q={}", urlencode(member)))
}

/// What a link to `member_search` says it does.
pub const MEMBER_SEARCH_TITLE: &str = "Every attempt about this member";

/// Percent-encodes a query value (everything but unreserved characters).
pub fn urlencode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
