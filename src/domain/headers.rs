//! Custom headers: name/value pairs a webhook adds to every request (a receiver's routing key, a
//! static token its gateway wants). A value marked secret is sealed with the webhook's other
//! secrets, masked wherever it is shown and redacted in the audit log; plain values are stored and
//! shown as they are.

use super::webhook::AuthKind;
use super::ValidationError;
use serde::{Deserialize, Serialize};

/// Most custom headers one webhook may carry.
pub const MAX_HEADERS: usize = 20;
/// Longest header name and value accepted.
pub const MAX_NAME_LEN: usize = 64;
pub const MAX_VALUE_LEN: usize = 1024;
/// The characters a header name may hold (HTTP's token characters, `is_token_byte`), in words.
pub const NAME_CHARS: &str = "letters, digits and - _ . ! # $ % & ' * + ^ ` | ~";

/// What a secret header's value looks like wherever it is shown.
pub const MASK: &str = "••••••••";

/// A header as submitted. On an edit, a secret header whose `value` is left empty keeps the value
/// stored for that name.
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct HeaderDraft {
    pub name: String,
    #[serde(default)]
    pub value: String,
    #[serde(default)]
    pub secret: bool,
}

/// A header that passed validation. `value` is `None` only for a secret header whose stored value
/// is kept (an edit that left it empty).
#[derive(Clone, PartialEq, Eq)]
pub struct CustomHeader {
    pub name: String,
    pub value: Option<String>,
    pub secret: bool,
}

impl std::fmt::Debug for CustomHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let value = match (&self.value, self.secret) {
            (Some(v), false) => v.as_str(),
            (Some(_), true) => MASK,
            (None, _) => "(kept)",
        };
        write!(f, "{}: {value}", self.name)
    }
}

impl CustomHeader {
    /// The stored form: a secret's value left out (it is sealed elsewhere).
    pub fn stored(self) -> StoredHeader {
        StoredHeader {
            value: self.value.filter(|_| !self.secret),
            name: self.name,
            secret: self.secret,
        }
    }
}

/// A header as a webhook stores it: a secret's value lives sealed with the other secrets, so it
/// is `None` here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredHeader {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub secret: bool,
}

impl StoredHeader {
    /// The draft an edit starts from: secret values left empty (kept unless retyped).
    pub fn draft(&self) -> HeaderDraft {
        HeaderDraft {
            name: self.name.clone(),
            value: self.value.clone().unwrap_or_default(),
            secret: self.secret,
        }
    }

    /// The value as shown: a secret one masked.
    pub fn shown_value(&self) -> String {
        match (&self.value, self.secret) {
            (Some(v), false) => v.clone(),
            _ => MASK.to_owned(),
        }
    }
}

/// Names Herald sets (or HTTP itself governs) and a custom header must not replace.
fn reserved(lower: &str) -> bool {
    matches!(
        lower,
        "host"
            | "content-type"
            | "content-length"
            | "content-encoding"
            | "transfer-encoding"
            | "connection"
            | "keep-alive"
            | "upgrade"
            | "te"
            | "trailer"
            | "expect"
            | "user-agent"
    ) || lower.starts_with("webhook-")
        || lower.starts_with("proxy-")
}

/// Checks the submitted headers against the webhook's authentication (`auth_kind`, and for HMAC
/// the header its signature travels in). Errors name the row: `headers[2].name`.
pub fn parse_headers(
    drafts: &[HeaderDraft],
    auth_kind: AuthKind,
    signature_header: Option<&str>,
) -> Result<Vec<CustomHeader>, ValidationError> {
    if drafts.len() > MAX_HEADERS {
        return Err(ValidationError::new(
            "headers",
            format!("At most {MAX_HEADERS} custom headers per webhook"),
        ));
    }
    let mut seen: Vec<String> = Vec::with_capacity(drafts.len());
    let mut out = Vec::with_capacity(drafts.len());
    for (i, d) in drafts.iter().enumerate() {
        let name = d.name.trim();
        let lower = name.to_ascii_lowercase();
        let name_err = |m: String| Err(ValidationError::new(format!("headers[{i}].name"), m));
        if name.is_empty() {
            return name_err("Header name is required (or remove the row)".into());
        }
        if name.len() > MAX_NAME_LEN || !name.bytes().all(is_token_byte) {
            return name_err(format!(
                "Header name '{name}' must be up to {MAX_NAME_LEN} {NAME_CHARS}"
            ));
        }
        if reserved(&lower) {
            return name_err(format!(
                "Header '{name}' is set by Herald or by HTTP itself and cannot be replaced"
            ));
        }
        if lower == "authorization" && matches!(auth_kind, AuthKind::Jwt | AuthKind::Basic) {
            return name_err(format!(
                "Header '{name}' carries this webhook's {} credentials; choose another name",
                auth_kind.label()
            ));
        }
        if auth_kind == AuthKind::Hmac
            && signature_header.is_some_and(|h| h.eq_ignore_ascii_case(name))
        {
            return name_err(format!(
                "Header '{name}' carries this webhook's HMAC signature; choose another name"
            ));
        }
        if seen.contains(&lower) {
            return name_err(format!("Header '{name}' is listed twice"));
        }
        seen.push(lower);
        let value = d.value.trim();
        let value_err = |m: String| Err(ValidationError::new(format!("headers[{i}].value"), m));
        if value.len() > MAX_VALUE_LEN {
            return value_err(format!(
                "The value of '{name}' is longer than {MAX_VALUE_LEN} characters"
            ));
        }
        if !value
            .bytes()
            .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
        {
            return value_err(format!(
                "The value of '{name}' may hold printable ASCII characters only (no line breaks)"
            ));
        }
        let value = match (value.is_empty(), d.secret) {
            (false, _) => Some(value.to_owned()),
            (true, true) => None,
            (true, false) => return value_err(format!("Enter a value for '{name}'")),
        };
        out.push(CustomHeader {
            name: name.to_owned(),
            value,
            secret: d.secret,
        });
    }
    Ok(out)
}

