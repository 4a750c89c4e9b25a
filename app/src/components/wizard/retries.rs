//! Step 3, Securities & Retries: retry policy, timeout, rate limit and sandbox mode.

use super::{FieldError, WizardState};
use leptos::prelude::*;

#[component]
pub fn RetriesStep(state: WizardState) -> impl IntoView {
    let draft = state.draft;
    // Number inputs keep what the person typed; anything unparsable becomes -1, which validation
    // then refuses with the field's range.
    let number =
        |ev: &leptos::ev::Event| event_target_value(ev).trim().parse::<i64>().unwrap_or(-1);
    view! {
        <h2>"Securities & Retries"</h2>
        <div class="form-grid">
            <label class="field">
                <span>"Retry Attempts"</span>
                <input
                    type="number"
                    name="retry-attempts"
                    min="0"
                    max="10"
                    aria-describedby="attempts-error"
                    prop:value=move || draft.with(|d| d.retry.attempts.to_string())
                    on:input=move |ev| draft.update(|d| d.retry.attempts = number(&ev))
                />
                <FieldError id="attempts-error" message=state.error_for("retry.attempts")/>
            </label>
            <label class="field">
                <span>"Retry Delay (seconds)"</span>
                <input
                    type="number"
                    name="retry-delay"
                    min="1"
                    max="86400"
                    aria-describedby="delay-error"
                    prop:value=move || draft.with(|d| d.retry.delay_seconds.to_string())
                    on:input=move |ev| draft.update(|d| d.retry.delay_seconds = number(&ev))
                />
                <FieldError id="delay-error" message=state.error_for("retry.delay_seconds")/>
            </label>
            <label class="field">
                <span>"Backoff"</span>
                <select
                    name="backoff"
                    on:change=move |ev| draft.update(|d| d.retry.backoff = event_target_value(&ev))
                >
                    <option value="exponential" selected=move || draft.with(|d| d.retry.backoff == "exponential")>
                        "Exponential"
                    </option>
                    <option value="fixed" selected=move || draft.with(|d| d.retry.backoff == "fixed")>"Fixed"</option>
                </select>
            </label>
            <label class="field">
                <span>"Request Timeout (seconds)"</span>
                <input
                    type="number"
                    name="timeout"
                    min="1"
                    max="60"
                    aria-describedby="timeout-error"
                    prop:value=move || draft.with(|d| d.retry.timeout_seconds.to_string())
                    on:input=move |ev| draft.update(|d| d.retry.timeout_seconds = number(&ev))
                />
                <FieldError id="timeout-error" message=state.error_for("retry.timeout_seconds")/>
            </label>
            <label class="field">
                <span>"Rate Limit (per second, optional)"</span>
                <input
                    type="number"
                    name="rate-limit"
                    min="1"
                    max="10000"
                    aria-describedby="rate-error"
                    prop:value=move || draft.with(|d| d.rate_limit_per_second.map(|n| n.to_string()).unwrap_or_default())
                    on:input=move |ev| {
                        let raw = event_target_value(&ev);
                        draft.update(|d| {
                            d.rate_limit_per_second = (!raw.trim().is_empty()).then(|| raw.trim().parse().unwrap_or(-1))
                        })
                    }
                />
                <FieldError id="rate-error" message=state.error_for("rate_limit_per_second")/>
            </label>
        </div>
        <label class="checkbox">
            <input
                type="checkbox"
                name="sandbox"
                prop:checked=move || draft.with(|d| d.sandbox)
                on:change=move |ev| draft.update(|d| d.sandbox = event_target_checked(&ev))
            />
            <span>"Sandbox mode "<span class="muted">"(record the requests that would be sent, send nothing)"</span></span>
        </label>
    }
}
