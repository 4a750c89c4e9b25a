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

/// Refuses text holding a control character other than those in `allowed` (line breaks in a
/// description, say): names, search terms and settings never need one, and PostgreSQL cannot
/// store NUL at all. `label` is the field as a person reads it ("Name", "SMTP host").
pub fn no_control_characters(
    field: &str,
    label: &str,
    text: &str,
    allowed: &[char],
) -> Result<(), ValidationError> {
    if text
        .chars()
        .any(|c| c.is_control() && !allowed.contains(&c))
    {
        let but = if allowed.contains(&'\t') {
            " other than line breaks and tabs"
        } else if allowed.is_empty() {
            ""
        } else {
            " other than line breaks"
        };
        return Err(ValidationError::new(
            field,
            format!("{label} must not contain control characters{but}"),
        ));
    }
    Ok(())
}
