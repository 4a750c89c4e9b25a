//! A webhook's settings as submitted (`WebhookDraft`, what the wizard edits and the API posts) and
//! as validated (`WebhookSettings`). The wizard validates each step with the same functions the
//! server runs before saving, so a message shown beside a field in the browser is the message the
//! API would return.

use super::catalog;
use super::filter::Filter;
use super::headers::{parse_headers, CustomHeader, HeaderDraft};
use super::webhook::{
    parse_basic_password, parse_basic_username, parse_description, parse_ordering_key,
    parse_rate_limit, parse_signature_header, AuthKind, Backoff, RetryPolicy, Schedule,
    SigningSecret, TargetUrl, WebhookName,
};
use super::ValidationError;
use serde::{Deserialize, Serialize};

/// Authentication as submitted. `secret` brings your own `whsec_` secret; `password` left empty
/// on an edit keeps the stored one.
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthDraft {
    #[serde(default = "default_auth_kind")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The header an `hmac` webhook's signature travels in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

fn default_auth_kind() -> String {
    AuthKind::Signature.as_str().to_owned()
}

impl Default for AuthDraft {
    fn default() -> Self {
        Self {
            kind: default_auth_kind(),
            username: None,
            header: None,
            password: None,
            secret: None,
        }
    }
}

/// Retry settings as submitted.
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryDraft {
    #[cfg_attr(feature = "server", schema(minimum = 0, maximum = 10))]
    pub attempts: i64,
    #[cfg_attr(feature = "server", schema(minimum = 1, maximum = 86400))]
    pub delay_seconds: i64,
    pub backoff: String,
    #[cfg_attr(feature = "server", schema(minimum = 1, maximum = 60))]
    pub timeout_seconds: i64,
    /// With `backoff: "schedule"`: the delay before each retry in seconds (its length is the
    /// number of retries; `attempts` and `delay_seconds` are then not used, though still held to
    /// their ranges).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schedule: Vec<i64>,
}

impl Default for RetryDraft {
    fn default() -> Self {
        RetryPolicy::default().into()
    }
}

impl From<RetryPolicy> for RetryDraft {
    fn from(p: RetryPolicy) -> Self {
        Self {
            attempts: p.attempts.into(),
            delay_seconds: p.delay_seconds.into(),
            backoff: p.backoff.as_str().to_owned(),
            timeout_seconds: p.timeout_seconds.into(),
            schedule: p.backoff.schedule(),
        }
    }
}

/// Everything the three wizard steps (or `POST /api/v1/webhooks`) submit.
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookDraft {
    pub name: String,
    pub url: String,
    #[serde(default = "default_method")]
    pub method: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub auth: AuthDraft,
    #[serde(default)]
    pub event_types: Vec<String>,
    #[serde(default)]
    #[cfg_attr(feature = "server", schema(value_type = Option<Vec<Object>>))]
    pub filter: serde_json::Value,
    #[serde(default)]
    pub retry: RetryDraft,
    #[serde(default)]
    #[cfg_attr(feature = "server", schema(minimum = 1, maximum = 10000))]
    pub rate_limit_per_second: Option<i64>,
    #[serde(default)]
    pub sandbox: bool,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Extra headers sent with every request (see `HeaderDraft`).
    #[serde(default)]
    #[cfg_attr(feature = "server", schema(max_items = 20))]
    pub headers: Vec<HeaderDraft>,
    /// Per-member ordering: a path into the event (e.g. `data.member_id`); deliveries with the
    /// same value go out one at a time, in acceptance order. Empty: no ordering.
    #[serde(default)]
    pub ordering_key: String,
}

fn default_method() -> String {
    "POST".to_owned()
}

fn yes() -> bool {
    true
}

impl Default for WebhookDraft {
    fn default() -> Self {
        Self {
            name: String::new(),
            url: String::new(),
            method: default_method(),
            description: String::new(),
            auth: AuthDraft::default(),
            event_types: Vec::new(),
            filter: serde_json::Value::Null,
            retry: RetryDraft::default(),
            rate_limit_per_second: None,
            sandbox: false,
            enabled: true,
            headers: Vec::new(),
            ordering_key: String::new(),
        }
    }
}

/// Validated authentication. A `None` secret means "generate one" on create and "keep the
/// current one" on edit; likewise a `None` Basic password on edit.
#[derive(Clone, Debug)]
pub enum AuthSettings {
    Signature {
        secret: Option<SigningSecret>,
    },
    Jwt {
        secret: Option<SigningSecret>,
    },
    Hmac {
        secret: Option<SigningSecret>,
        header: String,
    },
    Basic {
        username: String,
        password: Option<Password>,
    },
    None,
}

impl AuthSettings {
    pub fn kind(&self) -> AuthKind {
        match self {
            Self::Signature { .. } => AuthKind::Signature,
            Self::Jwt { .. } => AuthKind::Jwt,
            Self::Hmac { .. } => AuthKind::Hmac,
            Self::Basic { .. } => AuthKind::Basic,
            Self::None => AuthKind::None,
        }
    }
}

/// A Basic-auth password; `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(pub String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

/// Settings that passed every check.
#[derive(Clone, Debug)]
pub struct WebhookSettings {
    pub name: WebhookName,
    pub url: TargetUrl,
    pub method: String,
    pub description: String,
    pub auth: AuthSettings,
    pub event_types: Vec<String>,
    pub filter: Filter,
    pub retry: RetryPolicy,
    pub rate_limit_per_second: Option<u32>,
    pub sandbox: bool,
    pub enabled: bool,
    pub headers: Vec<CustomHeader>,
    pub ordering_key: Option<String>,
}

impl WebhookDraft {
    /// Step 1, Endpoint Details. `password_required` is false on an edit, where an empty
    /// password keeps the stored one.
    pub fn validate_endpoint(
        &self,
        password_required: bool,
    ) -> Result<AuthSettings, ValidationError> {
        WebhookName::parse(&self.name)?;
        TargetUrl::parse(&self.url)?;
        if !self.method.eq_ignore_ascii_case("POST") {
            return Err(ValidationError::new("method", "Method must be POST"));
        }
        parse_description(&self.description)?;
        let secret = || {
            self.auth
                .secret
                .as_deref()
                .filter(|s| !s.trim().is_empty())
                .map(SigningSecret::parse)
                .transpose()
        };
        Ok(match AuthKind::parse(&self.auth.kind)? {
            AuthKind::Signature => AuthSettings::Signature { secret: secret()? },
            AuthKind::Jwt => AuthSettings::Jwt { secret: secret()? },
            AuthKind::Hmac => AuthSettings::Hmac {
                secret: secret()?,
                header: parse_signature_header(self.auth.header.as_deref().unwrap_or(""))?,
            },
            AuthKind::Basic => {
                let username = parse_basic_username(self.auth.username.as_deref().unwrap_or(""))?;
                let password = match self.auth.password.as_deref().filter(|p| !p.is_empty()) {
                    Some(p) => Some(Password(parse_basic_password(p)?)),
                    None if password_required => return Err(parse_basic_password("").unwrap_err()),
                    None => None,
                };
                AuthSettings::Basic { username, password }
            }
            AuthKind::None => AuthSettings::None,
        })
    }

    /// Step 2, Event Subscriptions: at least one known event, and a valid filter.
    pub fn validate_events(&self) -> Result<(Vec<String>, Filter), ValidationError> {
        if self.event_types.is_empty() {
            return Err(ValidationError::new(
                "event_types",
                "Select at least one event",
            ));
        }
        let mut types = Vec::with_capacity(self.event_types.len());
        for t in &self.event_types {
            if !catalog::is_known(t) {
                return Err(ValidationError::new(
                    "event_types",
                    format!("Unknown event type '{t}'"),
                ));
            }
            if !types.contains(t) {
                types.push(t.clone());
            }
        }
        types.sort();
        Ok((types, Filter::parse(&self.filter)?))
    }

    /// Step 3, Securities & Retries.
    pub fn validate_retries(&self) -> Result<(RetryPolicy, Option<u32>), ValidationError> {
        let r = &self.retry;
        let backoff = match r.backoff.as_str() {
            "schedule" => Backoff::Schedule(Schedule::new(&r.schedule)?),
            other => Backoff::parse(other)?,
        };
        let policy = RetryPolicy::new(r.attempts, r.delay_seconds, backoff, r.timeout_seconds)?;
        Ok((policy, parse_rate_limit(self.rate_limit_per_second)?))
    }

    /// Step 3 too: the custom headers, checked against the authentication chosen in step 1.
    pub fn validate_headers(&self) -> Result<Vec<CustomHeader>, ValidationError> {
        let kind = AuthKind::parse(&self.auth.kind)?;
        parse_headers(&self.headers, kind, self.auth.header.as_deref())
    }

    /// Every step, in order; the first problem wins.
    pub fn validate(&self, password_required: bool) -> Result<WebhookSettings, ValidationError> {
        let auth = self.validate_endpoint(password_required)?;
        let (event_types, filter) = self.validate_events()?;
        let (retry, rate_limit_per_second) = self.validate_retries()?;
        let headers = self.validate_headers()?;
        let ordering_key = parse_ordering_key(&self.ordering_key)?;
        Ok(WebhookSettings {
            name: WebhookName::parse(&self.name)?,
            url: TargetUrl::parse(&self.url)?,
            method: "POST".to_owned(),
            description: parse_description(&self.description)?,
            auth,
            event_types,
            filter,
            retry,
            rate_limit_per_second,
            sandbox: self.sandbox,
            enabled: self.enabled,
            headers,
            ordering_key,
        })
    }
}

/// A partial update (`PATCH /api/v1/webhooks/{id}`): absent fields keep their value.
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookPatch {
    pub name: Option<String>,
    pub url: Option<String>,
    pub method: Option<String>,
    pub description: Option<String>,
    pub auth: Option<AuthDraft>,
    pub event_types: Option<Vec<String>>,
    #[cfg_attr(feature = "server", schema(value_type = Option<Vec<Object>>))]
    pub filter: Option<serde_json::Value>,
    pub retry: Option<RetryDraft>,
    #[serde(default, with = "double_option")]
    #[cfg_attr(
        feature = "server",
        schema(value_type = Option<i64>, minimum = 1, maximum = 10000)
    )]
    pub rate_limit_per_second: Option<Option<i64>>,
    pub sandbox: Option<bool>,
    pub enabled: Option<bool>,
    /// Replaces the custom headers (a secret one sent with an empty value keeps its value).
    #[cfg_attr(feature = "server", schema(max_items = 20))]
    pub headers: Option<Vec<HeaderDraft>>,
    /// Sets the ordering key path (`""` switches ordering off).
    pub ordering_key: Option<String>,
    /// With `enabled: true` on a switched-off webhook: `true` dead-letters the deliveries it held
    /// while off (they stay in the log and can be replayed) instead of sending them, in order,
    /// as soon as it is on. Ignored otherwise.
    #[serde(default)]
    pub discard_held: Option<bool>,
    /// The webhook's `version` as you read it. When given, the change is refused with `409` if
    /// the webhook has changed since; when left out, the patch applies to the latest settings.
    #[serde(default)]
    pub version: Option<i64>,
}

