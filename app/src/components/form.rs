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
