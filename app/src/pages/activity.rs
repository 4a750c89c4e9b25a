//! The admin activity log (`/activity`): who created, changed, deleted, tested, rotated or
//! replayed what, and when; newest first, 50 a page.

use crate::api::account::list_activity;
use crate::api::program_path;
use crate::components::program::use_program;
use crate::components::time::Timestamp;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[component]
pub fn ActivityPage() -> impl IntoView {
    let query = use_query_map();
    let before = move || query.with(|q| q.get("before").unwrap_or_default());
    let program = use_program();
    let rows = Resource::new(
        move || (program.get(), before()),
        |(program, before)| list_activity(program, before),
    );
    view! {
        <Title text="Activity"/>
        <header class="page-head">
            <div>
                <h1>"Activity"</h1>
                <p class="lede">"Every change made in the console, through the API or at the command line."</p>
            </div>
        </header>
        <Transition fallback=|| view! { <p class="muted">"Loading activity…"</p> }>
            {move || Suspend::new(async move {
                match rows.await {
                    Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                    Ok(list) if list.is_empty() => view! { <section class="empty card"><p>"Nothing has been changed yet."</p></section> }.into_any(),
                    Ok(list) => {
                        let more = (list.len() == 50).then(|| program_path(&program.get_untracked(), &format!("/activity?before={}", list[49].id)));
                        view! {
                            <div class="table-wrap">
                                <table class="data">
                                    <thead><tr>
                                        <th scope="col">"When"</th><th scope="col">"Who"</th><th scope="col">"Did"</th>
                                        <th scope="col">"What"</th><th scope="col">"Details"</th>
                                    </tr></thead>
                                    <tbody>
                                        {list.into_iter().map(|a| view! {
                                            <tr>
                                                <td><Timestamp at=Some(a.created_at)/></td>
                                                <td>{a.actor}</td>
                                                <td>{a.action}</td>
                                                <td>{a.target}</td>
                                                <td class="muted">{a.detail}</td>
                                            </tr>
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            </div>
                            {more.map(|href| view! { <p class="pager"><a class="button secondary" href=href>"Older"</a></p> })}
                        }.into_any()
                    }
                }
            })}
        </Transition>
    }
}