impl WebhookPatch {
    /// Every setting of `draft`, fenced on `version`: what the edit wizard saves and an import
    /// applies. The Enabled switch is left out: it is not theirs to change.
    pub fn replacing(draft: WebhookDraft, version: i64) -> Self {
        Self {
            name: Some(draft.name),
            url: Some(draft.url),
            method: Some(draft.method),
            description: Some(draft.description),
            auth: Some(draft.auth),
            event_types: Some(draft.event_types),
            filter: Some(draft.filter),
            retry: Some(draft.retry),
            rate_limit_per_second: Some(draft.rate_limit_per_second),
            sandbox: Some(draft.sandbox),
            headers: Some(draft.headers),
            ordering_key: Some(draft.ordering_key),
            enabled: None,
            discard_held: None,
            version: Some(version),
        }
    }

    /// Applies the patch to a draft of the current settings.
    pub fn apply(self, mut d: WebhookDraft) -> WebhookDraft {
        macro_rules! set {
            ($($f:ident),+) => { $(if let Some(v) = self.$f { d.$f = v; })+ };
        }
        set!(
            name,
            url,
            method,
            description,
            auth,
            event_types,
            filter,
            retry,
            rate_limit_per_second,
            sandbox,
            enabled,
            headers,
            ordering_key
        );
        d
    }
}

