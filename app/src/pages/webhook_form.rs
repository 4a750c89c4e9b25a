//! Create (`/webhooks/new`) and edit (`/webhooks/:id/edit`) pages around the wizard. After a
//! create, the signing secret is shown once, with a copy button and a verification snippet.

use crate::api::program_path;
use crate::api::webhooks::SavedWebhook;
use crate::api::webhooks::{load_webhook_draft, new_draft_secret};
use crate::components::copy::CopyButton;
use crate::components::program::{provide_program_of, use_path, use_program};
use crate::components::snippets::VerifySnippets;
use crate::components::wizard::Wizard;
use herald::domain::settings::WebhookDraft;
use herald::domain::webhook::AuthKind;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

/// Loads `path` in the browser (islands have no router to navigate with).
fn go_to(path: &str) {
    #[cfg(feature = "hydrate")]
    let _ = window().location().set_href(path);
    #[cfg(not(feature = "hydrate"))]
    let _ = path;
}

#[component]
pub fn NewWebhookPage() -> impl IntoView {
    let program = use_program();
    view! {
        <Title text="Create Webhook"/>
        {move || view! { <NewWebhook program=program.get()/> }}
    }
}

/// The wizard and, once saved, the secret: an island (the whole screen is one form in the browser).
#[island]
fn NewWebhook(program: String) -> impl IntoView {
    provide_program_of(program.clone());
    // The draft's secret exists from the moment the wizard opens, so Verify can sign with it.
    let secret = Resource::new(move || program.clone(), new_draft_secret);
    let saved = RwSignal::new(None::<SavedWebhook>);
    let list = use_path("");
    view! {
        <header class="page-head">
            <div>
                <p class="crumbs"><a href=list>"Webhooks"</a>" / Create"</p>
                <h1>"Create Webhook"</h1>
            </div>
        </header>
        {move || match saved.get() {
            Some(s) => view! { <SecretOnce saved=s/> }.into_any(),
            None => view! {
                <Suspense fallback=|| view! { <p class="muted">"Preparing…"</p> }>
                    {move || Suspend::new(async move {
                        match secret.await {
                            Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                            Ok(secret) => {
                                let mut draft = WebhookDraft::default();
                                draft.auth.secret = Some(secret);
                                view! { <Wizard draft on_saved=Callback::new(move |s| saved.set(Some(s)))/> }
                                    .into_any()
                            }
                        }
                    })}
                </Suspense>
            }
            .into_any(),
        }}
    }
}

/// Shown right after Save: the secret, once, and how to check a signature with it.
#[component]
fn SecretOnce(saved: SavedWebhook) -> impl IntoView {
    let program = use_program().get_untracked();
    let page = program_path(&program, &format!("/webhooks/{}", saved.webhook.id));
    let list = program_path(&program, "");
    let name = saved.webhook.name.clone();
    let kind = AuthKind::parse(&saved.webhook.auth.kind).ok();
    let header = saved.webhook.auth.header.clone();
    view! {
        <section class="card saved" role="status">
            <h2>{format!("Webhook \u{201c}{name}\u{201d} saved")}</h2>
            {match saved.secret.clone() {
                None => view! { <p>"This webhook does not sign its requests with a secret."</p> }.into_any(),
                Some(s) => view! {
                    <p>"This is the signing secret. It is shown only now: store it where your receiver can read it."</p>
                    <div class="secret-row">
                        <code class="secret" aria-label="Signing secret">{s.clone()}</code>
                        <CopyButton text=s/>
                    </div>
                }
                .into_any(),
            }}
            {kind.filter(|k| *k != AuthKind::None).map(|kind| view! {
                <h3>"Check its requests"</h3>
                <p class="muted">"Your receiver should refuse any request that fails this check. Pass the raw body, byte for byte."</p>
                <VerifySnippets kind header=header.clone()/>
            })}
            <p><a class="button" href=page>"Go to the webhook"</a>" "<a class="button secondary" href=list>"Back to Webhooks"</a></p>
        </section>
    }
}

#[component]
pub fn EditWebhookPage() -> impl IntoView {
    let params = use_params_map();
    let program = use_program();
    view! {
        <Title text="Edit Webhook"/>
        {move || view! {
            <EditWebhook program=program.get() id=params.with(|p| p.get("id").unwrap_or_default())/>
        }}
    }
}

/// The wizard over a saved webhook: an island, like the create screen.
#[island]
fn EditWebhook(program: String, id: String) -> impl IntoView {
    provide_program_of(program.clone());
    let loaded = Resource::new(
        move || (program.clone(), id.clone()),
        |(program, id)| load_webhook_draft(program, id),
    );
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || {
                Suspend::new(async move {
                    match loaded.await {
                        Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                        Ok((webhook, draft)) => {
                            let program = use_program().get_untracked();
                            let page = program_path(&program, &format!("/webhooks/{}", webhook.id));
                            let list = program_path(&program, "");
                            let crumb = page.clone();
                            let on_saved = Callback::new(move |_| go_to(&page));
                            view! {
                                <header class="page-head">
                                    <div>
                                        <p class="crumbs">
                                            <a href=list>"Webhooks"</a>" / "
                                            <a href=crumb>{webhook.name.clone()}</a>
                                            " / Edit"
                                        </p>
                                        <h1>{format!("Edit {}", webhook.name)}</h1>
                                    </div>
                                </header>
                                <Wizard draft editing=webhook.id.clone() version=webhook.version on_saved/>
                            }
                            .into_any()
                        }
                    }
                })
            }}
        </Suspense>
    }
}
