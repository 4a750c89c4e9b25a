//! Builds the wire views (`domain::views`) from storage records.

use super::model::*;
use crate::domain::views::*;

impl From<&Webhook> for WebhookView {
    fn from(w: &Webhook) -> Self {
        let r = &w.record;
        Self {
            id: r.id.to_string(),
            name: r.name.as_str().to_owned(),
            url: r.url.as_str().to_owned(),
            method: r.method.clone(),
            description: r.description.clone(),
            auth: AuthView {
                kind: r.auth_kind.as_str().to_owned(),
                username: r.basic_username(),
                header: r.signature_header(),
            },
            event_types: r.event_types.clone(),
            filter: r.filter.to_json(),
            retry: RetryView {
                attempts: r.retry.attempts,
                delay_seconds: r.retry.delay_seconds,
                backoff: r.retry.backoff.as_str().to_owned(),
                schedule: r.retry.backoff.schedule(),
                timeout_seconds: r.retry.timeout_seconds,
            },
            rate_limit_per_second: r.rate_limit_per_second,
            sandbox: r.sandbox,
            enabled: r.enabled,
            headers: r
                .headers
                .iter()
                .map(|h| HeaderView {
                    name: h.name.clone(),
                    value: h.shown_value(),
                    secret: h.secret,
                })
                .collect(),
            ordering_key: r.ordering_key.clone(),
            status: w.status(),
            success_rate: w.success_rate(),
            total_attempts: w.stats.total_attempts,
            successful_attempts: w.stats.successful_attempts,
            last_success_at: w.stats.last_success_at,
            last_failure_at: w.stats.last_failure_at,
            disabled_reason: w.stats.disabled_reason.clone(),
            held: 0,
            held_more: false,
            created_at: r.created_at,
            enabled_at: w.stats.enabled_at,
            updated_at: r.updated_at,
            version: r.version,
            figures: None,
            flags: Vec::new(),
        }
    }
}

impl From<&AttemptSummary> for AttemptView {
    fn from(a: &AttemptSummary) -> Self {
        Self {
            id: a.id.to_string(),
            webhook_id: a.webhook_id.to_string(),
            webhook_name: a.webhook_name.clone(),
            delivery_id: a.delivery_id.as_ref().map(ToString::to_string),
            event_id: a.event_id.clone(),
            event_type: a.event_type.clone(),
            attempt: a.attempt,
            trigger: a.trigger,
            status: a.status,
            status_code: a.status_code,
            error: a.error.clone(),
            latency_ms: a.latency_ms,
            lag_ms: a.lag_ms,
            created_at: a.created_at,
            delivered_at: a.delivered_at,
            superseded: a.superseded,
            member: a.member.clone(),
        }
    }
}

impl From<&AttemptDetail> for AttemptDetailView {
    fn from(d: &AttemptDetail) -> Self {
        Self {
            attempt: (&d.summary).into(),
            request: RequestView {
                url: d.request_url.clone(),
                headers: d.request_headers.clone(),
                body: d.request_body.clone(),
            },
            response: d.response_headers.as_ref().map(|h| ResponseView {
                headers: h.clone(),
                body: d.response_body.clone().unwrap_or_default(),
            }),
        }
    }
}

impl From<&AttemptPage> for AttemptPageView {
    fn from(p: &AttemptPage) -> Self {
        Self {
            items: p.items.iter().map(Into::into).collect(),
            next_cursor: p.next.as_ref().map(Cursor::encode),
            prev_cursor: p.prev.as_ref().map(Cursor::encode),
        }
    }
}

impl From<&DeliverySummary> for DeliveryView {
    fn from(d: &DeliverySummary) -> Self {
        Self {
            id: d.id.to_string(),
            webhook_id: d.webhook_id.to_string(),
            webhook_name: d.webhook_name.clone(),
            event_id: d.event_id.clone(),
            event_type: d.event_type.clone(),
            trigger: d.trigger,
            status: d.status,
            tries: d.tries,
            next_attempt_at: d.next_attempt_at,
            last_error: d.last_error.clone(),
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}

impl From<&DeliveryPage> for DeliveryPageView {
    fn from(p: &DeliveryPage) -> Self {
        Self {
            items: p.items.iter().map(Into::into).collect(),
            next_cursor: p.next.as_ref().map(DeliveryCursor::encode),
        }
    }
}

impl From<&crate::store::MemberRecord> for crate::domain::account::UserView {
    fn from(m: &crate::store::MemberRecord) -> Self {
        Self {
            id: m.user.id.to_string(),
            email: m.user.email.clone(),
            role: m.role,
            install_admin: m.user.install_admin,
            created_at: m.user.created_at,
        }
    }
}

impl From<&crate::store::ApiKeySummary> for crate::domain::account::ApiKeyView {
    fn from(k: &crate::store::ApiKeySummary) -> Self {
        Self {
            id: k.id.to_string(),
            name: k.name.clone(),
            scope: k.scope,
            prefix: k.prefix.clone(),
            created_at: k.created_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
        }
    }
}
