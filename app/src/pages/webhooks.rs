//! The Webhooks list (`/`): filters in the URL (the name searches as you type), one row per webhook
//! with its health figures, the Enabled switch, and the row actions. Figures refresh every few
//! seconds while the page is open, without touching the filters or the scroll position.

use crate::api::program_path;
use crate::api::webhooks::{list_webhooks, DeleteWebhook, SetWebhookEnabled};
use crate::components::insights::{millis, percent, window_href, FlagBadges, WindowLinks};
use crate::components::program::ProgramField;
use crate::components::program::{provide_program_of, use_path, use_program};
use crate::components::send_test::SendTestPanel;
use crate::components::session::{can_manage, AdminOnly, CanManage};
use crate::components::status::WebhookBadge;
use crate::components::time::Timestamp;
use crate::components::timer::every;
use crate::components::toggle::EnabledToggle;
use herald::domain::insights::Window;
use herald::domain::views::WebhookView;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

/// How often the list's figures refresh.
const REFRESH_MS: u32 = 5_000;
/// How long typing in Name waits before searching.
const DEBOUNCE_MS: u32 = 350;

#[component]
pub fn WebhooksPage() -> impl IntoView {
    let query = use_query_map();
    let param = move |k: &str| query.with(|q| q.get(k).unwrap_or_default());
    let program = use_program();
    view! {
        <Title text="Webhooks"/>
        <Suspense fallback=|| view! { <p class="muted">"Loading webhooks…"</p> }>
            {move || {
                let admin = can_manage();
                Suspend::new(async move {
                    view! {
                        <WebhookList
                            program=program.get()
                            admin=admin.await
                            name=param("name")
                            start=param("start")
                            end=param("end")
                            window=param("window")
                            cursor=param("cursor")
                        />
                    }
                })
            }}
        </Suspense>
    }
}

/// The list itself, with its filters: an island, because it searches as you type, refreshes its
/// figures and acts on rows in place. The page hands it the URL's filters and the viewer's role.
#[island]
fn WebhookList(
    program: String,
    admin: bool,
    name: String,
    start: String,
    end: String,
    window: String,
    cursor: String,
) -> impl IntoView {
    provide_program_of(program.clone());
    provide_context(CanManage(admin));
    let window = Window::parse(&window).unwrap_or_default();
    let name = RwSignal::new(name);
    let toggle = ServerAction::<SetWebhookEnabled>::new();
    let delete = ServerAction::<DeleteWebhook>::new();
    let testing = RwSignal::new(None::<WebhookView>);
    let tick = RwSignal::new(0u32);
    every(REFRESH_MS, move || tick.update(|t| *t = t.wrapping_add(1)));
    let create_link = program_path(&program, "/webhooks/new");
    let head_create = create_link.clone();
    let filtered = !(name.get_untracked().is_empty() && start.is_empty() && end.is_empty());
    // A new search starts from the first page.
    let cursor = RwSignal::new(cursor);
    let first_page = move || cursor.with(String::is_empty);
    let hooks = Resource::new(
        move || {
            (
                name.get(),
                cursor.get(),
                toggle.version().get(),
                delete.version().get(),
                tick.get(),
            )
        },
        {
            let (program, start, end) = (program.clone(), start.clone(), end.clone());
            move |(name, cursor, ..): (String, String, usize, usize, u32)| {
                list_webhooks(
                    program.clone(),
                    name,
                    start.clone(),
                    end.clone(),
                    window.as_str().to_owned(),
                    (!cursor.is_empty()).then_some(cursor),
                )
            }
        },
    );
    // The list's URL with the filters in force, over window `w`, from `cursor`.
    let list_href = {
        let (program, start, end) = (program.clone(), start.clone(), end.clone());
        move |w: Window, cursor: &str| {
            let mut pairs = vec![
                ("start".to_owned(), start.clone()),
                ("end".to_owned(), end.clone()),
                ("name".to_owned(), name.get_untracked()),
            ];
            pairs.push(("cursor".to_owned(), cursor.to_owned()));
            window_href(&program_path(&program, ""), &pairs, w)
        }
    };
    let tab_href = {
        let list_href = list_href.clone();
        Callback::new(move |w: Window| {
            name.track();
            list_href(w, "")
        })
    };
    let search_as_you_type = {
        let list_href = list_href.clone();
        move |ev: leptos::ev::Event| {
            let typed = event_target_value(&ev);
            let list_href = list_href.clone();
            debounce(DEBOUNCE_MS, move || {
                cursor.set(String::new());
                name.set(typed);
                replace_url(&list_href(window, ""));
            });
        }
    };
    view! {
        <header class="page-head">
            <div>
                <h1>"Webhooks"</h1>
                <p class="lede">"Endpoints that receive your program's events, and how their deliveries are going."</p>
            </div>
            <AdminOnly>
                <a class="button" href=head_create.clone()>"Create Webhook"</a>
            </AdminOnly>
        </header>
        <form method="get" action="" class="filters" aria-label="Filter webhooks">
            <label>
                <span>"Start Date"</span>
                <input type="date" name="start" value=start.clone()/>
            </label>
            <label>
                <span>"End Date"</span>
                <input type="date" name="end" value=end.clone()/>
            </label>
            <label class="grow">
                <span>"Name"</span>
                <input
                    type="search"
                    name="name"
                    placeholder="Search by name"
                    value=name.get_untracked()
                    on:input=search_as_you_type
                />
            </label>
            <input type="hidden" name="window" value=window.as_str()/>
            <button type="submit" class="button">"Search"</button>
        </form>
        <div class="section-head">
            <p class="muted">{format!("Figures over the {}.", window.label())}</p>
            <WindowLinks current=Signal::stored(window) href=tab_href/>
        </div>
        {move || delete.value().get().and_then(Result::err).map(|e| view! { <p class="error" role="alert">{e.to_string()}</p> })}
        <Transition fallback=|| view! { <p class="muted">"Loading webhooks…"</p> }>
            {move || {
                let list_href = list_href.clone();
                let create_link = create_link.clone();
                Suspend::new(async move {
                    match hooks.await {
                        Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                        Ok(page) if page.items.is_empty() && first_page() => {
                            let filtered = filtered || !name.get_untracked().is_empty();
                            view! { <EmptyState filtered create_link/> }.into_any()
                        }
                        Ok(page) => {
                            let first = (!first_page()).then(|| list_href(window, ""));
                            let next = page.next_cursor.as_deref().map(|c| list_href(window, c));
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
                })
            }}
        </Transition>
        {move || testing.get().map(|w| view! { <SendTestDialog webhook=w close=Callback::new(move |_| testing.set(None))/> })}
    }
}

/// Puts `url` in the address bar without loading it (the search typed so far), so a reload or a
/// shared link shows the same list.
fn replace_url(url: &str) {
    #[cfg(feature = "hydrate")]
    if let Ok(history) = window().history() {
        let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(url));
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = url;
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
fn EmptyState(filtered: bool, create_link: String) -> impl IntoView {
    let list = use_path("");
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
                <a class="button" href=create_link.clone()>"Create Webhook"</a>
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
            <table class="data webhooks">
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
