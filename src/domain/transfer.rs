//! Moving a program's webhook configurations between programs (and installs): a versioned JSON
//! document, and the plan an import is previewed with. Secrets travel only when asked for, sealed
//! with a passphrase (see `delivery::transfer`).

use super::settings::WebhookDraft;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What `format` says in every export.
pub const EXPORT_FORMAT: &str = "herald.program-export";
/// The document version this build writes and reads.
pub const EXPORT_VERSION: u32 = 1;

/// A program's webhook configurations. `webhooks` carry no secrets; `sealed_secrets`, when present,
/// holds them sealed with a passphrase.
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgramExport {
    pub format: String,
    pub version: u32,
    /// The name of the program exported (informational).
    pub program: String,
    pub exported_at: DateTime<Utc>,
    /// Each as `POST /webhooks` takes it. Documented as plain objects: an import preview reads
    /// a document with webhooks that would be refused (a retry count out of range, say) and
    /// reports each as `invalid` rather than refusing the whole document.
    #[cfg_attr(feature = "server", schema(value_type = Vec<Object>))]
    pub webhooks: Vec<WebhookDraft>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_secrets: Option<SealedSecrets>,
}

/// Secrets sealed with a key derived from a passphrase (argon2id over `salt`, then AES-256-GCM).
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SealedSecrets {
    pub kdf: String,
    pub salt: String,
    pub sealed: String,
}

/// What to do with an imported webhook whose name the target program already uses.
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OnConflict {
    /// Leave the existing webhook as it is.
    #[default]
    Skip,
    /// Overwrite its settings with the imported ones (its secret stays unless one is imported).
    Update,
}

impl OnConflict {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "" | "skip" => Some(Self::Skip),
            "update" => Some(Self::Update),
            _ => None,
        }
    }
}

/// What an import does with one webhook of the document.
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImportAction {
    Create,
    Update,
    /// Same settings already there.
    Unchanged,
    /// Name taken and the import was told to skip.
    Skip,
    /// Cannot be imported as it is (`detail` says why); nothing is applied while one is invalid.
    Invalid,
}

impl ImportAction {
    pub fn label(self) -> &'static str {
        match self {
            Self::Create => "Create",
            Self::Update => "Update",
            Self::Unchanged => "Unchanged",
            Self::Skip => "Skip (name taken)",
            Self::Invalid => "Invalid",
        }
    }
}

#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportItem {
    pub name: String,
    pub action: ImportAction,
    /// Changed fields (updates), the reason (skips, invalid ones), or a note (new secrets).
    pub detail: String,
}

/// The preview of an import, and after applying it, what was done. `secrets` lists signing
/// secrets Herald generated for created webhooks (no secret was imported for them): shown once.
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ImportPlan {
    pub items: Vec<ImportItem>,
    pub applied: bool,
    #[serde(default)]
    #[cfg_attr(feature = "server", schema(value_type = Vec<Vec<String>>))]
    pub secrets: Vec<(String, String)>,
}

impl ImportPlan {
    pub fn count(&self, action: ImportAction) -> usize {
        self.items.iter().filter(|i| i.action == action).count()
    }
}
