//! Code that checks Herald's requests, in Python, Node.js, Go and Rust, for each authentication
//! method: the console shows it on the Event Types page and right after a webhook is saved.
//!
//! The files in `snippets/` are the snippets themselves, standard library only where the language
//! has what it takes (Rust uses the RustCrypto crates). `server/tests/snippets.rs` runs every one
//! of them against real deliveries (Python, Node.js and Go as programs, Rust compiled into the
//! test), so what the console shows is code that verifies what Herald sends.

use super::webhook::AuthKind;
use serde::{Deserialize, Serialize};

super::delivery::str_enum!(
    /// A language a snippet is written in.
    Language {
        Python => "python" / "Python",
        Node => "node" / "Node.js",
        Go => "go" / "Go",
        Rust => "rust" / "Rust",
    }
);

impl Language {
    /// What the snippet needs beyond the language's standard library.
    pub fn needs(self, kind: AuthKind) -> &'static str {
        match (self, kind) {
            (Self::Rust, AuthKind::Jwt) => {
                "Crates: hmac 0.12, sha2 0.10, base64 0.22, serde_json 1, http 1."
            }
            (Self::Rust, AuthKind::Basic) => "Crates: base64 0.22, subtle 2, http 1.",
            (Self::Rust, AuthKind::Signature) => {
                "Crates: hmac 0.12, sha2 0.10, base64 0.22, http 1."
            }
            (Self::Rust, _) => "Crates: hmac 0.12, sha2 0.10, http 1.",
            (Self::Python, _) => "Python 3.9 or later, standard library only.",
            (Self::Node, _) => "Node.js 16 or later, no packages.",
            (Self::Go, _) => "Standard library only.",
        }
    }
}

/// The header the `hmac` snippets read; replaced by the webhook's own header when one is known.
pub const EXAMPLE_HEADER: &str = "x-incentable-signature";

/// The snippet checking `kind` in `lang` (`None` for webhooks that send no credentials). For the
/// `hmac` method, `header` names the webhook's header.
pub fn snippet(kind: AuthKind, lang: Language, header: Option<&str>) -> Option<String> {
    use Language::*;
    let text = match (kind, lang) {
        (AuthKind::None, _) => return None,
        (AuthKind::Signature, Python) => include_str!("snippets/signature.py"),
        (AuthKind::Signature, Node) => include_str!("snippets/signature.js"),
        (AuthKind::Signature, Go) => include_str!("snippets/signature.go"),
        (AuthKind::Signature, Rust) => include_str!("snippets/signature.rs"),
        (AuthKind::Jwt, Python) => include_str!("snippets/jwt.py"),
        (AuthKind::Jwt, Node) => include_str!("snippets/jwt.js"),
        (AuthKind::Jwt, Go) => include_str!("snippets/jwt.go"),
        (AuthKind::Jwt, Rust) => include_str!("snippets/jwt.rs"),
        (AuthKind::Basic, Python) => include_str!("snippets/basic.py"),
        (AuthKind::Basic, Node) => include_str!("snippets/basic.js"),
        (AuthKind::Basic, Go) => include_str!("snippets/basic.go"),
        (AuthKind::Basic, Rust) => include_str!("snippets/basic.rs"),
        (AuthKind::Hmac, Python) => include_str!("snippets/hmac.py"),
        (AuthKind::Hmac, Node) => include_str!("snippets/hmac.js"),
        (AuthKind::Hmac, Go) => include_str!("snippets/hmac.go"),
        (AuthKind::Hmac, Rust) => include_str!("snippets/hmac.rs"),
    };
    Some(match (kind, header) {
        (AuthKind::Hmac, Some(h)) => text.replace(EXAMPLE_HEADER, &h.trim().to_ascii_lowercase()),
        _ => text.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_with_credentials_has_a_snippet_in_every_language() {
        for kind in [
            AuthKind::Signature,
            AuthKind::Jwt,
            AuthKind::Basic,
            AuthKind::Hmac,
        ] {
            for lang in Language::ALL {
                let text = snippet(kind, *lang, None).unwrap();
                assert!(text.contains("erald"), "{kind:?} {lang:?}");
            }
        }
        assert_eq!(snippet(AuthKind::None, Language::Go, None), None);
    }

    #[test]
    fn hmac_snippets_read_the_webhooks_own_header() {
        for lang in Language::ALL {
            let text = snippet(AuthKind::Hmac, *lang, Some("X-Loyalty-Sig")).unwrap();
            assert!(text.contains("x-loyalty-sig"), "{lang:?}");
            assert!(!text.contains(EXAMPLE_HEADER), "{lang:?}");
        }
    }
}
