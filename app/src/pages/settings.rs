//! Settings: the instance, and for admins the people who may sign in and the API keys that may
//! post events (a new key is shown once; revoking takes effect at once here and within a minute on
//! other Herald processes).

use crate::api::account::{
    list_api_keys, list_users, CreateApiKey, CreateUser, DeleteUser, RevokeApiKey,
};
use crate::api::settings::instance_info;
use crate::components::copy::CopyButton;
use crate::components::form::{field_message, general_message};
use crate::components::program::use_program;
use crate::components::program::ProgramField;
use crate::components::session::{AdminOnly, Me};
use crate::components::time::Timestamp;
use crate::components::wizard::FieldError;
use herald::domain::account::{ApiKeyView, Role, UserView, MIN_PASSWORD_CHARS};
use leptos::prelude::*;
use leptos_meta::Title;

mod alerts;

#[component]
pub fn SettingsPage() -> impl IntoView {
    let info = Resource::new(|| (), |_| instance_info());
    view! {
        <Title text="Settings"/>
        <header class="page-head">
            <div>
                <h1>"Settings"</h1>
                <p class="lede">"How this Herald instance is set up, who may sign in, the keys that post events, and who hears about trouble."</p>
            </div>
        </header>
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match info.await {
                    Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                    Ok(i) => view! {
                        <section class="card">
                            <h2>"Instance"</h2>
                            <dl class="facts">
                                <dt>"Version"</dt><dd>{i.version}</dd>
                                <dt>"Database"</dt><dd>{i.database}</dd>
                                {i.disk.map(|d| view! { <dt>"Database disk"</dt><dd>{d}</dd> })}
                                <dt>"Private webhook targets"</dt>
                                <dd>{if i.private_targets_allowed { "Allowed (development mode)" } else { "Refused (SSRF guard on)" }}</dd>
                            </dl>
                        </section>
                    }
                    .into_any(),
                }
            })}
        </Suspense>
        <AdminOnly>
            <Users/>
            <ApiKeysCard/>
            <alerts::AlertsCard/>
            <crate::pages::transfer::TransferCard program=use_program().get_untracked()/>
        </AdminOnly>
    }
}

#[component]
fn Users() -> impl IntoView {
    let program = use_program();
    let create = ServerAction::<CreateUser>::new();
    let delete = ServerAction::<DeleteUser>::new();
    let users = Resource::new(move || program.get(), list_users);
    let me = expect_context::<Me>().0;
    view! {
        <section class="card" aria-labelledby="users-title">
            <h2 id="users-title">"Members"</h2>
            <p class="muted">"Who may open this program. Admins can change everything in it; viewers read webhooks, audit logs and attempts, and change nothing. Someone can be an admin here and a viewer elsewhere."</p>
            {general_message(delete.value(), &[])}
            <Transition fallback=|| view! { <p class="muted">"Loading users…"</p> }>
                {move || Suspend::new(async move {
                    let me = me.await.ok().flatten().map(|u| u.email);
                    match users.await {
                        Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                        Ok(list) if list.is_empty() => view! {
                            <p class="muted">"No members yet. Install admins open every program without being members; add the people who work on this one below."</p>
                        }.into_any(),
                        Ok(list) => view! { <UserTable list delete me/> }.into_any(),
                    }
                })}
            </Transition>
            <h3>"Add a member"</h3>
            <ActionForm action=create attr:class="form-row" attr:aria-label="Add a member">
                <ProgramField/>
                <label class="field">
                    <span>"E-mail"</span>
                    <input type="email" name="email" required aria-describedby="new-user-email-error"/>
                    <FieldError id="new-user-email-error" message=field_message(create.value(), "email")/>
                </label>
                <label class="field">
                    <span>"Role"</span>
                    <select name="role">
                        {Role::ALL.iter().map(|r| view! {
                            <option value=r.as_str() selected=*r == Role::Viewer>{r.label()}</option>
                        }).collect_view()}
                    </select>
                </label>
                <label class="field">
                    <span>"Password"</span>
                    <input type="password" name="password" autocomplete="new-password" aria-describedby="new-user-password-error"/>
                    <span class="hint">{format!("For a new account: at least {MIN_PASSWORD_CHARS} characters. Leave empty to add an existing account.")}</span>
                    <FieldError id="new-user-password-error" message=field_message(create.value(), "password")/>
                </label>
                <button type="submit" class="button">"Add member"</button>
            </ActionForm>
            {general_message(create.value(), &["email", "password", "role"])}
        </section>
    }
}

