//! Insight pieces shared by the Webhooks list, a webhook's page and the Overview: the window
//! picker, flag badges and sentences, figure tiles, and the charts (SVG drawn by the server) with
//! a table of the same series for screen readers and for reading exact numbers.

use crate::pages::audit_logs::urlencode;
use herald::domain::insights::{format_ms, Figures, Flag, SeriesPoint, Window};
use herald::domain::views::InsightsView;
use leptos::prelude::*;
use leptos_router::hooks::{use_location, use_query_map};

/// The window a page shows, from its `?window=` (24 h when absent or unknown).
pub fn use_window() -> Memo<Window> {
    let query = use_query_map();
    Memo::new(move |_| {
        query.with(|q| Window::parse(&q.get("window").unwrap_or_default()).unwrap_or_default())
    })
}

/// Links to the same page over 24 h, 7 d and 30 d (plain links: they work before the wasm loads).
/// `keep` names the query parameters that carry over (a list's filters).
#[component]
pub fn WindowTabs(keep: &'static [&'static str]) -> impl IntoView {
    let query = use_query_map();
    let location = use_location();
    let current = use_window();
    let href = Callback::new(move |w: Window| {
        let pairs: Vec<(String, String)> = query.with(|q| {
            keep.iter()
                .filter_map(|k| q.get(k).map(|v| ((*k).to_owned(), v)))
                .collect()
        });
        window_href(&location.pathname.get(), &pairs, w)
    });
    view! { <WindowLinks current=current.into() href/> }
}

/// `path` over window `w`, keeping the query parameters `pairs`.
pub fn window_href(path: &str, pairs: &[(String, String)], w: Window) -> String {
    let mut query: Vec<String> = pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", urlencode(v)))
        .collect();
    query.push(format!("window={}", w.as_str()));
    format!("{path}?{}", query.join("&"))
}

/// The three window tabs, linking where `href` says (without the router: islands use it too).
#[component]
pub fn WindowLinks(current: Signal<Window>, href: Callback<Window, String>) -> impl IntoView {
    view! {
        <nav class="window-tabs" aria-label="Time window">
            {Window::ALL
                .into_iter()
                .map(|w| {
                    let text = match w {
                        Window::Day => "24 hours",
                        Window::Week => "7 days",
                        Window::Month => "30 days",
                    };
                    view! {
                        <a
                            href=move || href.run(w)
                            class=move || if current.get() == w { "tab active" } else { "tab" }
                            aria-current=move || (current.get() == w).then_some("page")
                        >
                            {text}
                        </a>
                    }
                })
                .collect_view()}
        </nav>
    }
}

/// One badge per flag, its sentence on hover and for screen readers.
#[component]
pub fn FlagBadges(flags: Vec<Flag>) -> impl IntoView {
    flags
        .into_iter()
        .map(|f| {
            view! {
                <span class="badge badge-warn flag" title=f.sentence.clone()>
                    {f.kind.label()}
                    <span class="visually-hidden">{format!(": {}", f.sentence)}</span>
                </span>
            }
        })
        .collect_view()
}

/// The flags as sentences (a webhook's page, the Overview).
#[component]
pub fn FlagNotes(flags: Vec<Flag>) -> impl IntoView {
    (!flags.is_empty()).then(|| {
        view! {
            <section class="flags card" aria-label="Flags">
                <ul>
                    {flags
                        .into_iter()
                        .map(|f| view! { <li><span class="badge badge-warn">{f.kind.label()}</span>" "{f.sentence}</li> })
                        .collect_view()}
                </ul>
            </section>
        }
    })
}

pub fn percent(rate: Option<f64>) -> String {
    rate.map_or_else(|| "—".to_owned(), |r| format!("{r:.1}%"))
}

pub fn millis(ms: Option<f64>) -> String {
    ms.map_or_else(|| "—".to_owned(), format_ms)
}

/// A lag as people read it: "840 ms", "12.5 s", "3.2 min", "1.5 h".
pub fn lag(ms: Option<f64>) -> String {
    match ms {
        None => "—".to_owned(),
        Some(ms) if ms < 60_000.0 => format_ms(ms),
        Some(ms) if ms < 3_600_000.0 => format!("{:.1} min", ms / 60_000.0),
        Some(ms) => format!("{:.1} h", ms / 3_600_000.0),
    }
}

