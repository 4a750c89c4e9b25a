//! The Enabled switch: a real form posting to the `set_webhook_enabled` server function, so it
//! works before the wasm loads, and takes effect at once. A switched-off webhook holding deliveries
//! offers to discard them (dead-letter, still replayable) instead of sending them when switched on.

use crate::api::webhooks::SetWebhookEnabled;
use crate::components::program::ProgramField;
use leptos::prelude::*;

#[component]
pub fn EnabledToggle(
    id: String,
    name: String,
    enabled: bool,
    /// Deliveries waiting while it is off, as `WebhookView::held_label` spells them.
    #[prop(default = None)]
    held: Option<String>,
    action: ServerAction<SetWebhookEnabled>,
) -> impl IntoView {
    let label = format!("Enabled: {name}");
    view! {
        <ActionForm action attr:class="inline">
            <ProgramField/>
            <input type="hidden" name="id" value=id/>
            <input type="hidden" name="enabled" value=(!enabled).to_string()/>
            {held.filter(|_| !enabled).map(|held| {
                let discard_label =
                    format!("Discard the {held} held deliveries of {name} when switching it on");
                view! {
                    <label class="checkbox discard" title="Dead-letter them instead of sending them (they stay replayable)">
                        <input type="checkbox" name="discard_held" value="true" aria-label=discard_label/>
                        {format!(" discard {held} held")}
                    </label>
                }
            })}
            <button type="submit" class="switch" role="switch" aria-checked=enabled.to_string() aria-label=label>
                <span class="knob" aria-hidden="true"></span>
            </button>
        </ActionForm>
    }
}
