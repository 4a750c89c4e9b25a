//! The program's Overview (`/p/:program/overview`): attempts by outcome and latency across all its
//! webhooks over a window, the flags raised, and each webhook's figures, busiest first.

use crate::api::program_path;
use crate::api::webhooks::load_program_insights;
use crate::components::insights::{
    millis, percent, use_window, Charts, FigureTiles, FlagBadges, FlagNotes, WindowTabs,
};
use crate::components::program::use_program;
use crate::components::status::WebhookBadge;
use herald::domain::views::ProgramInsightsView;
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn OverviewPage() -> impl IntoView {
    let program = use_program();
    let window = use_window();
    let overview = Resource::new(
        move || (program.get(), window.get()),
        |(program, window)| load_program_insights(program, window.as_str().to_owned()),
    );
    view! {
        <Title text="Overview"/>
        <header class="page-head">
            <div>
                <h1>"Overview"</h1>
                <p class="lede">"How deliveries are going across all of this program's webhooks."</p>
            </div>
            <WindowTabs keep=&[]/>
        </header>
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match overview.await {
                    Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                    Ok(o) => view! { <Overview o/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn Overview(o: ProgramInsightsView) -> impl IntoView {
    let program = use_program().get_untracked();
    let window = o.insights.window;
    view! {
        <FlagNotes flags=o.insights.flags.clone()/>
        <FigureTiles figures=o.insights.figures.clone()/>
        <Charts insights=o.insights.clone()/>
        <section class="card">
            <h2>"Webhooks"</h2>
            {if o.webhooks.is_empty() {
                view! { <p class="muted">"No webhooks yet."</p> }.into_any()
            } else {
                view! {
                    <div class="table-wrap flat">
                        <table class="data">
                            <thead>
                                <tr>
                                    <th scope="col">"Name"</th>
                                    <th scope="col">"Status"</th>
                                    <th scope="col">"Attempts"</th>
                                    <th scope="col">"Success Rate"</th>
                                    <th scope="col">"Retries"</th>
                                    <th scope="col">"Dead-lettered"</th>
                                    <th scope="col">"Latency p95"</th>
                                </tr>
                            </thead>
                            <tbody>
                                {o.webhooks
                                    .into_iter()
                                    .map(|w| {
                                        let f = w.figures.clone().unwrap_or_else(|| {
                                            herald::domain::insights::Rollup::default().figures(window)
                                        });
                                        let href = program_path(&program, &format!("/webhooks/{}?window={}", w.id, window.as_str()));
                                        view! {
                                            <tr>
                                                <th scope="row" class="name"><a href=href>{w.name.clone()}</a></th>
                                                <td class="status"><WebhookBadge status=w.status/>" "<FlagBadges flags=w.flags.clone()/></td>
                                                <td>{f.attempts}</td>
                                                <td>{percent(f.success_rate)}</td>
                                                <td>{f.retries}</td>
                                                <td>{f.dead_lettered}</td>
                                                <td>{millis(f.p95_latency_ms)}</td>
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
