//! The program a page acts in. Console URLs carry it (`/p/{program}/…`), so links, reloads and
//! back/forward keep it; every server function is told it and checks the caller's role there.

use crate::api::program_path;
use leptos::prelude::*;
use leptos_router::hooks::use_location;

/// The program a console path names, if any.
pub fn program_of(path: &str) -> Option<&str> {
    path.strip_prefix("/p/")?
        .split('/')
        .next()
        .filter(|p| !p.is_empty())
}

/// The program of the current URL (empty outside any program's pages).
pub fn use_program() -> Memo<String> {
    let location = use_location();
    Memo::new(move |_| {
        location
            .pathname
            .with(|p| program_of(p).unwrap_or_default().to_owned())
    })
}

/// A path inside the current program, following it when the URL changes.
pub fn use_path(rest: &'static str) -> Signal<String> {
    let program = use_program();
    Signal::derive(move || program_path(&program.get(), rest))
}

/// The current program as a hidden form field, for forms that post to server functions.
#[component]
pub fn ProgramField() -> impl IntoView {
    let program = use_program();
    view! { <input type="hidden" name="program" value=move || program.get()/> }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_their_program() {
        assert_eq!(program_of("/p/prg_1/webhooks/new"), Some("prg_1"));
        assert_eq!(program_of("/p/prg_1"), Some("prg_1"));
        assert_eq!(program_of("/p/"), None);
        assert_eq!(program_of("/settings"), None);
    }
}
