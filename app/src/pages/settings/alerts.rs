//! The Alerts section of Settings: how alerts reach people (operational webhooks, e-mail over
//! SMTP), a test message, and the latest alerts with what became of them.

use crate::api::alerts::{list_alerts, load_alert_settings, SaveAlertSettings, SendTestAlert};
use crate::components::form::{field_message, general_message};
use crate::components::program::{use_program, ProgramField};
use crate::components::returned::form_action;
use crate::components::time::Timestamp;
use crate::components::wizard::FieldError;
use herald::domain::alerts::{AlertSettingsView, AlertView, SmtpTls};
use leptos::prelude::*;

const FIELDS: &[&str] = &[
    "smtp_host",
    "smtp_port",
    "smtp_tls",
    "from",
    "recipients",
    "window_minutes",
];

#[component]
pub fn AlertsCard() -> impl IntoView {
    let program = use_program();
    let save = form_action::<SaveAlertSettings>();
    let test = form_action::<SendTestAlert>();
    let settings = Resource::new(move || program.get(), load_alert_settings);
    let alerts = Resource::new(move || program.get(), list_alerts);
    let saved = save.value();
    let tested = test.value();
    view! {
        <section class="card" aria-labelledby="alerts-title">
            <h2 id="alerts-title">"Alerts"</h2>
            <p class="muted">
                "Herald raises an alert when deliveries to a webhook are dead-lettered, when it switches a webhook off, when such a webhook delivers again, and when an insight rule flags one. "
                "Subscribe any webhook to the \u{201c}Herald\u{201d} feeds ("<code>"delivery.exhausted"</code>", "<code>"endpoint.disabled"</code>", "<code>"endpoint.recovered"</code>", "<code>"endpoint.flagged"</code>
                ") to get them as signed events; with e-mail on, the recipients below get them too. "
                "Alerts are grouped: at most one message per webhook and kind in each window, counting what it stands for."
            </p>
            <Transition fallback=|| view! { <p class="muted">"Loading alert settings…"</p> }>
                {move || Suspend::new(async move {
                    match settings.await {
                        Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                        Ok(s) => view! { <AlertForm s save/> }.into_any(),
                    }
                })}
            </Transition>
            {move || saved.get().and_then(Result::ok).map(|_| view! { <p class="saved" role="status">"Alert settings saved."</p> })}
            {general_message(save.value(), FIELDS)}
            <ActionForm action=test attr:class="alert-test" attr:aria-label="Send a test alert">
                <ProgramField/>
                <button type="submit" class="button secondary">"Send test alert"</button>
                <span class="hint">"One e-mail to the recipients, through the saved settings (save your changes first)."</span>
            </ActionForm>
            {move || tested.get().and_then(Result::ok).map(|m| view! { <p class="saved" role="status">{m}</p> })}
            {general_message(test.value(), &[])}
            <h3>"Recent alerts"</h3>
            <Transition fallback=|| view! { <p class="muted">"Loading alerts…"</p> }>
                {move || Suspend::new(async move {
                    match alerts.await {
                        Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                        Ok(list) if list.is_empty() => view! { <p class="muted">"No alerts yet."</p> }.into_any(),
                        Ok(list) => view! { <AlertTable list/> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn AlertForm(s: AlertSettingsView, save: ServerAction<SaveAlertSettings>) -> impl IntoView {
    let msg = move |field: &'static str| field_message(save.value(), field);
    let password_hint = if s.smtp_password_set {
        "One is saved; leave this empty to keep it."
    } else {
        "Only if the server asks you to sign in."
    };
    let recipients = s.recipients.join("\n");
    view! {
        <ActionForm action=save attr:class="stack" attr:aria-label="Alert settings">
            <ProgramField/>
            <label class="checkbox">
                <input type="checkbox" name="email_enabled" value="true" checked=s.email_enabled/>
                " E-mail alerts"
            </label>
            <div class="form-row">
                <label class="field">
                    <span>"SMTP host"</span>
                    <input type="text" name="smtp_host" value=s.smtp_host placeholder="smtp.example.com" aria-describedby="smtp_host-error"/>
                    <FieldError id="smtp_host-error" message=msg("smtp_host")/>
                </label>
                <label class="field">
                    <span>"Port"</span>
                    <input type="number" name="smtp_port" min="1" max="65535" value=s.smtp_port.to_string() aria-describedby="smtp_port-error"/>
                    <FieldError id="smtp_port-error" message=msg("smtp_port")/>
                </label>
                <label class="field">
                    <span>"Security"</span>
                    <select name="smtp_tls" aria-describedby="smtp_tls-error">
                        {SmtpTls::ALL.iter().map(|t| view! {
                            <option value=t.as_str() selected=*t == s.smtp_tls>{t.label()}</option>
                        }).collect_view()}
                    </select>
                    <FieldError id="smtp_tls-error" message=msg("smtp_tls")/>
                </label>
            </div>
            <div class="form-row">
                <label class="field">
                    <span>"SMTP user"</span>
                    <input type="text" name="smtp_username" value=s.smtp_username autocomplete="off"/>
                </label>
                <label class="field">
                    <span>"SMTP password"</span>
                    <input type="password" name="smtp_password" autocomplete="new-password"/>
                    <span class="hint">{password_hint}</span>
                </label>
            </div>
            <div class="form-row">
                <label class="field">
                    <span>"From"</span>
                    <input type="email" name="from" value=s.from placeholder="herald@example.com" aria-describedby="from-error"/>
                    <FieldError id="from-error" message=msg("from")/>
                </label>
                <label class="field">
                    <span>"Recipients"</span>
                    <textarea name="recipients" rows="3" placeholder="ops@example.com" aria-describedby="recipients-error">{recipients}</textarea>
                    <span class="hint">"One address per line, or separated by commas."</span>
                    <FieldError id="recipients-error" message=msg("recipients")/>
                </label>
                <label class="field">
                    <span>"Window (minutes)"</span>
                    <input type="number" name="window_minutes" min="1" max="1440" value=s.window_minutes.to_string() aria-describedby="window_minutes-error"/>
                    <span class="hint">"At most one message per webhook and kind in this time."</span>
                    <FieldError id="window_minutes-error" message=msg("window_minutes")/>
                </label>
            </div>
            <button type="submit" class="button">"Save alert settings"</button>
        </ActionForm>
    }
}

#[component]
fn AlertTable(list: Vec<AlertView>) -> impl IntoView {
    view! {
        <div class="table-wrap">
            <table class="data">
                <thead><tr>
                    <th scope="col">"Alert"</th><th scope="col">"Webhook"</th><th scope="col">"Count"</th>
                    <th scope="col">"Latest"</th><th scope="col">"Last seen"</th><th scope="col">"Sent"</th>
                </tr></thead>
                <tbody>
                    {list.into_iter().map(|a| {
                        let sent = match (&a.sent_at, &a.email_error) {
                            (None, _) => view! { <span class="badge badge-muted">"Waiting for its window"</span> }.into_any(),
                            (Some(at), None) => view! { <Timestamp at=Some(*at)/> }.into_any(),
                            (Some(at), Some(e)) => view! { <Timestamp at=Some(*at)/><span class="status-note">{format!("E-mail failed: {e}")}</span> }.into_any(),
                        };
                        view! {
                            <tr>
                                <th scope="row">{a.kind.label()}</th>
                                <td>{a.webhook_name}</td>
                                <td>{a.count}</td>
                                <td>{a.detail}</td>
                                <td><Timestamp at=Some(a.last_at)/></td>
                                <td>{sent}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}
