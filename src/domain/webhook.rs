//! Webhook settings as validated values: what the wizard's three steps and the API's webhook body
//! hold. Each newtype's `parse` is the only way to build it, and the browser runs the same checks
//! before **Next** that the server runs before saving.

use super::ValidationError;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// A webhook's display name: 1–100 characters after trimming, unique per program (the store
/// enforces uniqueness, case-insensitively).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WebhookName(String);

impl WebhookName {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(ValidationError::new("name", "Name is required"));
        }
        if name.chars().count() > Self::MAX_CHARS {
            return Err(ValidationError::new(
                "name",
                format!("Name must be at most {} characters", Self::MAX_CHARS),
            ));
        }
        super::validation::no_control_characters("name", "Name", name, &[])?;
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The endpoint a webhook posts to: an absolute `http` or `https` URL with a host, without
/// credentials in it (those belong in Basic auth, where they are encrypted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TargetUrl(String);

impl TargetUrl {
    pub const MAX_LEN: usize = 2048;

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let raw = raw.trim();
        let err = |m: &str| Err(ValidationError::new("url", m));
        if raw.is_empty() {
            return err("URL is required");
        }
        if raw.len() > Self::MAX_LEN {
            return err("URL must be at most 2048 characters");
        }
        let Some(url) = UrlParts::parse(raw) else {
            return err("URL is not a valid absolute URL (e.g. https://example.com/hooks)");
        };
        if !matches!(url.scheme.as_str(), "http" | "https") {
            return err("URL must start with http:// or https://");
        }
        if url.host.is_empty() {
            return err("URL must name a host");
        }
        if url.credentials {
            return err("URL must not contain credentials; use Basic Auth instead");
        }
        if url.fragment {
            return err("URL must not contain a #fragment");
        }
        Ok(Self(url.href))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_https(&self) -> bool {
        self.0.starts_with("https://")
    }

    /// The URL parsed, for the HTTP client and the private-address guard (the server reads it
    /// once, where a webhook is read or a draft is probed).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn parsed(&self) -> Result<url::Url, url::ParseError> {
        url::Url::parse(&self.0)
    }
}

/// What `TargetUrl::parse` checks of a URL, read by a WHATWG URL parser.
struct UrlParts {
    /// Without the `:`.
    scheme: String,
    host: String,
    credentials: bool,
    /// Whether it has a `#`, even an empty one.
    fragment: bool,
    /// The URL serialised in its normal form.
    href: String,
}

impl UrlParts {
    /// The `url` crate on the server.
    #[cfg(not(target_arch = "wasm32"))]
    fn parse(raw: &str) -> Option<Self> {
        let url = url::Url::parse(raw).ok()?;
        Some(Self {
            scheme: url.scheme().to_owned(),
            host: url.host_str().unwrap_or_default().to_owned(),
            credentials: !url.username().is_empty() || url.password().is_some(),
            fragment: url.fragment().is_some(),
            href: url.to_string(),
        })
    }

    /// The browser's own parser in the console's wasm (the same standard, without shipping a
    /// second copy of it and its IDNA tables; the server checks again on save).
    #[cfg(target_arch = "wasm32")]
    fn parse(raw: &str) -> Option<Self> {
        let url = web_sys::Url::new(raw).ok()?;
        let href = url.href();
        Some(Self {
            scheme: url.protocol().trim_end_matches(':').to_owned(),
            host: url.hostname(),
            credentials: !url.username().is_empty() || !url.password().is_empty(),
            // `hash` is empty for a bare `#`; the serialised URL still holds it.
            fragment: href.contains('#'),
            href,
        })
    }
}

/// Longest description accepted, in characters (after trimming).
pub const MAX_DESCRIPTION_CHARS: usize = 500;

