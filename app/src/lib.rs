//! Herald's admin console: pages, components and the `#[server]` functions they call.
//!
//! Screens reach data only through server functions (`api/`), which call the same engine and store
//! the REST API uses, in the same process. Pages render complete HTML on the server and hydrate in
//! the browser; forms that matter (filters, toggles, delete) work before the wasm arrives.

#![recursion_limit = "256"]

pub mod api;
pub mod components;
pub mod error;
pub mod pages;

use components::layout::Layout;
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::path;
use leptos_router::SsrMode;

/// The HTML document around the app (server side only renders it).
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light"/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <HydrationScripts options islands=true/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Stylesheet id="leptos" href="/pkg/herald.css"/>
        <Title formatter=|text: String| if text.is_empty() { "Herald".to_owned() } else { format!("{text} · Herald") }/>
        <Router>
            <Layout>
                <Routes fallback=pages::not_found::NotFound>
                    <Route path=path!("/") view=pages::programs::NoProgramPage/>
                    <Route path=path!("/programs") view=pages::programs::ProgramsPage ssr=SsrMode::Async/>
                    <Route path=path!("/webhooks") view=pages::programs::NoProgramPage/>
                    <Route path=path!("/webhooks/*any") view=pages::programs::NoProgramPage/>
                    <Route path=path!("/overview") view=pages::programs::NoProgramPage/>
                    <Route path=path!("/audit-logs") view=pages::programs::NoProgramPage/>
                    <Route path=path!("/audit-logs/*any") view=pages::programs::NoProgramPage/>
                    <Route path=path!("/deliveries") view=pages::programs::NoProgramPage/>
                    <Route path=path!("/event-types") view=pages::programs::NoProgramPage/>
                    <Route path=path!("/settings") view=pages::programs::NoProgramPage/>
                    <Route path=path!("/activity") view=pages::programs::NoProgramPage/>
                    <Route path=path!("/p/:program") view=pages::webhooks::WebhooksPage ssr=SsrMode::Async/>
                    <Route path=path!("/p/:program/webhooks/new") view=pages::webhook_form::NewWebhookPage ssr=SsrMode::Async/>
                    <Route path=path!("/p/:program/webhooks/:id") view=pages::webhook_detail::WebhookPage ssr=SsrMode::Async/>
                    <Route path=path!("/p/:program/webhooks/:id/edit") view=pages::webhook_form::EditWebhookPage ssr=SsrMode::Async/>
                    <Route path=path!("/p/:program/overview") view=pages::overview::OverviewPage ssr=SsrMode::Async/>
                    <Route path=path!("/p/:program/audit-logs") view=pages::audit_logs::AuditLogsPage ssr=SsrMode::Async/>
                    <Route path=path!("/p/:program/audit-logs/:id") view=pages::attempt_detail::AttemptPage ssr=SsrMode::Async/>
                    <Route path=path!("/p/:program/deliveries") view=pages::deliveries::DeliveriesPage ssr=SsrMode::Async/>
                    <Route path=path!("/p/:program/event-types") view=pages::event_types::EventTypesPage ssr=SsrMode::Async/>
                    <Route path=path!("/p/:program/settings") view=pages::settings::SettingsPage ssr=SsrMode::Async/>
                    <Route path=path!("/p/:program/activity") view=pages::activity::ActivityPage ssr=SsrMode::Async/>
                    <Route path=path!("/login") view=pages::sign_in::LoginPage ssr=SsrMode::Async/>
                    <Route path=path!("/setup") view=pages::sign_in::SetupPage ssr=SsrMode::Async/>
                </Routes>
            </Layout>
        </Router>
    }
}

/// The wasm entry point. The console runs in islands mode: the server renders every page, and the
/// browser hydrates only the `#[island]` components (the island script calls each one's own entry
/// point right after this returns), so the wasm holds those and nothing else.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_islands();
    components::live::own_page();
    components::live::after_islands();
}
