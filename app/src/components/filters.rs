//! Filter fields shared by the list screens (audit log, Deliveries). They sit in GET forms, so the
//! filters live in the URL and the fields read their values back from it.

use crate::api::audit::webhook_choices;
use crate::components::program::use_program;
use herald::domain::views::WebhookChoiceList;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

/// A query-string value of the current page (empty when absent).
fn param(key: &'static str) -> impl Fn() -> String + Copy + Send + Sync + 'static {
    let query = use_query_map();
    move || query.with(|q| q.get(key).unwrap_or_default())
}

/// Start Date and End Date (`start`, `end`).
#[component]
pub fn DateRangeFields() -> impl IntoView {
    let (start, end) = (param("start"), param("end"));
    view! {
        <label>
            <span>"Start Date"</span>
            <input type="date" name="start" value=start/>
        </label>
        <label>
            <span>"End Date"</span>
            <input type="date" name="end" value=end/>
        </label>
    }
}

/// Select Webhook (`webhook_id`): the program's webhooks (the newest few hundred, with a hint to
/// search by name when there are more), or all of them.
#[component]
pub fn WebhookSelect() -> impl IntoView {
    let program = use_program();
    let chosen = param("webhook_id");
    let choices = Resource::new(
        move || (program.get(), chosen()),
        |(program, chosen)| webhook_choices(program, (!chosen.is_empty()).then_some(chosen)),
    );
    let loaded = move || async move { choices.await.unwrap_or_default() };
    view! {
        <label>
            <span>"Select Webhook"</span>
            <select name="webhook_id">
                <option value="">"All webhooks"</option>
                <Suspense>
                    {move || Suspend::new(async move {
                        loaded()
                            .await
                            .items
                            .into_iter()
                            .map(|w| {
                                let selected = chosen() == w.id;
                                view! { <option value=w.id selected=selected>{w.name}</option> }
                            })
                            .collect_view()
                    })}
                </Suspense>
            </select>
            <Suspense>
                {move || Suspend::new(async move {
                    loaded().await.more.then(|| view! {
                        <span class="hint">
                            {format!(
                                "The newest {} webhooks are listed; search by name for the others.",
                                WebhookChoiceList::LIMIT,
                            )}
                        </span>
                    })
                })}
            </Suspense>
        </label>
    }
}