/// Free text shown in the list and on the webhook's page: up to `MAX_DESCRIPTION_CHARS`
/// characters, line breaks and tabs but no other control characters.
pub fn parse_description(raw: &str) -> Result<String, ValidationError> {
    let d = raw.trim();
    if d.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(ValidationError::new(
            "description",
            format!("Description must be at most {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    super::validation::no_control_characters("description", "Description", d, &['\n', '\r', '\t'])?;
    Ok(d.to_owned())
}

/// How Herald proves to the receiver that a request is genuine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AuthKind {
    /// Standard Webhooks HMAC-SHA256 signature headers.
    #[default]
    Signature,
    /// `Authorization: Bearer <HS256 JWT>` keyed with the secret string.
    Jwt,
    /// `Authorization: Basic …` with a user name and password.
    Basic,
    /// The hex HMAC-SHA256 of the raw body in a header of the webhook's choosing (e.g.
    /// `X-Incentable-Signature`), keyed with the secret string as given: what receivers written
    /// against the loyalty platform's own snippet verify.
    Hmac,
    /// No authentication.
    None,
}

impl AuthKind {
    pub const ALL: [AuthKind; 5] = [
        Self::Signature,
        Self::Jwt,
        Self::Hmac,
        Self::Basic,
        Self::None,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Signature => "signature",
            Self::Jwt => "jwt",
            Self::Basic => "basic",
            Self::Hmac => "hmac",
            Self::None => "none",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == raw)
            .ok_or_else(|| {
                ValidationError::new(
                    "auth.kind",
                    "Authentication must be one of signature, jwt, hmac, basic, none",
                )
            })
    }

    /// Whether this method signs with a `whsec_` secret.
    pub fn uses_secret(self) -> bool {
        matches!(self, Self::Signature | Self::Jwt | Self::Hmac)
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Signature => "Signature",
            Self::Jwt => "JWT",
            Self::Basic => "Basic Auth",
            Self::Hmac => "HMAC header",
            Self::None => "None",
        }
    }
}

/// A Standard Webhooks signing secret, `whsec_` + base64 of 24–64 bytes. Deliberately not
/// `Serialize`, and its `Debug` prints only the masked form: it leaves the process only inside a
/// signature or on explicit reveal.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret(String);

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningSecret({})", self.masked())
    }
}

impl SigningSecret {
    pub const PREFIX: &'static str = "whsec_";

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let err = || {
            ValidationError::new(
                "auth.secret",
                "Secret must be whsec_ followed by base64 of 24 to 64 bytes",
            )
        };
        let body = raw.trim().strip_prefix(Self::PREFIX).ok_or_else(err)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|_| err())?;
        if !(24..=64).contains(&bytes.len()) {
            return Err(err());
        }
        Ok(Self(raw.trim().to_owned()))
    }

    /// Builds a secret from fresh random bytes (the caller supplies the randomness so this module
    /// stays free of any particular RNG).
    pub fn from_random_bytes(bytes: &[u8; 32]) -> Self {
        Self(format!(
            "{}{}",
            Self::PREFIX,
            base64::engine::general_purpose::STANDARD.encode(bytes)
        ))
    }

    /// The secret string as given (the JWT key, and what a reveal shows).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The decoded key bytes (the HMAC key of a Standard Webhooks signature).
    pub fn key_bytes(&self) -> Vec<u8> {
        let body = &self.0[Self::PREFIX.len()..];
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .expect("validated at construction")
    }

    /// `whsec_abcd…` with the rest hidden, for lists.
    pub fn masked(&self) -> String {
        format!("{}…", &self.0[..Self::PREFIX.len() + 4])
    }
}

/// How retry delays grow.
/// An explicit list of retry delays: retry `n` waits `delays[n]` seconds after the failure before
/// it (0 is "at once"), so a published schedule such as Incentable's (immediately, 5 min, 30 min,
/// 2 h, 24 h) is configured as it is written. Its length is the number of retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    len: u8,
    delays: [u32; RetryPolicy::MAX_ATTEMPTS as usize],
}

impl Schedule {
    /// 1 to 10 delays of 0 s to 24 h each.
    pub fn new(delays: &[i64]) -> Result<Self, ValidationError> {
        let max = RetryPolicy::MAX_ATTEMPTS as usize;
        if delays.is_empty() || delays.len() > max {
            return Err(ValidationError::new(
                "retry.schedule",
                format!("Give 1 to {max} retry delays, e.g. 0, 5m, 30m, 2h, 24h"),
            ));
        }
        let mut out = [0u32; RetryPolicy::MAX_ATTEMPTS as usize];
        for (i, &d) in delays.iter().enumerate() {
            if !(0..=i64::from(RetryPolicy::MAX_DELAY_SECONDS)).contains(&d) {
                return Err(ValidationError::new(
                    "retry.schedule",
                    format!(
                        "Retry delay {} must be between 0 seconds and 24 hours",
                        i + 1
                    ),
                ));
            }
            out[i] = d as u32;
        }
        Ok(Self {
            len: delays.len() as u8,
            delays: out,
        })
    }

    /// The delays in seconds, retry 1 first.
    pub fn delays(&self) -> &[u32] {
        &self.delays[..usize::from(self.len)]
    }

