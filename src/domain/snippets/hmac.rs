use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Checks the hex HMAC-SHA256 of the raw body, keyed with the secret as given.
pub fn verify_herald(secret: &str, headers: &http::HeaderMap, body: &[u8]) -> bool {
    let given = headers
        .get("x-incentable-signature")
        .and_then(|v| v.to_str().ok());
    let given: Option<Vec<u8>> = given.map(str::trim).and_then(|hex| {
        (0..hex.len())
            .step_by(2)
            .map(|i| {
                hex.get(i..i + 2)
                    .and_then(|b| u8::from_str_radix(b, 16).ok())
            })
            .collect()
    });
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    given.is_some_and(|g| mac.verify_slice(&g).is_ok())
}
