//! The Webhooks list (`/`): filters in the URL (the name searches as you type), one row per webhook
//! with its health figures, the Enabled switch, and the row actions. Figures refresh every few
//! seconds while the page is open, without touching the filters or the scroll position.

use crate::api::program_path;
use crate::api::webhooks::{list_webhooks, DeleteWebhook, SetWebhookEnabled};
use crate::components::insights::{millis, percent, use_window, FlagBadges, WindowTabs};
use crate::components::program::ProgramField;
use crate::components::program::{use_path, use_program};
use crate::components::send_test::SendTestPanel;
use crate::components::session::AdminOnly;
use crate::components::status::WebhookBadge;
use crate::components::time::Timestamp;
use crate::components::timer::every;
use crate::components::toggle::EnabledToggle;
use herald::domain::views::WebhookView;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Form;
use leptos_router::hooks::{use_navigate, use_query_map};

/// How often the list's figures refresh.
const REFRESH_MS: u32 = 5_000;
/// How long typing in Name waits before searching.
const DEBOUNCE_MS: u32 = 350;

#[component]
pub fn WebhooksPage() -> impl IntoView {
    let query = use_query_map();
    let param = move |k: &str| query.with(|q| q.get(k).unwrap_or_default());
    let toggle = ServerAction::<SetWebhookEnabled>::new();
    let delete = ServerAction::<DeleteWebhook>::new();
    let tick = RwSignal::new(0u32);
    every(REFRESH_MS, move || tick.update(|t| *t = t.wrapping_add(1)));
    let program = use_program();
    let window = use_window();
    let create_link = use_path("/webhooks/new");
    let hooks = Resource::new(
        move || {
            (
                program.get(),
                param("name"),
                param("start"),
                param("end"),
                window.get(),
                param("cursor"),
                toggle.version().get(),
                delete.version().get(),
                tick.get(),
            )
        },
        |(program, name, start, end, window, cursor, ..)| {
            list_webhooks(
                program,
                name,
                start,
                end,
                window.as_str().to_owned(),
                (!cursor.is_empty()).then_some(cursor),
            )
        },
    );
    // A page link keeps the filters and the window, and swaps the cursor.
    let page_link = move |cursor: &str| {
        let mut query = format!("?window={}", window.get_untracked().as_str());
        for key in ["name", "start", "end"] {
            let value = param(key);
            if !value.is_empty() {
                query.push_str(&format!("&{key}={}", enc(&value)));
            }
        }
        if !cursor.is_empty() {
            query.push_str(&format!("&cursor={}", enc(cursor)));
        }
        program_path(&program.get_untracked(), &query)
    };
    let testing = RwSignal::new(None::<WebhookView>);
    let navigate = use_navigate();
    let search_as_you_type = move |ev: leptos::ev::Event| {
        let name = event_target_value(&ev);
        let (start, end) = (param("start"), param("end"));
        let navigate = navigate.clone();
        debounce(DEBOUNCE_MS, move || {
            let url = program_path(
                &program.get_untracked(),
                &format!(
                    "?start={}&end={}&name={}&window={}",
                    enc(&start),
                    enc(&end),
                    enc(&name),
                    window.get_untracked().as_str()
                ),
            );
            navigate(
                &url,
                leptos_router::NavigateOptions {
                    replace: true,
                    scroll: false,
                    ..Default::default()
                },
            );
        });
    };
    view! {
        <Title text="Webhooks"/>
        <header class="page-head">
            <div>
                <h1>"Webhooks"</h1>
                <p class="lede">"Endpoints that receive your program's events, and how their deliveries are going."</p>
            </div>
            <AdminOnly>
                <a class="button" href=create_link>"Create Webhook"</a>
            </AdminOnly>
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
                <input
                    type="search"
                    name="name"
                    placeholder="Search by name"
                    prop:value=move || param("name")
                    on:input=search_as_you_type
                />
            </label>
            <input type="hidden" name="window" value=move || window.get().as_str()/>
            <button type="submit" class="button">"Search"</button>
        </Form>
        <div class="section-head">
            <p class="muted">{move || format!("Figures over the {}.", window.get().label())}</p>
            <WindowTabs keep=&["name", "start", "end"]/>
        </div>
        {move || delete.value().get().and_then(Result::err).map(|e| view! { <p class="error" role="alert">{e.to_string()}</p> })}
        <Transition fallback=|| view! { <p class="muted">"Loading webhooks…"</p> }>
            {move || Suspend::new(async move {
                match hooks.await {
                    Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                    Ok(page) if page.items.is_empty() && param("cursor").is_empty() => {
                        let filtered = !(param("name").is_empty() && param("start").is_empty() && param("end").is_empty());
                        view! { <EmptyState filtered/> }.into_any()
                    }
                    Ok(page) => {
                        let first = (!param("cursor").is_empty()).then(|| page_link(""));
                        let next = page.next_cursor.as_deref().map(page_link);
                        view! {
                            <WebhookTable hooks=page.items toggle delete testing/>
                            <nav class="pager" aria-label="Pages">
                                {first.map(|href| view! { <a class="button secondary" href=href>"First page"</a> })}
                                {next.map(|href| view! { <a class="button secondary" href=href>"Next"</a> })}
                            </nav>
                        }
                        .into_any()
                    }
                }
            })}
        </Transition>
        {move || testing.get().map(|w| view! { <SendTestDialog webhook=w close=Callback::new(move |_| testing.set(None))/> })}
    }
}