    /// Reads "0, 5m, 30m, 2h, 24h" (seconds, or a number with `s`, `m`, `h` or `d`).
    pub fn parse_list(text: &str) -> Result<Vec<i64>, ValidationError> {
        text.split([',', ' '])
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (number, unit) =
                    p.split_at(p.find(|c: char| !c.is_ascii_digit()).unwrap_or(p.len()));
                let n: i64 = number.parse().map_err(|_| {
                    ValidationError::new(
                        "retry.schedule",
                        format!("{p:?} is not a delay (try 30s, 5m, 2h or 1d)"),
                    )
                })?;
                let unit = match unit.trim() {
                    "" | "s" => 1,
                    "m" | "min" => 60,
                    "h" => 3_600,
                    "d" => 86_400,
                    _ => {
                        return Err(ValidationError::new(
                            "retry.schedule",
                            format!("{p:?} is not a delay (try 30s, 5m, 2h or 1d)"),
                        ))
                    }
                };
                Ok(n.saturating_mul(unit))
            })
            .collect()
    }

    /// The list as people write it: "0s, 5m, 30m, 2h, 1d".
    pub fn format_list(delays: &[i64]) -> String {
        delays
            .iter()
            .map(|&d| match d {
                d if d != 0 && d % 86_400 == 0 => format!("{}d", d / 86_400),
                d if d != 0 && d % 3_600 == 0 => format!("{}h", d / 3_600),
                d if d != 0 && d % 60 == 0 => format!("{}m", d / 60),
                d => format!("{d}s"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// How retry delays grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Backoff {
    Fixed,
    #[default]
    Exponential,
    Schedule(Schedule),
}

impl Backoff {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fixed => "fixed",
            Self::Exponential => "exponential",
            Self::Schedule(_) => "schedule",
        }
    }

    /// `fixed` or `exponential` (a schedule comes with its delays: `Schedule::new`).
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        match raw {
            "fixed" => Ok(Self::Fixed),
            "exponential" => Ok(Self::Exponential),
            _ => Err(ValidationError::new(
                "retry.backoff",
                "Backoff must be fixed, exponential or schedule",
            )),
        }
    }

    /// The delays of a schedule (empty otherwise).
    pub fn schedule(self) -> Vec<i64> {
        match self {
            Self::Schedule(s) => s.delays().iter().map(|&d| i64::from(d)).collect(),
            _ => Vec::new(),
        }
    }

    /// As stored: `fixed`, `exponential` or `schedule:0,300,1800`.
    pub fn to_stored(self) -> String {
        match self {
            Self::Schedule(s) => format!(
                "schedule:{}",
                s.delays()
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            other => other.as_str().to_owned(),
        }
    }

    pub fn from_stored(raw: &str) -> Result<Self, ValidationError> {
        match raw.strip_prefix("schedule:") {
            Some(list) => {
                let delays: Vec<i64> = list.split(',').map(|d| d.parse().unwrap_or(-1)).collect();
                Ok(Self::Schedule(Schedule::new(&delays)?))
            }
            None => Self::parse(raw),
        }
    }
}

/// A webhook's retry and timeout policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Extra tries after the first failure, 0–10.
    pub attempts: u32,
    /// Base delay before a retry, 1 s – 24 h.
    pub delay_seconds: u32,
    pub backoff: Backoff,
    /// How long one request may take, 1–60 s.
    pub timeout_seconds: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 5,
            delay_seconds: 30,
            backoff: Backoff::Exponential,
            timeout_seconds: 15,
        }
    }
}

impl RetryPolicy {
    pub const MAX_ATTEMPTS: u32 = 10;
    pub const MAX_DELAY_SECONDS: u32 = 86_400;
    pub const MAX_TIMEOUT_SECONDS: u32 = 60;

    pub fn new(
        attempts: i64,
        delay_seconds: i64,
        backoff: Backoff,
        timeout_seconds: i64,
    ) -> Result<Self, ValidationError> {
        let range = |field: &str, label: &str, v: i64, lo: i64, hi: i64| {
            if (lo..=hi).contains(&v) {
                Ok(v as u32)
            } else {
                Err(ValidationError::new(
                    field,
                    format!("{label} must be between {lo} and {hi}"),
                ))
            }
        };
        // The number given is checked whatever the backoff (the document states its limits),
        // though a schedule's length is then its number of retries (1 to 10: `Schedule::new`).
        let attempts = range(
            "retry.attempts",
            "Retry Attempts",
            attempts,
            0,
            Self::MAX_ATTEMPTS.into(),
        )?;
        let attempts = match backoff {
            Backoff::Schedule(s) => s.delays().len() as u32,
            _ => attempts,
        };
        Ok(Self {
            attempts,
            delay_seconds: range(
                "retry.delay_seconds",
                "Retry Delay",
                delay_seconds,
                1,
                Self::MAX_DELAY_SECONDS.into(),
            )?,
            backoff,
            timeout_seconds: range(
                "retry.timeout_seconds",
                "Request Timeout",
                timeout_seconds,
                1,
                Self::MAX_TIMEOUT_SECONDS.into(),
            )?,
        })
    }
}

