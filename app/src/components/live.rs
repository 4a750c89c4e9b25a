//! What the browser does for the server-rendered part of a page once the wasm has started, in
//! islands mode: only the islands hydrate, so the rest of the page (server components) gets its
//! few live touches here, with no per-component code in the wasm.
//!
//! - Every `<time datetime>` outside an island switches from UTC to the viewer's local time (the
//!   islands' own `Timestamp`s do it themselves).
//! - Forms outside islands submit in place (`enhance`).
//! - The layout's `data-hydrated` marker flips to `true`, after the islands have hydrated: browser
//!   tests (and people debugging) wait on it.
//! - The islands of a page hydrate under a reactive owner of their own, which is disposed when a
//!   form's answer replaces the page's content: the replaced islands' timers, effects and signals
//!   end with their HTML (before, each swap on the Deliveries page left one more replay-progress
//!   timer running, detached).

use std::cell::RefCell;

use leptos::prelude::Owner;
use wasm_bindgen::JsCast;
use web_sys::Element;

thread_local! {
    /// The owner of the islands now on the page: a child of the islands' root owner, which
    /// `hydrate_islands` leaks and leaves current.
    static PAGE: RefCell<Option<Owner>> = const { RefCell::new(None) };
}

/// Makes a fresh owner for a page's islands the current one: `hydrate` calls it once the islands'
/// root owner is current, before the island script hydrates the first page's islands (they
/// hydrate under the current owner); `refresh` calls it for the islands a swap put in place.
pub fn own_page() {
    let root = PAGE
        .with_borrow(|page| page.as_ref().and_then(Owner::parent))
        .or_else(Owner::current);
    let page = match root {
        Some(root) => root.child(),
        None => Owner::new(),
    };
    page.set();
    PAGE.with_borrow_mut(|current| *current = Some(page));
}

/// Disposes the islands now on the page (before their HTML is replaced): runs their cleanups,
/// which stop their timers, and drops their reactive values.
pub fn dispose_islands() {
    if let Some(page) = PAGE.with_borrow(Clone::clone) {
        page.cleanup();
    }
}

/// Runs once the island script has hydrated the page's islands.
pub fn after_islands() {
    // The island script hydrates each island right after `hydrate()` returns, chaining promises
    // (microtasks); a zero timeout runs after all of them.
    gloo_timers::callback::Timeout::new(0, || {
        let document = leptos::prelude::document();
        if let Some(body) = document.body() {
            local_times(&body);
        }
        super::enhance::enhance_forms();
        if let Ok(Some(app)) = document.query_selector("div.app") {
            let _ = app.set_attribute("data-hydrated", "true");
        }
    })
    .forget();
}

/// After `root`'s content was replaced by server-rendered HTML: local times, and its islands
/// hydrated through the island script's own entry point.
pub fn refresh(root: &Element) {
    local_times(root);
    let hydrate = js_sys::Reflect::get(&leptos::prelude::window(), &"__hydrateIsland".into())
        .ok()
        .and_then(|f| f.dyn_into::<js_sys::Function>().ok());
    let (Some(hydrate), Ok(islands)) = (hydrate, root.query_selector_all("leptos-island")) else {
        return;
    };
    // The island script calls each island's function before its first `await`: they all
    // hydrate under the new page's owner.
    own_page();
    for i in 0..islands.length() {
        let Some(island) = islands.item(i).and_then(|n| n.dyn_into::<Element>().ok()) else {
            continue;
        };
        // An island inside another hydrates with it.
        let nested = island
            .parent_element()
            .and_then(|p| p.closest("leptos-island").ok().flatten())
            .is_some();
        if let (false, Some(name)) = (nested, island.get_attribute("data-component")) {
            let _ = hydrate.call2(&wasm_bindgen::JsValue::NULL, &island, &name.into());
        }
    }
}

/// Every `<time datetime>` under `root` outside an island, in the viewer's local time.
fn local_times(root: &Element) {
    let Ok(times) = root.query_selector_all("time[datetime]") else {
        return;
    };
    for i in 0..times.length() {
        let Some(el) = times.item(i).and_then(|n| n.dyn_into::<Element>().ok()) else {
            continue;
        };
        if el.closest("leptos-island").ok().flatten().is_some() {
            continue;
        }
        let local = el
            .get_attribute("datetime")
            .map(|iso| js_sys::Date::parse(&iso))
            .filter(|millis| millis.is_finite())
            .and_then(|millis| super::time::local_text(millis as i64));
        if let Some(text) = local {
            el.set_text_content(Some(&text));
        }
    }
}