#[component]
/// `me`: the signed-in admin's e-mail; their own row has no Remove (nobody removes themselves).
fn UserTable(
    list: Vec<UserView>,
    delete: ServerAction<DeleteUser>,
    me: Option<String>,
) -> impl IntoView {
    view! {
        <div class="table-wrap">
            <table class="data">
                <thead><tr><th scope="col">"E-mail"</th><th scope="col">"Role"</th><th scope="col">"Added"</th><th scope="col">"Actions"</th></tr></thead>
                <tbody>
                    {list.into_iter().map(|u| {
                        let label = format!("Remove {}", u.email);
                        view! {
                            <tr>
                                <th scope="row">{u.email.clone()}</th>
                                <td>{u.role.label()}{u.install_admin.then_some(" · Install admin")}</td>
                                <td><Timestamp at=Some(u.created_at)/></td>
                                <td class="actions">
                                    {if me.as_deref() == Some(u.email.as_str()) {
                                        view! { <span class="muted">"You"</span> }.into_any()
                                    } else {
                                        view! {
                                            <ActionForm action=delete attr:class="inline">
                                                <ProgramField/>
                                                <input type="hidden" name="id" value=u.id.clone()/>
                                                <button type="submit" class="button secondary small" aria-label=label>"Remove"</button>
                                            </ActionForm>
                                        }.into_any()
                                    }}
                                </td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

/// The API keys card: the list as the server reads it, handed to the island.
#[component]
fn ApiKeysCard() -> impl IntoView {
    let program = use_program();
    let keys = Resource::new(move || program.get(), list_api_keys);
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading keys…"</p> }>
            {move || Suspend::new(async move {
                match keys.await {
                    Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                    Ok(keys) => view! { <ApiKeys program=program.get_untracked() keys/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// The API keys: an island, because a new key is shown once, right where it was created, and never
/// travels in a URL or a page the server renders. It reads the list again after each change (no
/// resource: the island may be hydrated again after the page's content is swapped in place, when
/// the data the server rendered with it is not there to read).
#[island]
fn ApiKeys(program: String, keys: Vec<ApiKeyView>) -> impl IntoView {
    crate::components::program::provide_program_of(program.clone());
    let create = ServerAction::<CreateApiKey>::new();
    let revoke = ServerAction::<RevokeApiKey>::new();
    let keys = RwSignal::new(keys);
    Effect::watch(
        move || (create.version().get(), revoke.version().get()),
        move |_, _, _| {
            let program = program.clone();
            leptos::task::spawn_local(async move {
                if let Ok(list) = list_api_keys(program).await {
                    keys.set(list);
                }
            });
        },
        false,
    );
    let created = create.value();
    view! {
        <section class="card" aria-labelledby="keys-title">
            <h2 id="keys-title">"API keys"</h2>
            <p class="muted">"Keys let your loyalty platform use the REST API for this program. An ingest-only key posts events and nothing else (give the platform this one); an admin key also manages webhooks and reads the audit log."</p>
            {move || created.get().and_then(Result::ok).map(|k| view! {
                <div class="saved" role="status">
                    <p>{format!("Key \u{201c}{}\u{201d} created. Copy it now: it is shown only once.", k.view.name)}</p>
                    <div class="secret-row">
                        <code class="secret" aria-label="New API key">{k.key.clone()}</code>
                        <CopyButton text=k.key/>
                    </div>
                </div>
            })}
            {general_message(revoke.value(), &[])}
            {move || {
                let list = keys.get();
                if list.is_empty() {
                    view! { <p class="muted">"No API keys yet."</p> }.into_any()
                } else {
                    view! { <KeyTable list revoke/> }.into_any()
                }
            }}
            <h3>"Create a key"</h3>
            <ActionForm action=create attr:class="form-row" attr:aria-label="Create an API key">
                <ProgramField/>
                <label class="field">
                    <span>"Name"</span>
                    <input type="text" name="name" required maxlength="100" placeholder="e.g. loyalty-platform-prod" aria-describedby="new-key-name-error"/>
                    <FieldError id="new-key-name-error" message=field_message(create.value(), "name")/>
                </label>
                <label class="field">
                    <span>"Scope"</span>
                    <select name="scope">
                        <option value="admin" selected>"Admin (the whole API)"</option>
                        <option value="ingest">"Ingest only (post events)"</option>
                    </select>
                </label>
                <button type="submit" class="button">"Create key"</button>
            </ActionForm>
            {general_message(create.value(), &["name"])}
        </section>
    }
}

#[component]
fn KeyTable(list: Vec<ApiKeyView>, revoke: ServerAction<RevokeApiKey>) -> impl IntoView {
    view! {
        <div class="table-wrap">
            <table class="data">
                <thead><tr>
                    <th scope="col">"Name"</th><th scope="col">"Key"</th><th scope="col">"Scope"</th><th scope="col">"Created"</th>
                    <th scope="col">"Last used"</th><th scope="col">"Status"</th><th scope="col">"Actions"</th>
                </tr></thead>
                <tbody>
                    {list.into_iter().map(|k| {
                        let label = format!("Revoke {}", k.name);
                        let live = k.revoked_at.is_none();
                        view! {
                            <tr>
                                <th scope="row">{k.name.clone()}</th>
                                <td><code>{format!("{}…", k.prefix)}</code></td>
                                <td>{k.scope.label()}</td>
                                <td><Timestamp at=Some(k.created_at)/></td>
                                <td><Timestamp at=k.last_used_at/></td>
                                <td>{if live { view! { <span class="badge badge-ok">"Active"</span> }.into_any() } else { view! { <span class="badge badge-muted">"Revoked "<Timestamp at=k.revoked_at/></span> }.into_any() }}</td>
                                <td class="actions">
                                    {live.then(|| view! {
                                        <ActionForm action=revoke attr:class="inline">
                                            <ProgramField/>
                                            <input type="hidden" name="id" value=k.id.clone()/>
                                            <button type="submit" class="button danger small" aria-label=label>"Revoke"</button>
                                        </ActionForm>
                                    })}
                                </td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}
