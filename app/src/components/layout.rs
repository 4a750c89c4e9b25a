//! The frame around every page: brand, navigation, and the hydration marker that tells browser
//! tests (and people debugging) when the page has become interactive (the wasm sets it once the
//! page's islands have hydrated; see `live`). Rendered by the server only.

use super::program::{provide_program, use_path, use_program};
use super::session::{is_auth_page, provide_me, AdminOnly, Me, UserMenu};
use crate::api::account::database_notice;
use crate::api::program_path;
use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_location;

#[component]
pub fn Layout(children: Children) -> impl IntoView {
    provide_program();
    provide_me();
    let program = use_program();
    let location = use_location();
    let signed_out_page = move || is_auth_page(&location.pathname.get());
    view! {
        <div
            class=move || if signed_out_page() { "app signed-out" } else { "app" }
            data-hydrated="false"
        >
            <aside class="sidebar" hidden=signed_out_page>
                <a class="brand" href=move || { let p = program.get(); if p.is_empty() { "/".to_owned() } else { program_path(&p, "") } }>
                    <span class="brand-mark" aria-hidden="true">"H"</span>
                    <span class="brand-name">"Herald"</span>
                </a>
                <ProgramSwitcher/>
                <nav aria-label="Main" hidden=move || program.get().is_empty()>
                    <ul>
                        <NavItem rest="/overview" label="Overview"/>
                        <NavItem rest="" label="Webhooks"/>
                        <NavItem rest="/audit-logs" label="Audit Logs"/>
                        <NavItem rest="/deliveries" label="Deliveries"/>
                        <NavItem rest="/event-types" label="Event Types"/>
                        <NavItem rest="/settings" label="Settings"/>
                        <AdminOnly>
                            <NavItem rest="/activity" label="Activity"/>
                        </AdminOnly>
                    </ul>
                </nav>
                <UserMenu/>
                <p class="sidebar-foot">{concat!("Herald ", env!("CARGO_PKG_VERSION"))}</p>
            </aside>
            <main class="content"><DatabaseBanner/>{children()}</main>
        </div>
    }
}

/// A banner on every signed-in page while the database refuses Herald's writes (its disk full,
/// the server unreachable), or a notice while its disk is nearly full; asked again at every
/// navigation.
#[component]
fn DatabaseBanner() -> impl IntoView {
    let location = use_location();
    let trouble = Resource::new(
        move || location.pathname.get(),
        |path| async move {
            if is_auth_page(&path) {
                Ok(None)
            } else {
                database_notice().await
            }
        },
    );
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                trouble.await.ok().flatten().map(|notice| {
                    let (class, role) = if notice.refusing {
                        ("banner-bad", "alert")
                    } else {
                        ("banner-warn", "status")
                    };
                    view! { <p class=class role=role>{notice.text}</p> }
                })
            })}
        </Suspense>
    }
}

/// A link to one of the current program's screens (`rest`: its path after `/p/{program}`).
#[component]
fn NavItem(rest: &'static str, label: &'static str) -> impl IntoView {
    let location = use_location();
    let program = use_program();
    let href = use_path(rest);
    let current = move || {
        let path = location.pathname.get();
        let inside = path
            .strip_prefix(&program_path(&program.get(), ""))
            .unwrap_or_default()
            .to_owned();
        if rest.is_empty() {
            inside.is_empty() || inside == "/" || inside.starts_with("/webhooks")
        } else {
            inside.starts_with(rest)
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

/// The program switcher: the current program's name, opening a list of the others the user can
/// open (plain links), and Manage programs for install admins.
#[component]
fn ProgramSwitcher() -> impl IntoView {
    let me = expect_context::<Me>().0;
    let program = use_program();
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                let user = me.await.ok().flatten()?;
                let current = program.get();
                let name = user
                    .programs
                    .iter()
                    .find(|p| p.id == current)
                    .map_or_else(|| "Choose a program".to_owned(), |p| p.name.clone());
                let others: Vec<_> = user.programs.iter().filter(|p| p.id != current).cloned().collect();
                Some(view! {
                    <details class="program-switcher">
                        <summary aria-label=format!("Program: {name}. Switch program")>
                            <span class="program-label">"Program"</span>
                            <span class="program-name">{name.clone()}</span>
                        </summary>
                        <ul class="program-menu">
                            {others.into_iter().map(|p| view! {
                                <li><a href=program_path(&p.id, "")>{p.name}<span class="muted">{format!(" · {}", p.role.label())}</span></a></li>
                            }).collect_view()}
                            {user.install_admin.then(|| view! { <li class="manage"><a href="/programs">"Manage programs"</a></li> })}
                        </ul>
                    </details>
                })
            })}
        </Suspense>
    }
}