/// The figure tiles of a window.
#[component]
pub fn FigureTiles(figures: Figures) -> impl IntoView {
    let f = figures;
    let over = f.window.label();
    view! {
        <section class="stats" aria-label="Figures">
            <Tile label="Success Rate" value=percent(f.success_rate) hint=format!("{} of {} attempts succeeded, {over}", f.succeeded, f.attempts)/>
            <Tile label="Attempts" value=f.attempts.to_string() hint=format!("{} succeeded, {} failed, {over}", f.succeeded, f.failed)/>
            <Tile label="Retries" value=f.retries.to_string() hint=format!("attempts after the first of their delivery, {over}")/>
            <Tile label="Dead-lettered" value=f.dead_lettered.to_string() hint=format!("deliveries that used up their retries, {over}")/>
            <Tile label="Latency p50 / p95" value=format!("{} / {}", millis(f.p50_latency_ms), millis(f.p95_latency_ms)) hint=format!("HTTP round trip, {over}; average {}", millis(f.avg_latency_ms))/>
            <Tile label="Lag p50 / p95" value=format!("{} / {}", lag(f.p50_lag_ms), lag(f.p95_lag_ms)) hint=format!("event accepted → delivered, {over}")/>
        </section>
    }
}

#[component]
fn Tile(label: &'static str, value: String, hint: String) -> impl IntoView {
    let title = hint.clone();
    view! {
        <div class="stat" title=title>
            <span class="stat-label">{label}</span>
            <span class="stat-value">{value}</span>
            <span class="stat-hint">{hint}</span>
        </div>
    }
}

/// Both charts of an insights view, each with its table.
#[component]
pub fn Charts(insights: InsightsView) -> impl IntoView {
    let window = insights.window;
    let rows = insights.series.clone();
    let rows_latency = insights.series;
    view! {
        <section class="card charts">
            <figure class="chart-figure">
                <div class="chart-box" inner_html=insights.deliveries_svg/>
                <figcaption>
                    <span class="key key-ok">"Succeeded"</span>
                    <span class="key key-bad">"Failed"</span>
                </figcaption>
                <SeriesTable caption="Attempts by outcome" window rows headers=["Succeeded", "Failed"] cells=|p: &SeriesPoint| [p.succeeded.to_string(), p.failed.to_string()]/>
            </figure>
            <figure class="chart-figure">
                <div class="chart-box" inner_html=insights.latency_svg/>
                <figcaption>
                    <span class="key key-p50">"p50"</span>
                    <span class="key key-p95">"p95"</span>
                </figcaption>
                <SeriesTable caption="Latency" window rows=rows_latency headers=["p50", "p95"] cells=|p: &SeriesPoint| [millis(p.p50_latency_ms), millis(p.p95_latency_ms)]/>
            </figure>
        </section>
    }
}

/// The numbers behind a chart, in a table that opens on request.
#[component]
fn SeriesTable(
    caption: &'static str,
    window: Window,
    rows: Vec<SeriesPoint>,
    headers: [&'static str; 2],
    cells: fn(&SeriesPoint) -> [String; 2],
) -> impl IntoView {
    let time = move |p: &SeriesPoint| match window {
        Window::Day => p.start.format("%b %-d %H:00 UTC").to_string(),
        Window::Week => p.start.format("%b %-d %H:00 UTC").to_string(),
        Window::Month => p.start.format("%b %-d").to_string(),
    };
    view! {
        <details class="chart-table">
            <summary>{format!("{caption} as a table")}</summary>
            <table class="data">
                <caption class="visually-hidden">{caption}</caption>
                <thead>
                    <tr>
                        <th scope="col">"From"</th>
                        <th scope="col">{headers[0]}</th>
                        <th scope="col">{headers[1]}</th>
                    </tr>
                </thead>
                <tbody>
                    {rows
                        .iter()
                        .map(|p| {
                            let [a, b] = cells(p);
                            view! { <tr><th scope="row">{time(p)}</th><td>{a}</td><td>{b}</td></tr> }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </details>
    }
}
