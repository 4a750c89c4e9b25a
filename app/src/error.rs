//! The error every server function returns: typed, so a screen can put a validation message
//! beside the field it names and tell "not found" from "try again".

use serde::{Deserialize, Serialize};
use server_fn::codec::JsonEncoding;
use server_fn::error::{FromServerFnError, ServerFnErrorErr};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    /// An input is wrong; `field` names it as the forms do.
    #[error("{message}")]
    Validation { field: String, message: String },
    #[error("{0} not found")]
    NotFound(String),
    #[error("{message}")]
    Conflict {
        field: Option<String>,
        message: String,
    },
    #[error("please sign in")]
    Unauthorized,
    #[error("your role in this program does not allow this")]
    Forbidden,
    /// Herald cannot do this right now (shutting down, database unavailable); try again.
    #[error("{0}")]
    Unavailable(String),
    /// Something failed on the server; details are in its log, not here.
    #[error("something went wrong on the server; please try again")]
    Internal,
    /// The request itself failed (network, encoding).
    #[error("{0}")]
    Transport(String),
}

impl AppError {
    /// The HTTP status a server function answers with when it fails with this error.
    pub fn status(&self) -> u16 {
        match self {
            Self::Validation { .. } => 422,
            Self::NotFound(_) => 404,
            Self::Conflict { .. } => 409,
            Self::Unauthorized => 401,
            Self::Forbidden => 403,
            Self::Unavailable(_) => 503,
            Self::Internal => 500,
            Self::Transport(_) => 400,
        }
    }

    /// The message for `field`, when this error is about it.
    pub fn for_field(&self, field: &str) -> Option<String> {
        match self {
            Self::Validation { field: f, message }
                if f == field
                    || f.starts_with(&format!("{field}."))
                    || f.starts_with(&format!("{field}[")) =>
            {
                Some(message.clone())
            }
            Self::Conflict {
                field: Some(f),
                message,
            } if f == field => Some(message.clone()),
            _ => None,
        }
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        Self::Transport(value.to_string())
    }
}

impl From<herald::domain::ValidationError> for AppError {
    fn from(e: herald::domain::ValidationError) -> Self {
        Self::Validation {
            field: e.field,
            message: e.message,
        }
    }
}

#[cfg(feature = "ssr")]
impl From<herald::delivery::EngineError> for AppError {
    fn from(e: herald::delivery::EngineError) -> Self {
        use herald::delivery::EngineError as E;
        match e {
            E::Validation(v) => v.into(),
            E::NotFound(what) => Self::NotFound(what.to_owned()),
            E::Conflict { field } => Self::Conflict {
                field: Some(field.to_owned()),
                message: format!("A webhook with this {field} already exists"),
            },
            E::Refused(message) => Self::Conflict {
                field: None,
                message,
            },
            e @ E::Stale => Self::Conflict {
                field: None,
                message: e.to_string(),
            },
            E::Unavailable(message) => Self::Unavailable(message),
            E::Forbidden => Self::Forbidden,
            e @ E::Unstorable => Self::Conflict {
                field: None,
                message: e.to_string(),
            },
            other => {
                tracing::error!(error = %other, "server function failed");
                Self::Internal
            }
        }
    }
}

#[cfg(feature = "ssr")]
impl From<herald::store::StoreError> for AppError {
    fn from(e: herald::store::StoreError) -> Self {
        herald::delivery::EngineError::from(e).into()
    }
}

#[cfg(feature = "ssr")]
impl From<herald::auth::AccessError> for AppError {
    fn from(e: herald::auth::AccessError) -> Self {
        use herald::auth::AccessError as E;
        match e {
            E::Validation(v) => v.into(),
            E::InvalidLogin | E::Throttled(_) => Self::Validation {
                field: "password".into(),
                message: e.to_string(),
            },
            E::Forbidden => Self::Forbidden,
            E::NotFound(what) => Self::NotFound(what.to_owned()),
            E::Refused(message) => Self::Conflict {
                field: None,
                message,
            },
            E::Conflict(field) => Self::Conflict {
                field: Some(field.to_owned()),
                message: e.to_string(),
            },
            E::Store(s) => s.into(),
            E::Internal => Self::Internal,
        }
    }
}