/// RFC 9110 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(name: &str, value: &str, secret: bool) -> HeaderDraft {
        HeaderDraft {
            name: name.into(),
            value: value.into(),
            secret,
        }
    }

    fn field(r: Result<Vec<CustomHeader>, ValidationError>) -> String {
        let e = r.unwrap_err();
        format!("{}: {}", e.field, e.message)
    }

    #[test]
    fn plain_and_secret_headers_pass_trimmed() {
        let out = parse_headers(
            &[
                h(" X-Tenant ", " acme ", false),
                h("X-Api-Token", "t0k", true),
            ],
            AuthKind::Signature,
            None,
        )
        .unwrap();
        assert_eq!(out[0].name, "X-Tenant");
        assert_eq!(out[0].value.as_deref(), Some("acme"));
        assert!(out[1].secret);
        assert_eq!(format!("{:?}", out[1]), format!("X-Api-Token: {MASK}"));
        // Authorization is free while the auth method does not use it.
        assert!(parse_headers(
            &[h("Authorization", "Bearer x", true)],
            AuthKind::Signature,
            None
        )
        .is_ok());
    }

    #[test]
    fn reserved_duplicate_and_malformed_headers_are_refused_by_row() {
        let kind = AuthKind::Signature;
        for (name, why) in [
            ("Host", "cannot be replaced"),
            ("content-length", "cannot be replaced"),
            ("Webhook-Signature", "cannot be replaced"),
            ("X Bad", "must be up to"),
            ("", "required"),
        ] {
            let msg = field(parse_headers(
                &[h("X-Ok", "1", false), h(name, "v", false)],
                kind,
                None,
            ));
            assert!(msg.starts_with("headers[1].name: "), "{msg}");
            assert!(msg.contains(why), "{name}: {msg}");
        }
        let msg = field(parse_headers(
            &[h("X-A", "1", false), h("x-a", "2", false)],
            kind,
            None,
        ));
        assert!(msg.contains("listed twice"), "{msg}");
        let msg = field(parse_headers(
            &[h("X-A", "line\r\nbreak", false)],
            kind,
            None,
        ));
        assert!(msg.starts_with("headers[0].value"), "{msg}");
        let msg = field(parse_headers(&[h("X-A", "", false)], kind, None));
        assert!(msg.contains("Enter a value"), "{msg}");
        let too_many: Vec<_> = (0..=MAX_HEADERS)
            .map(|i| h(&format!("X-{i}"), "v", false))
            .collect();
        assert_eq!(
            field(parse_headers(&too_many, kind, None)),
            format!("headers: At most {MAX_HEADERS} custom headers per webhook")
        );
    }

    #[test]
    fn headers_the_auth_method_sets_are_refused() {
        for kind in [AuthKind::Jwt, AuthKind::Basic] {
            let msg = field(parse_headers(&[h("authorization", "x", false)], kind, None));
            assert!(msg.contains("credentials"), "{msg}");
        }
        let msg = field(parse_headers(
            &[h("X-Sig", "x", false)],
            AuthKind::Hmac,
            Some("x-sig"),
        ));
        assert!(msg.contains("HMAC signature"), "{msg}");
    }

    #[test]
    fn an_empty_secret_value_means_keep() {
        let out = parse_headers(&[h("X-Token", "", true)], AuthKind::None, None).unwrap();
        assert_eq!(out[0].value, None);
    }
}
