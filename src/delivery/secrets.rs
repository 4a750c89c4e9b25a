//! A webhook's secrets as one sealed bundle: its signing secrets (the current one first, plus one
//! still valid for 24 h after a rotation) or its Basic password, and the values of its secret
//! custom headers. Plain text exists only in memory,
//! for as long as a request is being signed or a reveal answered.

use crate::auth::seal::{SealError, Sealer};
use crate::domain::webhook::SigningSecret;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How long a rotated-out secret keeps signing, so receivers can switch without dropping events.
pub const ROTATION_OVERLAP: chrono::Duration = chrono::Duration::hours(24);

#[derive(Clone, Debug)]
pub struct ActiveSecret {
    pub secret: SigningSecret,
    /// `None` for the current secret; the end of the overlap for a rotated-out one.
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Default)]
pub struct WebhookSecrets {
    /// Newest first.
    pub signing: Vec<ActiveSecret>,
    pub basic_password: Option<String>,
    /// Values of secret custom headers, by header name as configured.
    pub headers: Vec<(String, String)>,
}

/// Says what is there, never a value.
impl std::fmt::Debug for WebhookSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSecrets")
            .field("signing", &self.signing.len())
            .field("basic_password", &self.basic_password.is_some())
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// The serialised form inside the seal.
#[derive(Serialize, Deserialize)]
struct Stored {
    #[serde(default)]
    signing: Vec<(String, Option<DateTime<Utc>>)>,
    #[serde(default)]
    basic_password: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    headers: Vec<(String, String)>,
}

impl WebhookSecrets {
    pub fn with_secret(secret: SigningSecret) -> Self {
        Self {
            signing: vec![ActiveSecret {
                secret,
                expires_at: None,
            }],
            basic_password: None,
            headers: Vec::new(),
        }
    }

    pub fn with_password(password: String) -> Self {
        Self {
            signing: vec![],
            basic_password: Some(password),
            headers: Vec::new(),
        }
    }

    /// A fresh random `whsec_` secret (32 bytes).
    pub fn generate_secret() -> SigningSecret {
        let mut bytes = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
        SigningSecret::from_random_bytes(&bytes)
    }

    /// The secret that signs now (and that a reveal shows).
    pub fn current(&self) -> Option<&SigningSecret> {
        self.signing.first().map(|a| &a.secret)
    }

    /// Secrets that still sign at `now`, newest first.
    pub fn active(&self, now: DateTime<Utc>) -> Vec<&SigningSecret> {
        self.signing
            .iter()
            .filter(|a| a.expires_at.is_none_or(|t| t > now))
            .map(|a| &a.secret)
            .collect()
    }

    /// Makes `new` current; the previous current secret keeps signing for the overlap.
    pub fn rotate(&mut self, new: SigningSecret, now: DateTime<Utc>) {
        self.signing
            .retain(|a| a.expires_at.is_none_or(|t| t > now));
        for a in &mut self.signing {
            a.expires_at.get_or_insert(now + ROTATION_OVERLAP);
        }
        self.signing.insert(
            0,
            ActiveSecret {
                secret: new,
                expires_at: None,
            },
        );
        self.signing.truncate(2);
    }

    /// The stored value of secret header `name` (names compare case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Takes the secret header values from `headers`: a typed value replaces the stored one, an
    /// empty one keeps it. Plain headers keep no value here. Refuses a secret header that has no
    /// value either way, naming its row.
    pub fn set_headers(
        &mut self,
        headers: &[crate::domain::headers::CustomHeader],
    ) -> Result<(), crate::domain::ValidationError> {
        let mut next = Vec::new();
        for (i, h) in headers.iter().enumerate().filter(|(_, h)| h.secret) {
            let value = match &h.value {
                Some(v) => v.clone(),
                None => self.header(&h.name).map(str::to_owned).ok_or_else(|| {
                    crate::domain::ValidationError::new(
                        format!("headers[{i}].value"),
                        format!("Enter a value for '{}'", h.name),
                    )
                })?,
            };
            next.push((h.name.clone(), value));
        }
        self.headers = next;
        Ok(())
    }

    pub fn seal(&self, sealer: &Sealer) -> String {
        let stored = Stored {
            signing: self
                .signing
                .iter()
                .map(|a| (a.secret.expose().to_owned(), a.expires_at))
                .collect(),
            basic_password: self.basic_password.clone(),
            headers: self.headers.clone(),
        };
        sealer.seal(
            serde_json::to_string(&stored)
                .expect("plain data")
                .as_bytes(),
        )
    }

    pub fn open(sealed: &str, sealer: &Sealer) -> Result<Self, SealError> {
        let plain = sealer.open(sealed)?;
        let stored: Stored = serde_json::from_slice(&plain).map_err(|_| SealError::Open)?;
        let signing = stored
            .signing
            .into_iter()
            .map(|(s, expires_at)| {
                Ok(ActiveSecret {
                    secret: SigningSecret::parse(&s).map_err(|_| SealError::Open)?,
                    expires_at,
                })
            })
            .collect::<Result<_, SealError>>()?;
        Ok(Self {
            signing,
            basic_password: stored.basic_password,
            headers: stored.headers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_the_old_secret_for_the_overlap_only() {
        let sealer = Sealer::from_key_text(&"11".repeat(32)).unwrap();
        let now = Utc::now();
        let first = WebhookSecrets::generate_secret();
        let mut s = WebhookSecrets::with_secret(first.clone());
        let second = WebhookSecrets::generate_secret();
        s.rotate(second.clone(), now);
        let s = WebhookSecrets::open(&s.seal(&sealer), &sealer).unwrap();
        assert_eq!(s.current(), Some(&second));
        assert_eq!(s.active(now), vec![&second, &first]);
        assert_eq!(s.active(now + ROTATION_OVERLAP), vec![&second]);
    }
}
