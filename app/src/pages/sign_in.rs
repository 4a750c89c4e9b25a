//! Signing in (`/login`) and first-run setup (`/setup?token=…`). Both are plain forms posting to
//! server functions, so they work before the wasm arrives; errors appear beside the field.

use crate::api::account::{check_setup_token, sign_in_status, CompleteSetup, Login};
use crate::components::form::{field_message, general_message, InputField};
use herald::domain::account::MIN_PASSWORD_CHARS;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[component]
pub fn LoginPage() -> impl IntoView {
    let query = use_query_map();
    let next = move || query.with(|q| q.get("next").unwrap_or_else(|| "/".into()));
    let login = ServerAction::<Login>::new();
    let status = Resource::new(|| (), |_| sign_in_status());
    let value = login.value();
    view! {
        <Title text="Sign in"/>
        <section class="auth card">
            <h1>"Sign in to Herald"</h1>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    status.await.ok().filter(|s| s.needs_setup).map(|_| view! {
                        <p class="notice" role="status">
                            "Herald has no accounts yet. Open the one-time setup link Herald printed "
                            "when it started (in its log) to create the first admin."
                        </p>
                    })
                })}
            </Suspense>
            <ActionForm action=login attr:class="stack" attr:aria-label="Sign in">
                <input type="hidden" name="next" value=next/>
                <InputField label="E-mail" name="email" kind="email" autocomplete="username" message=field_message(value, "email")/>
                <InputField label="Password" name="password" kind="password" autocomplete="current-password" message=field_message(value, "password")/>
                {general_message(value, &["email", "password"])}
                <button type="submit" class="button" disabled=move || login.pending().get()>"Sign in"</button>
            </ActionForm>
        </section>
    }
}

#[component]
pub fn SetupPage() -> impl IntoView {
    let query = use_query_map();
    let token = move || query.with(|q| q.get("token").unwrap_or_default());
    let valid = Resource::new(token, check_setup_token);
    let setup = ServerAction::<CompleteSetup>::new();
    let value = setup.value();
    view! {
        <Title text="Set up Herald"/>
        <section class="auth card">
            <h1>"Create the first admin"</h1>
            <Suspense fallback=|| view! { <p class="muted">"Checking the link…"</p> }>
                {move || Suspend::new(async move {
                    match valid.await {
                        Ok(true) => view! {
                            <p class="lede">"This account can do everything, including adding other people."</p>
                            <ActionForm action=setup attr:class="stack" attr:aria-label="Create the first admin">
                                <input type="hidden" name="token" value=token/>
                                <InputField label="E-mail" name="email" kind="email" autocomplete="username" message=field_message(value, "email")/>
                                <InputField
                                    label="Password"
                                    name="password"
                                    kind="password"
                                    autocomplete="new-password"
                                    hint=format!("At least {MIN_PASSWORD_CHARS} characters; a passphrase works well.")
                                    message=field_message(value, "password")
                                />
                                <InputField label="Confirm password" name="confirm" kind="password" autocomplete="new-password" message=field_message(value, "confirm")/>
                                {general_message(value, &["email", "password", "confirm"])}
                                <button type="submit" class="button" disabled=move || setup.pending().get()>"Create admin and sign in"</button>
                            </ActionForm>
                        }.into_any(),
                        Ok(false) => view! {
                            <p class="error" role="alert">
                                "This setup link has already been used or is not valid. "
                                <a href="/login">"Sign in"</a>" instead."
                            </p>
                        }.into_any(),
                        Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}
