//! Programs (`/programs`, install admins): create, rename, archive and restore the loyalty
//! programs that share this install. And the page someone who can open no program lands on.

use crate::api::account::{list_programs, CreateProgram, RenameProgram, SetProgramArchived};
use crate::api::program_path;
use crate::components::form::{field_message, general_message};
use crate::components::returned::form_action;
use crate::components::session::Me;
use crate::components::time::Timestamp;
use crate::components::wizard::FieldError;
use herald::domain::account::ProgramView;
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn ProgramsPage() -> impl IntoView {
    let create = form_action::<CreateProgram>();
    let rename = ServerAction::<RenameProgram>::new();
    let archive = ServerAction::<SetProgramArchived>::new();
    let programs = Resource::new(|| (), |_| list_programs());
    view! {
        <Title text="Programs"/>
        <header class="page-head">
            <div>
                <h1>"Programs"</h1>
                <p class="lede">"Each loyalty program has its own webhooks, deliveries, audit log, API keys and members. Archiving hides a program and stops its API keys; restoring brings both back."</p>
            </div>
        </header>
        {general_message(rename.value(), &["name"])}
        {general_message(archive.value(), &[])}
        <Transition fallback=|| view! { <p class="muted">"Loading programs…"</p> }>
            {move || Suspend::new(async move {
                match programs.await {
                    Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                    Ok(list) => view! { <ProgramTable list rename archive/> }.into_any(),
                }
            })}
        </Transition>
        <section class="card" aria-labelledby="new-program-title">
            <h2 id="new-program-title">"Create a program"</h2>
            {move || create.value().get().and_then(Result::ok).map(|id| view! {
                <p class="saved" role="status">"Program created. "<a href=program_path(&id, "")>"Open it"</a>" to add webhooks, API keys and members."</p>
            })}
            <ActionForm action=create attr:class="form-row" attr:aria-label="Create a program">
                <label class="field">
                    <span>"Name"</span>
                    <input type="text" name="name" required maxlength="80" placeholder="e.g. Gold Club" aria-describedby="new-program-name-error"/>
                    <FieldError id="new-program-name-error" message=field_message(create.value(), "name")/>
                </label>
                <button type="submit" class="button">"Create program"</button>
            </ActionForm>
            {general_message(create.value(), &["name"])}
        </section>
    }
}

#[component]
fn ProgramTable(
    list: Vec<ProgramView>,
    rename: ServerAction<RenameProgram>,
    archive: ServerAction<SetProgramArchived>,
) -> impl IntoView {
    view! {
        <div class="table-wrap">
            <table class="data">
                <thead><tr>
                    <th scope="col">"Name"</th><th scope="col">"Status"</th>
                    <th scope="col">"Created"</th><th scope="col">"Actions"</th>
                </tr></thead>
                <tbody>
                    {list.into_iter().map(|p| {
                        let archived = p.archived_at.is_some();
                        let rename_label = format!("Rename {}", p.name);
                        let archive_label = format!("{} {}", if archived { "Restore" } else { "Archive" }, p.name);
                        let rename_group = rename_label.clone();
                        let (id_open, id_rename, id_error, id_archive) = (p.id.clone(), p.id.clone(), p.id.clone(), p.id.clone());
                        view! {
                            <tr>
                                <th scope="row">
                                    {if archived {
                                        view! { <span>{p.name.clone()}</span> }.into_any()
                                    } else {
                                        view! { <a href=program_path(&id_open, "")>{p.name.clone()}</a> }.into_any()
                                    }}
                                    {p.is_default.then(|| view! { " "<span class="badge badge-muted">"Default"</span> })}
                                </th>
                                <td>{if archived {
                                    view! { <span class="badge badge-muted">"Archived "<Timestamp at=p.archived_at/></span> }.into_any()
                                } else {
                                    view! { <span class="badge badge-ok">"Active"</span> }.into_any()
                                }}</td>
                                <td><Timestamp at=Some(p.created_at)/></td>
                                <td class="actions">
                                    <details class="confirm">
                                        <summary>"Rename"</summary>
                                        <div class="popover" role="group" aria-label=rename_group>
                                            <ActionForm action=rename attr:class="stack">
                                                <input type="hidden" name="id" value=id_rename/>
                                                <label class="field">
                                                    <span>"New name"</span>
                                                    <input type="text" name="name" required maxlength="80" value=p.name.clone()/>
                                                </label>
                                                <FieldError id=format!("rename-{id_error}-error") message=field_message(rename.value(), "name")/>
                                                <button type="submit" class="button" aria-label=rename_label>"Save name"</button>
                                            </ActionForm>
                                        </div>
                                    </details>
                                    {(!p.is_default).then(|| view! {
                                        <ActionForm action=archive attr:class="inline">
                                            <input type="hidden" name="id" value=id_archive/>
                                            <input type="hidden" name="archived" value=(!archived).to_string()/>
                                            <button type="submit" class="button secondary small" aria-label=archive_label>
                                                {if archived { "Restore" } else { "Archive" }}
                                            </button>
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

/// Where someone lands who can open no program, at `/` or an old path without a program. The
/// server sends everyone else on to the same page of their own program.
#[component]
pub fn NoProgramPage() -> impl IntoView {
    let me = expect_context::<Me>().0;
    view! {
        <Title text="No program"/>
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                let user = me.await.ok().flatten();
                let install_admin = user.as_ref().is_some_and(|u| u.install_admin);
                view! {
                    <section class="empty card">
                        <h1>"No program to open"</h1>
                        <p>"Your account is not a member of any active program. Ask an admin of the program you work on to add you in its Settings."</p>
                        {install_admin.then(|| view! { <a class="button" href="/programs">"Manage programs"</a> })}
                    </section>
                }
            })}
        </Suspense>
    }
}
