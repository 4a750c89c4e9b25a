//! The signed-in user in the page: loaded once per visit to the app's pages (again after signing
//! in or out), shared through context, and used to show admins their controls. Hiding is a
//! courtesy: every server function checks the role itself.

use super::program::use_program;
use crate::api::account::{signed_in_user, Logout};
use crate::error::AppError;
use herald::domain::account::{CurrentUser, Role};
use leptos::prelude::*;
use leptos_router::hooks::use_location;

/// The signed-in user (`None` on the sign-in and setup pages).
#[derive(Clone, Copy)]
pub struct Me(pub Resource<Result<Option<CurrentUser>, AppError>>);

/// Whether `path` is one of the pages anonymous visitors use.
pub fn is_auth_page(path: &str) -> bool {
    crate::api::SIGNED_OUT_PAGES.contains(&path)
}

/// Loads the signed-in user into context; call once, in the layout.
pub fn provide_me() -> Me {
    let location = use_location();
    // Refetched when crossing between the sign-in pages and the app (sign-in, sign-out).
    let me = Me(Resource::new(
        move || is_auth_page(&location.pathname.get()),
        |_| signed_in_user(),
    ));
    provide_context(me);
    me
}

/// Whether the signed-in user manages the current program, handed to an island by the page around
/// it (islands cannot read the layout's `Me`); `AdminOnly` inside the island reads it.
#[derive(Clone, Copy)]
pub struct CanManage(pub bool);

/// Whether the signed-in user manages the current program (server side: for an island's props).
pub fn can_manage() -> impl std::future::Future<Output = bool> + Send + 'static {
    let me = expect_context::<Me>().0;
    let program = use_program();
    async move { role_of(&me.await, &program.get_untracked()).is_some_and(Role::can_manage) }
}

fn role_of(me: &Result<Option<CurrentUser>, AppError>, program: &str) -> Option<Role> {
    me.as_ref()
        .ok()
        .and_then(|u| u.as_ref())
        .and_then(|u| u.role_in(program))
}

/// Renders `children` for admins of the current program only (and `fallback`, if given, for
/// everyone else).
#[component]
pub fn AdminOnly(children: ChildrenFn, #[prop(optional, into)] fallback: ViewFn) -> impl IntoView {
    if let Some(CanManage(admin)) = use_context::<CanManage>() {
        return if admin { children() } else { fallback.run() };
    }
    let children = StoredValue::new(children);
    let fallback = StoredValue::new(fallback);
    view! {
        <Suspense fallback=|| ()>
            {move || {
                let admin = can_manage();
                Suspend::new(async move {
                if admin.await {
                    children.with_value(|c| c()).into_any()
                } else {
                    fallback.with_value(|f| f.run()).into_any()
                }
            })}}
        </Suspense>
    }
    .into_any()
}

/// Who is signed in, their role in the current program, and the Sign out button.
#[component]
pub fn UserMenu() -> impl IntoView {
    let me = expect_context::<Me>().0;
    let program = use_program();
    let logout = ServerAction::<Logout>::new();
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                let user = me.await.ok().flatten()?;
                let role = user.role_in(&program.get()).map(Role::label).unwrap_or_default();
                // Outside a program (the Programs page) an install admin has no role there.
                let role = match (role, user.install_admin) {
                    ("", true) => "Install admin".to_owned(),
                    (role, true) => format!("{role} · Install admin"),
                    (role, false) => role.to_owned(),
                };
                Some(view! {
                    <div class="user-menu">
                        <p class="user-email" title=user.email.clone()>{user.email.clone()}</p>
                        <p class="user-role">{role}</p>
                        <ActionForm action=logout attr:class="inline">
                            <button type="submit" class="button secondary small">"Sign out"</button>
                        </ActionForm>
                    </div>
                })
            })}
        </Suspense>
    }
}
