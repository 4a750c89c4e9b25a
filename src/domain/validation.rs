//! The one error every validating constructor returns: which field is wrong, and why, in words a
//! program admin understands. The API maps it to `422 {"error": {"code": "validation", ...}}` and the
//! console shows the message beside the named field.

use serde::{Deserialize, Serialize};

/// A rejected input: `field` names the input (as the API and the wizard call it), `message` says
/// what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    pub field: String,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}
