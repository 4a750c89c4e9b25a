//! Filter fields shared by the list screens (audit log, Deliveries). They sit in GET forms, so the
//! filters live in the URL and the fields read their values back from it.

use crate::api::audit::webhook_choices;
use crate::components::program::use_program;
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
            <input type="date" name="start" prop:value=start/>
        </label>
        <label>
            <span>"End Date"</span>
            <input type="date" name="end" prop:value=end/>
        </label>
    }
}

/// Select Webhook (`webhook_id`): the program's webhooks, or all of them.
#[component]
pub fn WebhookSelect() -> impl IntoView {
    let program = use_program();
    let chosen = param("webhook_id");
    let choices = Resource::new(move || program.get(), webhook_choices);
    view! {
        <label>
            <span>"Select Webhook"</span>
            <select name="webhook_id">
                <option value="">"All webhooks"</option>
                <Suspense>
                    {move || Suspend::new(async move {
                        choices
                            .await
                            .unwrap_or_default()
                            .into_iter()
                            .map(|w| {
                                let selected = chosen() == w.id;
                                view! { <option value=w.id selected=selected>{w.name}</option> }
                            })
                            .collect_view()
                    })}
                </Suspense>
            </select>
        </label>
    }
}
