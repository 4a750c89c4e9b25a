//! Forms outside islands, submitted in place (islands mode, in the browser).
//!
//! Every form that changes something posts to a server function (`/sfn/…`) and works without the
//! wasm: the server answers with a redirect back to the page, which it renders again with the
//! outcome (an error beside its field, or the value `returned` put in the URL). Once the wasm runs,
//! one listener takes those posts over so the page does not reload: it posts the same body with
//! `fetch`, which follows the same redirect, and swaps the page's content for the HTML that comes
//! back. After a refusal the form keeps what the user typed (passwords excepted), and focus goes
//! to the first field with a message. No code per form or per result type: the wasm only moves
//! HTML the server rendered.

use wasm_bindgen::{closure::Closure, JsCast, JsValue};
use web_sys::{Element, FormData, HtmlFormElement, HtmlInputElement};

/// Listens for form submissions on the whole document (call once, after the islands hydrate).
pub fn enhance_forms() {
    let on_submit = Closure::<dyn Fn(web_sys::SubmitEvent)>::new(|ev: web_sys::SubmitEvent| {
        let Some(form) = ev
            .target()
            .and_then(|t| t.dyn_into::<HtmlFormElement>().ok())
        else {
            return;
        };
        // An island's own forms (ActionForm in the wasm) handle themselves.
        if ev.default_prevented() || !takes_over(&form) {
            return;
        }
        ev.prevent_default();
        let submitter = ev.submitter();
        leptos::task::spawn_local(async move {
            match submit(&form, submitter).await {
                Ok(()) => {}
                // Nothing was sent: the browser's own submission still works.
                Err(Failed::BeforeSending) => {
                    let _ = form.submit();
                }
                // The request may have reached the server: never post it twice. The form can
                // be sent again by hand.
                Err(Failed::Sending) => set_busy(&form, false),
                // The server answered, but its page could not be put in place: load it.
                Err(Failed::AfterAnswer(url)) => {
                    let _ = leptos::prelude::window().location().assign(&url);
                }
            }
        });
    });
    let _ = leptos::prelude::document()
        .add_event_listener_with_callback("submit", on_submit.as_ref().unchecked_ref());
    on_submit.forget();
}

/// A POST to a server function from a form outside any island.
fn takes_over(form: &HtmlFormElement) -> bool {
    form.method().eq_ignore_ascii_case("post")
        && web_sys::Url::new(&form.action()).is_ok_and(|u| {
            u.pathname()
                .starts_with(&format!("{}/", crate::api::PREFIX))
        })
        && form.closest("leptos-island").ok().flatten().is_none()
}

/// Where an in-place submit stopped, which decides what may still be done.
enum Failed {
    BeforeSending,
    Sending,
    /// With the URL the server's answer came from.
    AfterAnswer(String),
}

async fn submit(
    form: &HtmlFormElement,
    submitter: Option<web_sys::HtmlElement>,
) -> Result<(), Failed> {
    let (sent, init) = request(form, submitter).map_err(|_| Failed::BeforeSending)?;
    set_busy(form, true);
    let window = leptos::prelude::window();
    let answer =
        wasm_bindgen_futures::JsFuture::from(window.fetch_with_str_and_init(&form.action(), &init));
    let response: web_sys::Response = answer
        .await
        .and_then(|r| r.dyn_into())
        .map_err(|_| Failed::Sending)?;
    let url = response.url();
    show_answer(form, &sent, response)
        .await
        .map_err(|_| Failed::AfterAnswer(url))
}

/// The form's fields (and its submit button's, if named) and the request that posts them.
fn request(
    form: &HtmlFormElement,
    submitter: Option<web_sys::HtmlElement>,
) -> Result<(FormData, web_sys::RequestInit), JsValue> {
    let sent = FormData::new_with_form(form)?;
    if let Some(button) = submitter {
        if let Some(name) = button.get_attribute("name").filter(|n| !n.is_empty()) {
            sent.append_with_str(&name, &button.get_attribute("value").unwrap_or_default())?;
        }
    }
    let body = web_sys::UrlSearchParams::new_with_str_sequence_sequence(&sent)?;
    let headers = web_sys::Headers::new()?;
    headers.set("accept", "text/html")?;
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_body(&body);
    init.set_headers(&headers);
    Ok((sent, init))
}

/// Puts the page the server answered with in place (or loads it, when it is another page).
async fn show_answer(
    form: &HtmlFormElement,
    sent: &FormData,
    response: web_sys::Response,
) -> Result<(), JsValue> {
    let window = leptos::prelude::window();
    let url = response.url();
    let landed = web_sys::Url::new(&url)?;
    let here = window.location().pathname()?;
    if !response.ok() || landed.pathname() != here {
        // Signed in or out, sent elsewhere, or refused outright: load that page.
        return window.location().assign(&url);
    }
    let html = wasm_bindgen_futures::JsFuture::from(response.text()?)
        .await?
        .as_string()
        .unwrap_or_default();
    let refused = landed.search_params().has("__err");
    swap(form, &html, sent, refused)?;
    let clean = super::returned::with_result(&url, &[]);
    window
        .history()?
        .replace_state_with_url(&JsValue::NULL, "", Some(&clean))
}

