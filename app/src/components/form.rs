//! Errors of a submitted form (a server action), beside the field they name or above the button.

use crate::error::AppError;
use leptos::prelude::*;

/// The message for `field` from a finished action, if it failed on that field.
pub fn field_message<T, V>(value: V, field: &'static str) -> Signal<Option<String>>
where
    T: 'static,
    V: With<Value = Option<Result<T, AppError>>> + Clone + Send + Sync + 'static,
{
    Signal::derive(move || {
        value.with(|v| match v {
            Some(Err(e)) => e.for_field(field),
            _ => None,
        })
    })
}

/// A failure not tied to any of `fields`.
pub fn general_message<T, V>(
    value: V,
    fields: &'static [&'static str],
) -> impl Fn() -> Option<AnyView>
where
    T: 'static,
    V: With<Value = Option<Result<T, AppError>>> + Clone + Send + Sync + 'static,
{
    move || {
        value.with(|v| match v {
            Some(Err(e)) if fields.iter().all(|f| e.for_field(f).is_none()) => {
                Some(view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any())
            }
            _ => None,
        })
    }
}

/// A labelled input with an optional hint and its error message underneath.
#[component]
pub fn InputField(
    label: &'static str,
    /// The form field name; also the error message's id (`{name}-error`).
    name: &'static str,
    #[prop(default = "text")] kind: &'static str,
    #[prop(optional)] autocomplete: &'static str,
    #[prop(optional, into)] hint: Option<String>,
    message: Signal<Option<String>>,
) -> impl IntoView {
    let error_id = format!("{name}-error");
    view! {
        <label class="field">
            <span>{label}</span>
            <input type=kind name=name autocomplete=autocomplete required aria-describedby=error_id.clone()/>
            {hint.map(|h| view! { <span class="hint">{h}</span> })}
            <crate::components::wizard::FieldError id=error_id message/>
        </label>
    }
}
