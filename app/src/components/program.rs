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

/// The program of the current URL, computed once for the whole page (see `provide_program`), or
/// handed to an island by the page around it (`provide_program_of`).
#[derive(Clone, Copy)]
struct CurrentProgram(Signal<String>);

/// Puts the current program in context; call once, in the layout, so every component reads the
/// same long-lived value (a component's own copy would die with it while links still read it).
pub fn provide_program() {
    let location = use_location();
    // Pages outside any program (Programs) keep the last one: links stay useful there, and the
    // page being left never refetches its data for "no program" on the way out.
    let program = Memo::new(move |last: Option<&String>| {
        location.pathname.with(|p| {
            program_of(p)
                .map(str::to_owned)
                .or_else(|| last.cloned())
                .unwrap_or_default()
        })
    });
    provide_context(CurrentProgram(program.into()));
}

/// Puts `program` in context inside an island: islands hydrate on their own in the browser, with
/// neither the router nor the layout's context, so the page passes the program as a prop.
pub fn provide_program_of(program: String) {
    provide_context(CurrentProgram(Signal::stored(program)));
}

/// The program of the current URL (outside any program's pages: the last one visited, or empty).
pub fn use_program() -> Signal<String> {
    expect_context::<CurrentProgram>().0
}

/// A path inside the current program, following it when the URL changes.
pub fn use_path(rest: &'static str) -> impl Fn() -> String + Copy + Send + Sync + 'static {
    let program = use_program();
    move || program_path(&program.get(), rest)
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