/// Deliveries per second a webhook may receive, when limited.
pub fn parse_rate_limit(raw: Option<i64>) -> Result<Option<u32>, ValidationError> {
    match raw {
        None => Ok(None),
        Some(n) if (1..=10_000).contains(&n) => Ok(Some(n as u32)),
        Some(_) => Err(ValidationError::new(
            "rate_limit_per_second",
            "Rate Limit must be between 1 and 10000 per second",
        )),
    }
}

/// Longest Basic-auth user name or password accepted, in bytes.
pub const MAX_BASIC_LEN: usize = 200;

/// Longest HMAC signature header name accepted.
pub const MAX_SIGNATURE_HEADER_LEN: usize = 64;

/// Headers Herald sets on every request, so an HMAC signature cannot travel in one (nor in a
/// `webhook-` header, the Standard Webhooks ones).
pub const HEADERS_HERALD_SETS: [&str; 5] = [
    "host",
    "content-type",
    "content-length",
    "user-agent",
    "authorization",
];

/// Basic-auth user name: required, no colon (it would split the credentials).
pub fn parse_basic_username(raw: &str) -> Result<String, ValidationError> {
    let u = raw.trim();
    if u.is_empty() {
        return Err(ValidationError::new(
            "auth.username",
            "User Name is required for Basic Auth",
        ));
    }
    if u.contains(':') || u.chars().any(char::is_control) || u.len() > MAX_BASIC_LEN {
        return Err(ValidationError::new(
            "auth.username",
            format!("User Name must be at most {MAX_BASIC_LEN} characters, without ':'"),
        ));
    }
    Ok(u.to_owned())
}

/// The header an `hmac` webhook's signature travels in: an HTTP header name (letters, digits,
/// `-`), not one Herald sets itself.
pub fn parse_signature_header(raw: &str) -> Result<String, ValidationError> {
    let h = raw.trim();
    let err = |m: &str| Err(ValidationError::new("auth.header", m));
    if h.is_empty() {
        return err("Header is required for HMAC header, e.g. X-Incentable-Signature");
    }
    if h.len() > MAX_SIGNATURE_HEADER_LEN
        || !h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return err(&format!(
            "Header must be a header name of up to {MAX_SIGNATURE_HEADER_LEN} letters, digits and '-'"
        ));
    }
    let lower = h.to_ascii_lowercase();
    if HEADERS_HERALD_SETS.contains(&lower.as_str()) || lower.starts_with("webhook-") {
        return err("Herald sets this header itself; choose another name");
    }
    Ok(h.to_owned())
}

pub fn parse_basic_password(raw: &str) -> Result<String, ValidationError> {
    if raw.is_empty() || raw.len() > MAX_BASIC_LEN {
        return Err(ValidationError::new(
            "auth.password",
            format!("Password is required for Basic Auth (at most {MAX_BASIC_LEN} characters)"),
        ));
    }
    Ok(raw.to_owned())
}

/// What the list shows in its Status column.
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookStatus {
    Active,
    Inactive,
    Failed,
}

impl WebhookStatus {
    /// `inactive` when disabled; otherwise `failed` when the latest live attempt failed.
    pub fn derive(enabled: bool, last_live_failed: bool) -> Self {
        match (enabled, last_live_failed) {
            (false, _) => Self::Inactive,
            (true, true) => Self::Failed,
            (true, false) => Self::Active,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Active => "Active",
            Self::Inactive => "Inactive",
            Self::Failed => "Failed",
        }
    }
}

/// Success rate in percent (0–100), `None` before any live attempt.
pub fn success_rate(successes: i64, attempts: i64) -> Option<f64> {
    (attempts > 0).then(|| successes as f64 * 100.0 / attempts as f64)
}

/// Longest ordering key path accepted.
pub const MAX_ORDERING_KEY_LEN: usize = 200;

