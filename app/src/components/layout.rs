//! The frame around every page: brand, navigation, and the hydration marker that tells browser
//! tests (and people debugging) when the page has become interactive.

use super::session::{is_auth_page, provide_me, AdminOnly, UserMenu};
use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_location;

#[component]
pub fn Layout(children: Children) -> impl IntoView {
    let hydrated = RwSignal::new(false);
    // Effects run only in the browser, so this flips once the wasm has taken over the page.
    Effect::new(move |_| hydrated.set(true));
    provide_me();
    let location = use_location();
    let signed_out_page = move || is_auth_page(&location.pathname.get());
    view! {
        <div
            class=move || if signed_out_page() { "app signed-out" } else { "app" }
            data-hydrated=move || hydrated.get().to_string()
        >
            <aside class="sidebar" hidden=signed_out_page>
                <a class="brand" href="/">
                    <span class="brand-mark" aria-hidden="true">"H"</span>
                    <span class="brand-name">"Herald"</span>
                </a>
                <nav aria-label="Main">
                    <ul>
                        <NavItem href="/" label="Webhooks"/>
                        <NavItem href="/audit-logs" label="Audit Logs"/>
                        <NavItem href="/event-types" label="Event Types"/>
                        <NavItem href="/settings" label="Settings"/>
                        <AdminOnly>
                            <NavItem href="/activity" label="Activity"/>
                        </AdminOnly>
                    </ul>
                </nav>
                <UserMenu/>
                <p class="sidebar-foot">{concat!("Herald ", env!("CARGO_PKG_VERSION"))}</p>
            </aside>
            <main class="content">{children()}</main>
        </div>
    }
}

#[component]
fn NavItem(href: &'static str, label: &'static str) -> impl IntoView {
    let location = use_location();
    let current = move || {
        let path = location.pathname.get();
        if href == "/" {
            path == "/" || path.starts_with("/webhooks")
        } else {
            path.starts_with(href)
        }
    };
    view! {
        <li>
            <A href=href attr:class=move || if current() { "nav-link active" } else { "nav-link" }>
                {label}
            </A>
        </li>
    }
}