/// Percent-encodes a query value.
fn enc(v: &str) -> String {
    crate::pages::audit_logs::urlencode(v)
}

/// Runs `f` after `ms` milliseconds unless called again first (browser only).
fn debounce(ms: u32, f: impl FnOnce() + 'static) {
    #[cfg(feature = "hydrate")]
    {
        thread_local! {
            static PENDING: std::cell::RefCell<Option<gloo_timers::callback::Timeout>> = const { std::cell::RefCell::new(None) };
        }
        PENDING.with(|p| *p.borrow_mut() = Some(gloo_timers::callback::Timeout::new(ms, f)));
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (ms, f);
}

#[component]
fn EmptyState(filtered: bool) -> impl IntoView {
    let list = use_path("");
    let create_link = use_path("/webhooks/new");
    if filtered {
        return view! {
            <section class="empty card">
                <h2>"No webhooks match these filters"</h2>
                <p>"Try a wider date range or another name."</p>
                <a class="button secondary" href=list>"Clear filters"</a>
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
            <AdminOnly>
                <a class="button" href=create_link>"Create Webhook"</a>
            </AdminOnly>
        </section>
    }
    .into_any()
}

#[component]
fn WebhookTable(
    hooks: Vec<WebhookView>,
    toggle: ServerAction<SetWebhookEnabled>,
    delete: ServerAction<DeleteWebhook>,
    testing: RwSignal<Option<WebhookView>>,
) -> impl IntoView {
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
                        <th scope="col">"Retries"</th>
                        <th scope="col">"Avg Latency"</th>
                        <th scope="col">"Last Success"</th>
                        <th scope="col">"Last Failure"</th>
                        <th scope="col">"Create Date"</th>
                        <th scope="col">"Enabled"</th>
                        <th scope="col">"Actions"</th>
                    </tr>
                </thead>
                <tbody>
                    {hooks.into_iter().map(|w| view! { <WebhookRow w toggle delete testing/> }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

#[component]
fn WebhookRow(
    w: WebhookView,
    toggle: ServerAction<SetWebhookEnabled>,
    delete: ServerAction<DeleteWebhook>,
    testing: RwSignal<Option<WebhookView>>,
) -> impl IntoView {
    let figures = w
        .figures
        .clone()
        .unwrap_or_else(|| herald::domain::insights::Rollup::default().figures(Default::default()));
    let rate = percent(figures.success_rate);
    let counts = format!(
        "{} of {} attempts succeeded, {}",
        figures.succeeded,
        figures.attempts,
        figures.window.label()
    );
    let retries = figures.retries.to_string();
    let latency = millis(figures.avg_latency_ms);
    let flags = w.flags.clone();
    let program = use_program().get_untracked();
    let page = program_path(&program, &format!("/webhooks/{}", w.id));
    let edit = program_path(&program, &format!("/webhooks/{}/edit", w.id));
    let test_link = program_path(&program, &format!("/webhooks/{}#send-test", w.id));
    let logs = program_path(&program, &format!("/audit-logs?webhook_id={}", w.id));
    let for_test = w.clone();
    let (id, name, enabled, held) = (w.id.clone(), w.name.clone(), w.enabled, w.held_label());
    let delete_id = w.id.clone();
    let delete_label = format!("Delete {}", w.name);
    let delete_group = delete_label.clone();
    let delete_question = format!(
        "Delete webhook \u{201c}{}\u{201d}? Its pending deliveries stop; its audit log stays.",
        w.name
    );
    view! {
        <tr>
            <th scope="row" class="name"><a href=page>{w.name.clone()}</a></th>
            <td class="url"><span title=w.url.clone()>{w.url.clone()}</span></td>
            <td>{w.method.clone()}</td>
            <td class="status">
                <WebhookBadge status=w.status/>" "<FlagBadges flags/>
                {w.disabled_reason.clone().map(|r| view! { <span class="status-note">{format!("Disabled: {r}")}</span> })}
                {held.clone().map(|held| view! { <span class="status-note">{format!("{held} held until it is switched on")}</span> })}
            </td>
            <td><span title=counts>{rate}</span></td>
            <td>{retries}</td>
            <td>{latency}</td>
            <td><Timestamp at=w.last_success_at/></td>
            <td><Timestamp at=w.last_failure_at/></td>
            <td><Timestamp at=Some(w.created_at)/></td>
            <td>
                <AdminOnly fallback=move || if enabled { "On" } else { "Off" }>
                    <EnabledToggle id=id.clone() name=name.clone() enabled held=held.clone() action=toggle/>
                </AdminOnly>
            </td>
            <td class="actions">
                <AdminOnly>
                    <a href=edit.clone()>"Edit"</a>
                    <a
                        href=test_link.clone()
                        on:click={
                            let for_test = for_test.clone();
                            move |ev| {
                                ev.prevent_default();
                                testing.set(Some(for_test.clone()));
                            }
                        }
                    >
                        "Send Test"
                    </a>
                </AdminOnly>
                <a href=logs>"Logs"</a>
                <AdminOnly>
                    <DeleteConfirm
                        id=delete_id.clone()
                        label=delete_label.clone()
                        group=delete_group.clone()
                        question=delete_question.clone()
                        action=delete
                    />
                </AdminOnly>
            </td>
        </tr>
    }
}

/// Delete, behind a confirmation naming the webhook.
#[component]
fn DeleteConfirm(
    id: String,
    label: String,
    group: String,
    question: String,
    action: ServerAction<DeleteWebhook>,
) -> impl IntoView {
    view! {
        <details class="confirm">
            <summary>"Delete"</summary>
            <div class="popover" role="group" aria-label=group>
                <p>{question}</p>
                <ActionForm action attr:class="inline">
                    <ProgramField/>
                    <input type="hidden" name="id" value=id/>
                    <button type="submit" class="button danger">{label}</button>
                </ActionForm>
            </div>
        </details>
    }
}

#[component]
fn SendTestDialog(webhook: WebhookView, close: Callback<()>) -> impl IntoView {
    let title = format!("Send Test: {}", webhook.name);
    let label = title.clone();
    // Keyboard users land inside the dialog; Escape or Close returns them to the list.
    let close_button = NodeRef::<leptos::html::Button>::new();
    Effect::new(move |_| {
        if let Some(button) = close_button.get() {
            let _ = button.focus();
        }
    });
    view! {
        <div class="modal-backdrop" on:click=move |_| close.run(())>
            <div
                class="modal card"
                role="dialog"
                aria-modal="true"
                aria-label=label
                on:click=|ev| ev.stop_propagation()
                on:keydown=move |ev| if ev.key() == "Escape" { close.run(()) }
            >
                <div class="modal-head">
                    <h2>{title}</h2>
                    <button type="button" class="button secondary" node_ref=close_button on:click=move |_| close.run(())>
                        "Close"
                    </button>
                </div>
                <SendTestPanel webhook/>
            </div>
        </div>
    }
}