/// Tells `"field": null` (clear) apart from an absent field (keep).
mod double_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Option<i64>>, s: S) -> Result<S::Ok, S::Error> {
        v.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<i64>>, D::Error> {
        Option::<i64>::deserialize(d).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn draft() -> WebhookDraft {
        WebhookDraft {
            name: "CRM".into(),
            url: "https://crm.example.com/hooks".into(),
            event_types: vec!["points.awarded".into(), "points.awarded".into()],
            ..Default::default()
        }
    }

    #[test]
    fn a_complete_draft_validates_with_defaults() {
        let s = draft().validate(true).unwrap();
        assert_eq!(s.event_types, ["points.awarded"]);
        assert_eq!(s.retry, RetryPolicy::default());
        assert!(matches!(s.auth, AuthSettings::Signature { secret: None }));
    }

    #[test]
    fn each_step_names_its_field() {
        let mut d = draft();
        d.event_types.clear();
        assert_eq!(d.validate(true).unwrap_err().field, "event_types");
        let mut d = draft();
        d.auth.kind = "basic".into();
        d.auth.username = Some("u".into());
        assert_eq!(d.validate(true).unwrap_err().field, "auth.password");
        assert!(
            d.validate(false).is_ok(),
            "an edit keeps the stored password"
        );
        let mut d = draft();
        d.retry.timeout_seconds = 0;
        assert_eq!(d.validate(true).unwrap_err().field, "retry.timeout_seconds");
        let mut d = draft();
        d.auth.secret = Some("whsec_bad".into());
        assert_eq!(d.validate(true).unwrap_err().field, "auth.secret");
        let mut d = draft();
        d.filter = json!([{"path": "data.x", "op": "nope"}]);
        assert_eq!(d.validate(true).unwrap_err().field, "filter[0]");
    }

    #[test]
    fn api_json_with_unknown_fields_is_refused() {
        let ok: WebhookDraft = serde_json::from_value(
            json!({"name": "a", "url": "https://x.io", "event_types": ["user.created"]}),
        )
        .unwrap();
        assert!(ok.enabled);
        assert!(serde_json::from_value::<WebhookDraft>(
            json!({"name": "a", "url": "u", "evnt_types": []})
        )
        .is_err());
    }

    #[test]
    fn patch_keeps_absent_fields_and_clears_nulls() {
        let mut base = draft();
        base.rate_limit_per_second = Some(5);
        let p: WebhookPatch = serde_json::from_value(json!({"enabled": false})).unwrap();
        let d = p.apply(base.clone());
        assert!(!d.enabled);
        assert_eq!(d.rate_limit_per_second, Some(5));
        let p: WebhookPatch =
            serde_json::from_value(json!({"rate_limit_per_second": null})).unwrap();
        assert_eq!(p.apply(base).rate_limit_per_second, None);
    }
}