/// Marks the form busy (screen readers, styles) and its buttons unclickable while it posts.
fn set_busy(form: &HtmlFormElement, busy: bool) {
    let _ = form.set_attribute("aria-busy", if busy { "true" } else { "false" });
    if let Ok(buttons) = form.query_selector_all("button[type=submit], button:not([type])") {
        for i in 0..buttons.length() {
            if let Some(b) = buttons.item(i).and_then(|n| n.dyn_into::<Element>().ok()) {
                let _ = if busy {
                    b.set_attribute("disabled", "")
                } else {
                    b.remove_attribute("disabled")
                };
            }
        }
    }
}

/// Puts the page the server answered with in place of this one, keeping the refused form's input.
fn swap(form: &HtmlFormElement, html: &str, sent: &FormData, refused: bool) -> Result<(), JsValue> {
    let document = leptos::prelude::document();
    let parsed =
        web_sys::DomParser::new()?.parse_from_string(html, web_sys::SupportedType::TextHtml)?;
    let (Some(app), Some(fresh)) = (
        document.query_selector("div.app")?,
        parsed.query_selector("div.app")?,
    ) else {
        return Err(JsValue::from_str("no console layout in the answer"));
    };
    // The same form in the new page: the same action, at the same place among those posting there.
    let action = form.action();
    let same_action = |root: &Element| -> Vec<HtmlFormElement> {
        let Ok(forms) = root.query_selector_all("form") else {
            return Vec::new();
        };
        (0..forms.length())
            .filter_map(|i| forms.item(i)?.dyn_into::<HtmlFormElement>().ok())
            .filter(|f| f.action() == action)
            .collect()
    };
    let position = same_action(&app).iter().position(|f| f == form);
    let open = open_sections(&app);
    super::live::dispose_islands();
    app.set_inner_html(&fresh.inner_html());
    reopen(&app, &open);
    document.set_title(&parsed.title());
    if refused {
        if let Some(again) = position.and_then(|i| same_action(&app).into_iter().nth(i)) {
            restore(&again, sent);
            focus_first_message(&again);
        }
    }
    super::live::refresh(&app);
    Ok(())
}

/// The `<details>` a swap keeps open: not a confirmation, which has done its job, nor the program
/// switcher.
const KEPT_OPEN: &str = "details:not(.confirm):not(.program-switcher)";

/// Which of `root`'s `<details>` the user has open (a catalog entry, a chart's table): their
/// places among all of them, and how many there are.
fn open_sections(root: &Element) -> (Vec<u32>, u32) {
    let Ok(all) = root.query_selector_all(KEPT_OPEN) else {
        return (Vec::new(), 0);
    };
    let open = (0..all.length())
        .filter(|&i| {
            all.item(i)
                .and_then(|n| n.dyn_into::<Element>().ok())
                .is_some_and(|d| d.has_attribute("open"))
        })
        .collect();
    (open, all.length())
}

/// Opens the same `<details>` again, when the new content has as many (the same page, the same
/// list; otherwise the places would not say which is which).
fn reopen(root: &Element, (open, count): &(Vec<u32>, u32)) {
    let Ok(all) = root.query_selector_all(KEPT_OPEN) else {
        return;
    };
    if all.length() != *count {
        return;
    }
    for &i in open {
        if let Some(details) = all.item(i).and_then(|n| n.dyn_into::<Element>().ok()) {
            let _ = details.set_attribute("open", "");
        }
    }
}

/// Fills the form's fields with what was sent (not passwords, not hidden fields).
fn restore(form: &HtmlFormElement, sent: &FormData) {
    let Ok(fields) = form.query_selector_all("input[name], select[name], textarea[name]") else {
        return;
    };
    for i in 0..fields.length() {
        let Some(node) = fields.item(i) else { continue };
        if let Some(input) = node.dyn_ref::<HtmlInputElement>() {
            let kind = input.type_();
            if kind == "password" || kind == "hidden" || kind == "file" {
                continue;
            }
            let values = sent.get_all(&input.name());
            if kind == "checkbox" || kind == "radio" {
                input.set_checked(values.includes(&JsValue::from_str(&input.value()), 0));
            } else if let Some(v) = sent.get(&input.name()).as_string() {
                input.set_value(&v);
            }
        } else if let Some(select) = node.dyn_ref::<web_sys::HtmlSelectElement>() {
            if let Some(v) = sent.get(&select.name()).as_string() {
                select.set_value(&v);
            }
        } else if let Some(area) = node.dyn_ref::<web_sys::HtmlTextAreaElement>() {
            if let Some(v) = sent.get(&area.name()).as_string() {
                area.set_value(&v);
            }
        }
    }
}

/// Focuses the first field of `form` whose message is showing.
fn focus_first_message(form: &HtmlFormElement) {
    let document = leptos::prelude::document();
    let Ok(fields) = form.query_selector_all("[aria-describedby]") else {
        return;
    };
    for i in 0..fields.length() {
        let Some(field) = fields
            .item(i)
            .and_then(|n| n.dyn_into::<web_sys::HtmlElement>().ok())
        else {
            continue;
        };
        let described = field.get_attribute("aria-describedby").unwrap_or_default();
        if described
            .split_whitespace()
            .any(|id| document.get_element_by_id(id).is_some())
        {
            let _ = field.focus();
            return;
        }
    }
}
