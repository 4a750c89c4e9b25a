//! The Settings card that moves webhook configurations between programs: export this program's
//! (secrets only when a passphrase seals them), and import another's with a preview first.

use crate::api::transfer::{ApplyImport, ExportProgram, PreviewImport};
use crate::components::copy::CopyButton;
use crate::components::form::{field_message, general_message};
use crate::components::program::ProgramField;
use crate::components::wizard::FieldError;
use crate::pages::audit_logs::urlencode;
use herald::domain::transfer::{ImportAction, ImportPlan};
use leptos::prelude::*;

/// An island: the exported document (which may hold sealed secrets) and the import preview are
/// shown in place, never sent back through a URL.
#[island]
pub fn TransferCard(program: String) -> impl IntoView {
    crate::components::program::provide_program_of(program);
    let export = ServerAction::<ExportProgram>::new();
    let preview = ServerAction::<PreviewImport>::new();
    let apply = ServerAction::<ApplyImport>::new();
    // The preview's inputs, so Import applies exactly what was previewed.
    let previewed = RwSignal::new(None::<PreviewImport>);
    Effect::new(move |_| {
        if let Some(input) = preview.input().get() {
            previewed.set(Some(input));
        }
    });
    view! {
        <section class="card" aria-labelledby="transfer-title">
            <h2 id="transfer-title">"Export and import webhooks"</h2>
            <p class="muted">"Move a tested configuration to another program or install, or keep it in git. Secrets stay out unless you give a passphrase to seal them with."</p>
            <h3>"Export"</h3>
            <ActionForm action=export attr:class="form-row" attr:aria-label="Export webhooks">
                <ProgramField/>
                <label class="field">
                    <span>"Passphrase (optional)"</span>
                    <input type="password" name="passphrase" autocomplete="new-password" aria-describedby="export-passphrase-error"/>
                    <span class="hint">"Give one to include signing secrets and Basic passwords, sealed with it (at least 12 characters)."</span>
                    <FieldError id="export-passphrase-error" message=field_message(export.value(), "passphrase")/>
                </label>
                <button type="submit" class="button secondary">"Export"</button>
            </ActionForm>
            {general_message(export.value(), &["passphrase"])}
            {move || export.value().get().and_then(Result::ok).map(|doc| {
                let href = format!("data:application/json;charset=utf-8,{}", urlencode(&doc));
                view! {
                    <div class="export-doc">
                        <textarea readonly rows="8" aria-label="Exported document" class="mono">{doc.clone()}</textarea>
                        <p class="actions">
                            <a class="button secondary small" href=href download="herald-webhooks.json">"Download"</a>
                            <CopyButton text=doc/>
                        </p>
                    </div>
                }
            })}
            <h3>"Import"</h3>
            <ActionForm action=preview attr:class="stack" attr:aria-label="Import webhooks">
                <ProgramField/>
                <label class="field">
                    <span>"Document"</span>
                    <textarea name="document" rows="6" required class="mono" placeholder="Paste an exported document" aria-describedby="import-document-error"></textarea>
                    <FieldError id="import-document-error" message=field_message(preview.value(), "document")/>
                </label>
                <div class="form-row">
                    <label class="field">
                        <span>"If it exists here"</span>
                        <select name="on_conflict">
                            <option value="skip" selected>"Keep ours (skip)"</option>
                            <option value="update">"Overwrite ours (update)"</option>
                        </select>
                    </label>
                    <label class="field">
                        <span>"Passphrase of the export"</span>
                        <input type="password" name="passphrase" autocomplete="off" aria-describedby="import-passphrase-error"/>
                        <span class="hint">"Only if it carries sealed secrets; without it, new signing secrets are generated."</span>
                        <FieldError id="import-passphrase-error" message=field_message(preview.value(), "passphrase")/>
                    </label>
                    <button type="submit" class="button secondary">"Preview"</button>
                </div>
            </ActionForm>
            {general_message(preview.value(), &["document", "passphrase"])}
            {move || preview.value().get().and_then(Result::ok).map(|plan| {
                let input = previewed.get_untracked();
                let blocked = plan.count(ImportAction::Invalid) > 0;
                let writes = plan.count(ImportAction::Create) + plan.count(ImportAction::Update);
                view! {
                    <PlanTable plan title="Preview"/>
                    {input.filter(|_| !blocked && writes > 0).map(|i| view! {
                        <ActionForm action=apply attr:class="inline" attr:aria-label="Apply the import">
                            <input type="hidden" name="program" value=i.program/>
                            <input type="hidden" name="document" value=i.document/>
                            <input type="hidden" name="on_conflict" value=i.on_conflict/>
                            <input type="hidden" name="passphrase" value=i.passphrase/>
                            <button type="submit" class="button">{format!("Import {writes} webhook(s)")}</button>
                        </ActionForm>
                    })}
                    {blocked.then(|| view! { <p class="error" role="alert">"Fix the invalid webhooks in the document first: nothing is imported while one cannot be."</p> })}
                }
            })}
            {general_message(apply.value(), &[])}
            {move || apply.value().get().and_then(Result::ok).map(|plan| view! {
                <div class="saved" role="status">
                    <p>{format!(
                        "Imported: {} created, {} updated, {} unchanged, {} skipped.",
                        plan.count(ImportAction::Create),
                        plan.count(ImportAction::Update),
                        plan.count(ImportAction::Unchanged),
                        plan.count(ImportAction::Skip)
                    )}</p>
                    {(!plan.secrets.is_empty()).then(|| view! {
                        <p>"New signing secrets, shown only now: give each to its receiver."</p>
                        <ul class="secrets">
                            {plan.secrets.iter().map(|(name, secret)| view! {
                                <li><span>{name.clone()}": "</span><code class="secret">{secret.clone()}</code></li>
                            }).collect_view()}
                        </ul>
                    })}
                </div>
            })}
        </section>
    }
}

#[component]
fn PlanTable(plan: ImportPlan, title: &'static str) -> impl IntoView {
    view! {
        <div class="table-wrap">
            <table class="data" aria-label=title>
                <thead><tr><th scope="col">"Webhook"</th><th scope="col">"Action"</th><th scope="col">"Details"</th></tr></thead>
                <tbody>
                    {plan.items.into_iter().map(|i| {
                        let badge = match i.action {
                            ImportAction::Create | ImportAction::Update => "badge badge-ok",
                            ImportAction::Invalid => "badge badge-bad",
                            _ => "badge badge-muted",
                        };
                        view! {
                            <tr>
                                <th scope="row">{i.name}</th>
                                <td><span class=badge>{i.action.label()}</span></td>
                                <td class="muted">{i.detail}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}
