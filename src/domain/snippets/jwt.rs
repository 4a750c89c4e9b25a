use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Checks the HS256 JWT in `Authorization: Bearer`; `body` is the raw request body.
pub fn verify_herald(secret: &str, headers: &http::HeaderMap, body: &[u8]) -> bool {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let parts: Vec<&str> = auth.trim_start_matches("Bearer ").split('.').collect();
    let [head, claims, sig] = parts[..] else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{head}.{claims}").as_bytes());
    let signed = URL_SAFE_NO_PAD
        .decode(sig)
        .is_ok_and(|s| mac.verify_slice(&s).is_ok());
    let json = |part: &str| -> serde_json::Value {
        URL_SAFE_NO_PAD
            .decode(part)
            .ok()
            .and_then(|raw| serde_json::from_slice(&raw).ok())
            .unwrap_or_default()
    };
    let (head, claims) = (json(head), json(claims));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let body_hash: String = Sha256::digest(body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    signed
        && head["alg"] == "HS256"
        && claims["iss"] == "herald"
        && claims["exp"].as_u64().is_some_and(|exp| exp > now)
        && claims["body_sha256"] == body_hash.as_str()
}
