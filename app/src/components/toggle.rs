//! The Enabled switch: a real form posting to the `set_webhook_enabled` server function, so it
//! works before the wasm loads, and takes effect at once.

use crate::api::webhooks::SetWebhookEnabled;
use crate::components::program::ProgramField;
use leptos::prelude::*;

#[component]
pub fn EnabledToggle(
    id: String,
    name: String,
    enabled: bool,
    action: ServerAction<SetWebhookEnabled>,
) -> impl IntoView {
    let label = format!("Enabled: {name}");
    view! {
        <ActionForm action attr:class="inline">
            <ProgramField/>
            <input type="hidden" name="id" value=id/>
            <input type="hidden" name="enabled" value=(!enabled).to_string()/>
            <button type="submit" class="switch" role="switch" aria-checked=enabled.to_string() aria-label=label>
                <span class="knob" aria-hidden="true"></span>
            </button>
        </ActionForm>
    }
}