/// Per-member ordering: a dot-separated path into the envelope (e.g. `data.member_id`). Empty
/// means off.
pub fn parse_ordering_key(raw: &str) -> Result<Option<String>, ValidationError> {
    let path = raw.trim();
    if path.is_empty() {
        return Ok(None);
    }
    let segment_ok = |seg: &str| {
        !seg.is_empty()
            && seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    if path.len() > MAX_ORDERING_KEY_LEN || !path.split('.').all(segment_ok) {
        return Err(ValidationError::new(
            "ordering_key",
            "Ordering key must be a dot-separated path such as data.member_id",
        ));
    }
    Ok(Some(path.to_owned()))
}

/// The ordering value of an event envelope for `path`: a string as is, a number or boolean as
/// written; `None` (not ordered) when the path is missing, null, an object or a list.
pub fn ordering_value(envelope: &serde_json::Value, path: &str) -> Option<String> {
    match super::filter::lookup(envelope, path)? {
        serde_json::Value::String(s) => Some(s.clone()),
        v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_)) => Some(v.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(
            WebhookName::parse("  Rewards ").unwrap().as_str(),
            "Rewards"
        );
        assert_eq!(WebhookName::parse("   ").unwrap_err().field, "name");
        assert!(WebhookName::parse(&"x".repeat(101)).is_err());
        assert!(WebhookName::parse("a\u{7}b").is_err());
    }

    #[test]
    fn urls_must_be_http_with_a_host_and_no_credentials() {
        assert!(TargetUrl::parse("https://example.com/hooks").is_ok());
        assert!(TargetUrl::parse("http://127.0.0.1:9000/x").is_ok());
        for bad in [
            "",
            "ftp://example.com",
            "example.com",
            "https://user:pw@example.com",
            "https://example.com/#frag",
        ] {
            let e = TargetUrl::parse(bad).unwrap_err();
            assert_eq!(e.field, "url", "{bad}");
        }
    }

    #[test]
    fn retry_policy_ranges_name_the_field() {
        assert!(RetryPolicy::new(0, 1, Backoff::Fixed, 1).is_ok());
        assert!(RetryPolicy::new(10, 86_400, Backoff::Exponential, 60).is_ok());
        assert_eq!(
            RetryPolicy::new(11, 30, Backoff::Fixed, 15)
                .unwrap_err()
                .field,
            "retry.attempts"
        );
        assert_eq!(
            RetryPolicy::new(1, 0, Backoff::Fixed, 15)
                .unwrap_err()
                .field,
            "retry.delay_seconds"
        );
        assert_eq!(
            RetryPolicy::new(1, 30, Backoff::Fixed, 61)
                .unwrap_err()
                .field,
            "retry.timeout_seconds"
        );
        // With a schedule its length counts the retries, and the number sent is still checked.
        let schedule = Backoff::Schedule(Schedule::new(&[0, 300, 1800]).unwrap());
        assert_eq!(RetryPolicy::new(7, 30, schedule, 15).unwrap().attempts, 3);
        assert_eq!(
            RetryPolicy::new(11, 30, schedule, 15).unwrap_err().field,
            "retry.attempts"
        );
    }

    #[test]
    fn secrets_round_trip_and_reject_short_keys() {
        let s = SigningSecret::from_random_bytes(&[7u8; 32]);
        let again = SigningSecret::parse(s.expose()).unwrap();
        assert_eq!(again.key_bytes(), vec![7u8; 32]);
        assert!(s.masked().starts_with("whsec_") && s.masked().ends_with('…'));
        let short = format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode([1u8; 10])
        );
        assert!(SigningSecret::parse(&short).is_err());
        assert!(SigningSecret::parse("nope").is_err());
    }

    #[test]
    fn status_and_rate_follow_the_design() {
        assert_eq!(WebhookStatus::derive(false, true), WebhookStatus::Inactive);
        assert_eq!(WebhookStatus::derive(true, true), WebhookStatus::Failed);
        assert_eq!(WebhookStatus::derive(true, false), WebhookStatus::Active);
        assert_eq!(success_rate(0, 0), None);
        assert_eq!(success_rate(3, 4), Some(75.0));
    }

    #[test]
    fn ordering_keys_are_paths_and_values_are_scalars() {
        assert_eq!(parse_ordering_key("  ").unwrap(), None);
        assert_eq!(
            parse_ordering_key(" data.member_id ").unwrap().as_deref(),
            Some("data.member_id")
        );
        for bad in ["data..id", ".data", "data.member id", &"a".repeat(201)] {
            assert_eq!(
                parse_ordering_key(bad).unwrap_err().field,
                "ordering_key",
                "{bad}"
            );
        }
        let env = serde_json::json!({"data": {"member_id": "m_1", "n": 7, "ok": true, "o": {}, "z": null}});
        assert_eq!(
            ordering_value(&env, "data.member_id").as_deref(),
            Some("m_1")
        );
        assert_eq!(ordering_value(&env, "data.n").as_deref(), Some("7"));
        assert_eq!(ordering_value(&env, "data.ok").as_deref(), Some("true"));
        for none in ["data.o", "data.z", "data.missing"] {
            assert_eq!(ordering_value(&env, none), None, "{none}");
        }
    }
}
