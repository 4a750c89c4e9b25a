//! The create/edit wizard: three steps (Endpoint Details, Event Subscriptions, Securities &
//! Retries) over one draft. Each step runs the same validation the server runs before **Next**,
//! with the message beside the field; **Save** sends the draft, and the server's errors land beside
//! the field they name, on the step that holds it.

mod endpoint;
mod events;
mod retries;

use crate::api::webhooks::SavedWebhook;
use crate::api::webhooks::{check_webhook_name, create_webhook, update_webhook};
use crate::error::AppError;
use herald::domain::settings::WebhookDraft;
use herald::domain::webhook::parse_ordering_key;
use leptos::prelude::*;

pub const STEPS: [&str; 3] = [
    "Endpoint Details",
    "Event Subscriptions",
    "Securities & Retries",
];

/// Which step a field belongs to (for server errors after Save).
fn step_of(field: &str) -> usize {
    match field.split(['.', '[']).next().unwrap_or_default() {
        "event_types" | "filter" => 1,
        "retry" | "rate_limit_per_second" | "sandbox" | "headers" | "ordering_key" => 2,
        _ => 0,
    }
}

/// The wizard's shared state, handed to each step.
#[derive(Clone, Copy)]
pub struct WizardState {
    pub draft: RwSignal<WebhookDraft>,
    pub error: RwSignal<Option<AppError>>,
    /// `Some(id)` when editing a saved webhook.
    pub editing: Option<StoredValue<String>>,
    /// The version of the webhook being edited, as loaded (Save is refused if it moved on).
    pub version: i64,
}

impl WizardState {
    /// The message for `field`, if the current error is about it.
    pub fn error_for(&self, field: &'static str) -> Signal<Option<String>> {
        let error = self.error;
        Signal::derive(move || error.with(|e| e.as_ref().and_then(|e| e.for_field(field))))
    }
}

/// A validation message under an input (`id` ties it to the input's `aria-describedby`).
#[component]
pub fn FieldError(#[prop(into)] id: String, message: Signal<Option<String>>) -> impl IntoView {
    view! {
        <Show when=move || message.with(Option::is_some)>
            <p class="field-error" id=id.clone() role="alert">{move || message.get().unwrap_or_default()}</p>
        </Show>
    }
}

#[component]
pub fn Wizard(
    draft: WebhookDraft,
    /// The id of the webhook being edited; `None` creates one.
    #[prop(optional)]
    editing: Option<String>,
    /// The loaded version of the webhook being edited.
    #[prop(optional)]
    version: i64,
    /// Called with the saved webhook.
    on_saved: Callback<SavedWebhook>,
) -> impl IntoView {
    let state = WizardState {
        draft: RwSignal::new(draft),
        error: RwSignal::new(None),
        editing: editing.map(StoredValue::new),
        version,
    };
    // A change to the draft clears a stale message (browser only; effects do not run on the server).
    Effect::watch(
        move || state.draft.track(),
        move |_, _, _| state.error.set(None),
        false,
    );
    let step = RwSignal::new(0usize);
    let program = crate::components::program::use_program();
    let busy = RwSignal::new(false);
    let is_edit = state.editing.is_some();

    let validate_step = move |n: usize| -> Result<(), AppError> {
        state
            .draft
            .with(|d| match n {
                0 => d.validate_endpoint(!is_edit).map(drop),
                1 => d.validate_events().map(drop),
                _ => d
                    .validate_retries()
                    .and_then(|_| d.validate_headers())
                    .and_then(|_| parse_ordering_key(&d.ordering_key))
                    .map(drop),
            })
            .map_err(AppError::from)
    };
    let next = move |_| {
        let current = step.get_untracked();
        if let Err(e) = validate_step(current) {
            state.error.set(Some(e));
            return;
        }
        state.error.set(None);
        if current == 0 {
            // The name must also be free; only the server knows.
            let name = state.draft.with_untracked(|d| d.name.clone());
            let except = state.editing.map(|id| id.get_value()).unwrap_or_default();
            busy.set(true);
            leptos::task::spawn_local(async move {
                match check_webhook_name(program.get_untracked(), name, except).await {
                    Ok(()) => step.set(1),
                    Err(e) => state.error.set(Some(e)),
                }
                busy.set(false);
            });
        } else {
            step.set(current + 1);
        }
    };
    let back = move |_| {
        state.error.set(None);
        step.update(|s| *s = s.saturating_sub(1));
    };
    let save = move |_| {
        if let Some((n, e)) = (0..3).find_map(|n| validate_step(n).err().map(|e| (n, e))) {
            step.set(n);
            state.error.set(Some(e));
            return;
        }
        let draft = state.draft.get_untracked();
        let editing = state.editing.map(|id| id.get_value());
        let program = program.get_untracked();
        busy.set(true);
        leptos::task::spawn_local(async move {
            let result = match editing {
                Some(id) => update_webhook(program, id, draft, state.version).await,
                None => create_webhook(program, draft).await,
            };
            busy.set(false);
            match result {
                Ok(saved) => on_saved.run(saved),
                Err(e) => {
                    if let AppError::Validation { field, .. }
                    | AppError::Conflict {
                        field: Some(field), ..
                    } = &e
                    {
                        step.set(step_of(field));
                    }
                    state.error.set(Some(e));
                }
            }
        });
    };
    // Errors that belong to no field show above the buttons.
    let general_error = move || {
        state.error.with(|e| match e {
            Some(AppError::Validation { .. })
            | Some(AppError::Conflict { field: Some(_), .. })
            | None => None,
            Some(other) => Some(other.to_string()),
        })
    };

    view! {
        <div class="wizard card">
            <ol class="steps" aria-label="Steps">
                {STEPS
                    .iter()
                    .enumerate()
                    .map(|(i, label)| {
                        let class = move || match step.get().cmp(&i) {
                            std::cmp::Ordering::Equal => "step current",
                            std::cmp::Ordering::Greater => "step done",
                            std::cmp::Ordering::Less => "step",
                        };
                        view! {
                            <li class=class aria-current=move || (step.get() == i).then_some("step")>
                                <span class="step-number">{i + 1}</span>
                                <span>{*label}</span>
                            </li>
                        }
                    })
                    .collect_view()}
            </ol>
            <div class="step-body">
                {move || match step.get() {
                    0 => view! { <endpoint::EndpointStep state/> }.into_any(),
                    1 => view! { <events::EventsStep state/> }.into_any(),
                    _ => view! { <retries::RetriesStep state/> }.into_any(),
                }}
            </div>
            <Show when=move || general_error().is_some()>
                <p class="error" role="alert">{general_error}</p>
            </Show>
            <div class="wizard-actions">
                <Show when=move || step.get().ne(&0)>
                    <button type="button" class="button secondary" on:click=back>"Back"</button>
                </Show>
                <span class="spacer"></span>
                <Show
                    when=move || step.get() < 2
                    fallback=move || view! {
                        <button type="button" class="button" on:click=save disabled=move || busy.get()>
                            {move || if busy.get() { "Saving…" } else { "Save" }}
                        </button>
                    }
                >
                    <button type="button" class="button" on:click=next disabled=move || busy.get()>"Next"</button>
                </Show>
            </div>
        </div>
    }
}
