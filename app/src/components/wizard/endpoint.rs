//! Step 1, Endpoint Details: name, method, URL, description, authentication, and Verify.

use super::{FieldError, WizardState};
use crate::api::webhooks::{rotate_webhook_secret, verify_draft};
use herald::domain::views::VerifyOutcome;
use herald::domain::webhook::AuthKind;
use leptos::prelude::*;

/// What the HMAC header method offers first: the header Incentable's snippet reads.
const DEFAULT_SIGNATURE_HEADER: &str = "X-Incentable-Signature";

#[component]
pub fn EndpointStep(state: WizardState) -> impl IntoView {
    let draft = state.draft;
    let kind = move || draft.with(|d| AuthKind::parse(&d.auth.kind).unwrap_or_default());
    let program = crate::components::program::use_program();
    let verify = Action::new(move |_: &()| {
        let d = draft.get_untracked();
        let editing = state.editing.map(|id| id.get_value()).unwrap_or_default();
        let program = program.get_untracked();
        async move { verify_draft(program, d, editing).await }
    });
    let rotated = RwSignal::new(None::<String>);
    let rotate = Action::new(move |_: &()| {
        let id = state.editing.map(|id| id.get_value()).unwrap_or_default();
        let program = program.get_untracked();
        async move {
            if let Ok(secret) = rotate_webhook_secret(program, id).await {
                rotated.set(Some(secret));
            }
        }
    });
    view! {
        <h2>"Endpoint Details"</h2>
        <div class="form-grid">
            <label class="field">
                <span>"Name"</span>
                <input
                    type="text"
                    name="name"
                    required
                    aria-describedby="name-error"
                    prop:value=move || draft.with(|d| d.name.clone())
                    on:input=move |ev| draft.update(|d| d.name = event_target_value(&ev))
                />
                <FieldError id="name-error" message=state.error_for("name")/>
            </label>
            <label class="field">
                <span>"Method"</span>
                <select name="method">
                    <option value="POST" selected>"POST"</option>
                </select>
            </label>
            <label class="field wide">
                <span>"URL"</span>
                <input
                    type="url"
                    name="url"
                    placeholder="https://example.com/webhooks/herald"
                    required
                    aria-describedby="url-error"
                    prop:value=move || draft.with(|d| d.url.clone())
                    on:input=move |ev| draft.update(|d| d.url = event_target_value(&ev))
                />
                <FieldError id="url-error" message=state.error_for("url")/>
            </label>
            <label class="field wide">
                <span>"Description"</span>
                <textarea
                    name="description"
                    rows="2"
                    aria-describedby="description-error"
                    prop:value=move || draft.with(|d| d.description.clone())
                    on:input=move |ev| draft.update(|d| d.description = event_target_value(&ev))
                ></textarea>
                <FieldError id="description-error" message=state.error_for("description")/>
            </label>
        </div>
        <fieldset class="auth">
            <legend>"Authentication"</legend>
            <div class="radio-row">
                {AuthKind::ALL
                    .into_iter()
                    .map(|k| {
                        view! {
                            <label class="radio">
                                <input
                                    type="radio"
                                    name="auth-kind"
                                    value=k.as_str()
                                    prop:checked=move || kind() == k
                                    on:change=move |_| draft.update(|d| {
                                        d.auth.kind = k.as_str().to_owned();
                                        if k == AuthKind::Hmac && d.auth.header.as_deref().unwrap_or("").is_empty() {
                                            d.auth.header = Some(DEFAULT_SIGNATURE_HEADER.to_owned());
                                        }
                                    })
                                />
                                <span>{k.label()}</span>
                            </label>
                        }
                    })
                    .collect_view()}
            </div>
            <Show when=move || kind() == AuthKind::Basic>
                <div class="form-grid">
                    <label class="field">
                        <span>"User Name"</span>
                        <input
                            type="text"
                            name="username"
                            autocomplete="off"
                            aria-describedby="username-error"
                            prop:value=move || draft.with(|d| d.auth.username.clone().unwrap_or_default())
                            on:input=move |ev| draft.update(|d| d.auth.username = Some(event_target_value(&ev)))
                        />
                        <FieldError id="username-error" message=state.error_for("auth.username")/>
                    </label>
                    <label class="field">
                        <span>"Password"</span>
                        <input
                            type="password"
                            name="password"
                            autocomplete="new-password"
                            aria-describedby="password-error"
                            placeholder=move || state.editing.map(|_| "Leave empty to keep the current password")
                            prop:value=move || draft.with(|d| d.auth.password.clone().unwrap_or_default())
                            on:input=move |ev| draft.update(|d| d.auth.password = Some(event_target_value(&ev)))
                        />
                        <FieldError id="password-error" message=state.error_for("auth.password")/>
                    </label>
                </div>
            </Show>
            <Show when=move || kind() == AuthKind::Hmac>
                <div class="form-grid">
                    <label class="field">
                        <span>"Signature Header"</span>
                        <input
                            type="text"
                            name="header"
                            autocomplete="off"
                            aria-describedby="header-error"
                            prop:value=move || draft.with(|d| d.auth.header.clone().unwrap_or_default())
                            on:input=move |ev| draft.update(|d| d.auth.header = Some(event_target_value(&ev)))
                        />
                        <span class="hint">"Carries the hex HMAC-SHA256 of the raw body, keyed with the secret as shown."</span>
                        <FieldError id="header-error" message=state.error_for("auth.header")/>
                    </label>
                </div>
            </Show>
            <Show when=move || kind().uses_secret()>
                <p class="hint">
                    {move || if state.editing.is_some() {
                        "Requests are signed with this webhook's current secret."
                    } else {
                        "A signing secret was generated for this webhook; it is shown once after Save."
                    }}
                </p>
                <FieldError id="secret-error" message=state.error_for("auth.secret")/>
                <Show when=move || state.editing.is_some()>
                    <button type="button" class="button secondary" on:click=move |_| { rotate.dispatch(()); }>
                        "Rotate Secret"
                    </button>
                    <Show when=move || rotated.with(Option::is_some)>
                        <p class="notice" role="status">
                            "New secret (the previous one keeps signing for 24 hours): "
                            <code class="secret">{move || rotated.get().unwrap_or_default()}</code>
                        </p>
                    </Show>
                </Show>
            </Show>
        </fieldset>
        <div class="verify">
            <button
                type="button"
                class="button secondary"
                on:click=move |_| { verify.dispatch(()); }
                disabled=move || verify.pending().get()
            >
                {move || if verify.pending().get() { "Verifying…" } else { "Verify" }}
            </button>
            {move || verify.value().get().map(|r| match r {
                Ok(VerifyOutcome { verified: true, .. }) => {
                    view! { <span class="badge badge-ok" role="status">"Verified"</span> }.into_any()
                }
                Ok(VerifyOutcome { status_code, error, .. }) => {
                    let code = status_code.map(|c| format!("HTTP {c}: ")).unwrap_or_default();
                    view! {
                        <span class="verify-failed" role="alert">
                            "Not verified — " {code} {error.unwrap_or_default()}
                        </span>
                    }
                    .into_any()
                }
                Err(e) => view! { <span class="verify-failed" role="alert">{e.to_string()}</span> }.into_any(),
            })}
        </div>
    }
}
