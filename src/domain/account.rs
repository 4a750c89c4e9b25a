//! Console accounts: roles, e-mail addresses and passwords as users type them, validated here so
//! the browser and the server apply the same rules. The views are what the Settings and Activity
//! screens show; none of them carries a password, a hash or a key.

use super::delivery::str_enum;
use super::ValidationError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

str_enum!(
    /// What a console user may do. API keys act as admins of their program.
    Role {
        Admin => "admin" / "Admin",
        Viewer => "viewer" / "Viewer",
    }
);

impl Role {
    /// Whether this role may change things (create, edit, delete, test, replay, see secrets).
    pub fn can_manage(self) -> bool {
        matches!(self, Role::Admin)
    }
}

/// Shortest password accepted for a console account.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Longest password accepted (hashing cost grows with input; nobody types more).
pub const MAX_PASSWORD_CHARS: usize = 200;

/// A login e-mail address, trimmed and lower-cased (addresses compare case-insensitively).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let email = raw.trim().to_lowercase();
        let err = |m: &str| Err(ValidationError::new("email", m));
        if email.is_empty() {
            return err("Enter an e-mail address");
        }
        if email.len() > 254 {
            return err("E-mail address must be at most 254 characters");
        }
        let Some((local, domain)) = email.split_once('@') else {
            return err("E-mail address needs an @, like ana@example.com");
        };
        if local.is_empty()
            || domain.is_empty()
            || domain.contains('@')
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
            || email.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return err("E-mail address is not valid, expected something like ana@example.com");
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Checks a new password against the rules (length only: long passphrases beat composition
/// rules). Returns it unchanged so callers can hash it.
pub fn check_new_password(raw: &str) -> Result<&str, ValidationError> {
    let chars = raw.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(ValidationError::new(
            "password",
            format!("Password must be at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(ValidationError::new(
            "password",
            format!("Password must be at most {MAX_PASSWORD_CHARS} characters"),
        ));
    }
    Ok(raw)
}

/// An API key's name as typed: trimmed, 1 to 100 characters, no control characters.
pub fn api_key_name(raw: &str) -> Result<&str, ValidationError> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ValidationError::new(
            "name",
            "Give the key a name of 1 to 100 characters",
        ));
    }
    super::validation::no_control_characters("name", "API key name", name, &[])?;
    Ok(name)
}

/// A program's name as typed: trimmed, 1 to 80 characters, no control characters.
pub fn program_name(raw: &str) -> Result<&str, ValidationError> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 80 {
        return Err(ValidationError::new(
            "name",
            "Give the program a name of 1 to 80 characters",
        ));
    }
    super::validation::no_control_characters("name", "Program name", name, &[])?;
    Ok(name)
}

/// A program the signed-in user can open, with their role in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgramChoice {
    pub id: String,
    pub name: String,
    pub role: Role,
}

/// The signed-in user, as the console shows it: the programs they can open (archived ones left
/// out), the one they land on, and whether they manage the install.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurrentUser {
    pub email: String,
    pub install_admin: bool,
    pub home: Option<String>,
    pub programs: Vec<ProgramChoice>,
}

impl CurrentUser {
    /// The user's role in `program`, if they can open it.
    pub fn role_in(&self, program: &str) -> Option<Role> {
        self.programs
            .iter()
            .find(|p| p.id == program)
            .map(|p| p.role)
    }
}

/// A program as the install admin's Programs screen lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgramView {
    pub id: String,
    pub name: String,
    pub is_default: bool,
    pub archived_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// A member of a program, with their role in it.
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub role: Role,
    /// Manages every program (their role here cannot be lowered by a program admin).
    pub install_admin: bool,
    pub created_at: DateTime<Utc>,
}

/// What an API key may do: `Ingest` posts events and nothing else (what the loyalty platform
/// needs); `Admin` uses the whole API of its program.
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum KeyScope {
    #[default]
    Admin,
    Ingest,
}

impl KeyScope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Ingest => "ingest",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        match raw {
            "admin" => Ok(Self::Admin),
            "ingest" => Ok(Self::Ingest),
            _ => Err(ValidationError::new(
                "scope",
                "Scope must be ingest (post events only) or admin (the whole API)",
            )),
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Admin => "Admin",
            Self::Ingest => "Ingest only",
        }
    }
}

#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyView {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub scope: KeyScope,
    /// The key's first characters, to tell keys apart.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A key just created: `key` is its only plain copy, shown once.
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewApiKey {
    pub key: String,
    pub view: ApiKeyView,
}

/// One line of the admin activity log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivityView {
    pub id: String,
    /// Who: a user's e-mail or `API key <name>`.
    pub actor: String,
    /// What, as a verb phrase: `created webhook`, `rotated secret`...
    pub action: String,
    pub target: String,
    pub detail: String,
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            Email::parse("  Ana@Example.COM ").unwrap().as_str(),
            "ana@example.com"
        );
        for bad in [
            "",
            "ana",
            "ana@",
            "@example.com",
            "ana@example",
            "a b@x.io",
            "a@@x.io",
        ] {
            assert_eq!(Email::parse(bad).unwrap_err().field, "email", "{bad:?}");
        }
    }

    #[test]
    fn passwords_need_length() {
        assert!(check_new_password("short").is_err());
        assert!(check_new_password("long enough passphrase").is_ok());
        assert!(check_new_password(&"x".repeat(201)).is_err());
        assert_eq!(Role::parse("viewer"), Some(Role::Viewer));
        assert!(Role::Admin.can_manage() && !Role::Viewer.can_manage());
    }

    #[test]
    fn program_names_are_trimmed_and_bounded() {
        assert_eq!(program_name("  Gold Club ").unwrap(), "Gold Club");
        for bad in ["", "   ", "a\u{7}b"] {
            assert_eq!(program_name(bad).unwrap_err().field, "name", "{bad:?}");
        }
        assert!(program_name(&"x".repeat(81)).is_err());
        assert!(program_name(&"é".repeat(80)).is_ok());
    }
}
