use base64::{engine::general_purpose::STANDARD, Engine as _};
use subtle::ConstantTimeEq;

/// Checks Basic credentials.
pub fn verify_herald(username: &str, password: &str, headers: &http::HeaderMap) -> bool {
    let expected = format!(
        "Basic {}",
        STANDARD.encode(format!("{username}:{password}"))
    );
    let given = headers
        .get("authorization")
        .map_or(&[][..], |v| v.as_bytes());
    given.ct_eq(expected.as_bytes()).into()
}
