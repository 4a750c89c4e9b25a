//! Authentication on the wire: Standard Webhooks signatures, HS256 JWTs and Basic credentials,
//! exactly as DESIGN.md's wire contract describes. Pure functions of their inputs, so the signing
//! of a retry, a test and a verification ping is the same code.

use crate::domain::lower_hex;
use crate::domain::webhook::SigningSecret;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// Lower-case hex of HMAC-SHA256 over the raw body, keyed with the secret string as given (its
/// UTF-8 bytes, `whsec_` included): the `hmac` method's header value.
pub fn hex_hmac(secret: &SigningSecret, body: &str) -> String {
    lower_hex(&hmac(secret.expose().as_bytes(), &[body.as_bytes()]))
}

/// Checks an `hmac` webhook's header value (`hex_hmac` of `body`), in constant time.
pub fn verify_hex_hmac(secret: &SigningSecret, given: &str, body: &[u8]) -> Result<(), String> {
    let given = given.trim();
    if given.len() != 64 {
        return Err("the header is missing or is not 64 hex digits".into());
    }
    let bytes = (0..32)
        .map(|i| u8::from_str_radix(&given[2 * i..2 * i + 2], 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|_| "the header is not hex".to_owned())?;
    let mut mac =
        HmacSha256::new_from_slice(secret.expose().as_bytes()).expect("HMAC takes any key");
    mac.update(body);
    mac.verify_slice(&bytes)
        .map_err(|_| "the HMAC does not match this secret and body".into())
}

/// `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>` for each active secret, space
/// separated (newest first).
pub fn standard_signature(
    secrets: &[&SigningSecret],
    msg_id: &str,
    timestamp: i64,
    body: &str,
) -> String {
    let ts = timestamp.to_string();
    secrets
        .iter()
        .map(|s| {
            let sig = hmac(
                &s.key_bytes(),
                &[
                    msg_id.as_bytes(),
                    b".",
                    ts.as_bytes(),
                    b".",
                    body.as_bytes(),
                ],
            );
            format!("v1,{}", STANDARD.encode(sig))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The claims of a delivery JWT.
#[derive(Debug, Clone, serde::Serialize)]
pub struct JwtClaims<'a> {
    pub iss: &'static str,
    pub iat: i64,
    pub exp: i64,
    /// The attempt id: unique per request, so receivers can refuse replays.
    pub jti: &'a str,
    /// The event id.
    pub sub: &'a str,
    /// Hex SHA-256 of the exact body, binding the token to it.
    pub body_sha256: String,
}

/// An HS256 JWT keyed with the secret string as given (its UTF-8 bytes, `whsec_` included), with
/// `kid` naming which secret signed it (its masked form) during a rotation.
pub fn jwt(
    secret: &SigningSecret,
    attempt_id: &str,
    event_id: &str,
    iat: i64,
    body: &str,
) -> String {
    let header = serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": key_id(secret)});
    let claims = JwtClaims {
        iss: "herald",
        iat,
        exp: iat + 300,
        jti: attempt_id,
        sub: event_id,
        body_sha256: lower_hex(&Sha256::digest(body.as_bytes())),
    };
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(serde_json::to_string(&claims).expect("plain data"))
    );
    let sig = hmac(secret.expose().as_bytes(), &[signing_input.as_bytes()]);
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

/// A stable, non-secret name for a secret: the first 8 hex digits of its SHA-256.
pub fn key_id(secret: &SigningSecret) -> String {
    lower_hex(&Sha256::digest(secret.expose().as_bytes())[..4])
}

/// `Basic base64(user:password)`.
pub fn basic(username: &str, password: &str) -> String {
    format!(
        "Basic {}",
        STANDARD.encode(format!("{username}:{password}"))
    )
}

/// How far a request's `webhook-timestamp` (or a JWT's `iat`) may be from now, either way.
pub const TOLERANCE_SECONDS: i64 = 300;

/// Checks a Standard Webhooks signature header (`v1,<base64> …`) against `secrets`: `Ok` names
/// which secret matched; the error says what is wrong, for a person reading it.
pub fn verify_standard(
    secrets: &[SigningSecret],
    msg_id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
    now: i64,
) -> Result<usize, String> {
    let ts: i64 = timestamp
        .parse()
        .map_err(|_| format!("webhook-timestamp '{timestamp}' is not a Unix time"))?;
    if (now - ts).abs() > TOLERANCE_SECONDS {
        return Err(format!(
            "webhook-timestamp is {} s away from this clock (more than {TOLERANCE_SECONDS} s)",
            now - ts
        ));
    }
    let given: Vec<Vec<u8>> = signatures
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .filter_map(|b| STANDARD.decode(b).ok())
        .collect();
    if given.is_empty() {
        return Err("webhook-signature has no v1 signature".into());
    }
    for (i, secret) in secrets.iter().enumerate() {
        let expected = hmac(
            &secret.key_bytes(),
            &[msg_id.as_bytes(), b".", timestamp.as_bytes(), b".", body],
        );
        if given
            .iter()
            .any(|g| bool::from(subtle::ConstantTimeEq::ct_eq(g.as_slice(), &expected[..])))
        {
            return Ok(i);
        }
    }
    Err("the signature does not match the secret (or the body was changed)".into())
}

/// Checks a Herald JWT (`Authorization: Bearer …`): HS256 with the secret's text as key, issuer
/// `herald`, not expired, and `body_sha256` matching the body. Returns its `sub` (the event id).
pub fn verify_jwt(
    secret: &SigningSecret,
    token: &str,
    body: &[u8],
    now: i64,
) -> Result<String, String> {
    let mut parts = token.split('.');
    let (Some(header), Some(claims), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("the bearer token is not a JWT".into());
    };
    let expected = hmac(
        secret.expose().as_bytes(),
        &[header.as_bytes(), b".", claims.as_bytes()],
    );
    let sig = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| "the JWT signature is not base64url".to_owned())?;
    if !bool::from(subtle::ConstantTimeEq::ct_eq(sig.as_slice(), &expected[..])) {
        return Err("the JWT signature does not match the secret".into());
    }
    let claims: serde_json::Value = URL_SAFE_NO_PAD
        .decode(claims)
        .ok()
        .and_then(|c| serde_json::from_slice(&c).ok())
        .ok_or_else(|| "the JWT claims are not JSON".to_owned())?;
    if claims["iss"] != "herald" {
        return Err("the JWT issuer is not herald".into());
    }
    if claims["exp"].as_i64().is_none_or(|exp| exp < now) {
        return Err("the JWT has expired".into());
    }
    if claims["body_sha256"].as_str() != Some(lower_hex(&Sha256::digest(body)).as_str()) {
        return Err("the body does not match the JWT's body_sha256".into());
    }
    Ok(claims["sub"].as_str().unwrap_or_default().to_owned())
}

/// Checks an `Authorization: Basic …` header against a username and password.
pub fn verify_basic(header: &str, username: &str, password: &str) -> Result<(), String> {
    let expected = basic(username, password);
    if bool::from(subtle::ConstantTimeEq::ct_eq(
        header.as_bytes(),
        expected.as_bytes(),
    )) {
        Ok(())
    } else {
        Err("the Basic credentials do not match".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(byte: u8) -> SigningSecret {
        SigningSecret::from_random_bytes(&[byte; 32])
    }

    #[test]
    fn signature_verifies_with_the_official_library() {
        let s = secret(1);
        let body = r#"{"event_id":"x","data":{"a":1}}"#;
        let ts = chrono::Utc::now().timestamp();
        let sig = standard_signature(&[&s], "msg_1", ts, body);
        let wh = standardwebhooks::Webhook::new(s.expose()).unwrap();
        let mut headers = http::HeaderMap::new();
        headers.insert("webhook-id", "msg_1".parse().unwrap());
        headers.insert("webhook-timestamp", ts.to_string().parse().unwrap());
        headers.insert("webhook-signature", sig.parse().unwrap());
        wh.verify(body.as_bytes(), &headers).unwrap();
        // Tampering with the body breaks it.
        assert!(wh.verify(b"{}", &headers).is_err());
    }

    #[test]
    fn rotation_sends_one_signature_per_secret_and_each_verifies() {
        let (new, old) = (secret(2), secret(3));
        let ts = chrono::Utc::now().timestamp();
        let sig = standard_signature(&[&new, &old], "m", ts, "{}");
        assert_eq!(sig.split(' ').count(), 2);
        for s in [&new, &old] {
            let wh = standardwebhooks::Webhook::new(s.expose()).unwrap();
            let mut h = http::HeaderMap::new();
            h.insert("webhook-id", "m".parse().unwrap());
            h.insert("webhook-timestamp", ts.to_string().parse().unwrap());
            h.insert("webhook-signature", sig.parse().unwrap());
            wh.verify(b"{}", &h).unwrap();
        }
    }

    #[test]
    fn jwt_verifies_with_a_jwt_library_keyed_by_the_secret_string() {
        let s = secret(4);
        let body = r#"{"hello":"world"}"#;
        let now = chrono::Utc::now().timestamp();
        let token = jwt(&s, "att_1", "evt_1", now, body);
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        v.set_issuer(&["herald"]);
        v.set_required_spec_claims(&["exp", "iss", "sub"]);
        let data = jsonwebtoken::decode::<serde_json::Value>(
            &token,
            &jsonwebtoken::DecodingKey::from_secret(s.expose().as_bytes()),
            &v,
        )
        .unwrap();
        assert_eq!(data.claims["sub"], "evt_1");
        assert_eq!(data.claims["jti"], "att_1");
        assert_eq!(data.claims["exp"].as_i64().unwrap(), now + 300);
        assert_eq!(
            data.claims["body_sha256"],
            lower_hex(&Sha256::digest(body.as_bytes()))
        );
        assert_eq!(data.header.kid.as_deref(), Some(key_id(&s).as_str()));
    }

    #[test]
    fn basic_header_encodes_credentials() {
        assert_eq!(
            basic("Aladdin", "open sesame"),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
    }

    #[test]
    fn what_herald_signs_its_own_verifiers_accept_and_changes_are_caught() {
        let (s, other) = (secret(5), secret(6));
        let now = chrono::Utc::now().timestamp();
        let body = r#"{"event_id":"e1"}"#;
        let sig = standard_signature(&[&s], "e1", now, body);
        let ts = now.to_string();
        let both = [other.clone(), s.clone()];
        assert_eq!(
            verify_standard(&both, "e1", &ts, &sig, body.as_bytes(), now),
            Ok(1)
        );
        assert!(verify_standard(
            std::slice::from_ref(&other),
            "e1",
            &ts,
            &sig,
            body.as_bytes(),
            now
        )
        .is_err());
        assert!(verify_standard(std::slice::from_ref(&s), "e1", &ts, &sig, b"{}", now).is_err());
        let late = verify_standard(
            std::slice::from_ref(&s),
            "e1",
            &ts,
            &sig,
            body.as_bytes(),
            now + 600,
        );
        assert!(late.unwrap_err().contains("away from this clock"));

        let token = jwt(&s, "att_1", "e1", now, body);
        assert_eq!(
            verify_jwt(&s, &token, body.as_bytes(), now),
            Ok("e1".to_owned())
        );
        assert!(verify_jwt(&other, &token, body.as_bytes(), now).is_err());
        assert!(verify_jwt(&s, &token, b"{}", now)
            .unwrap_err()
            .contains("body_sha256"));
        assert!(verify_jwt(&s, &token, body.as_bytes(), now + 301)
            .unwrap_err()
            .contains("expired"));

        assert!(verify_basic(&basic("ann", "pw"), "ann", "pw").is_ok());
        assert!(verify_basic(&basic("ann", "pw"), "ann", "nope").is_err());
    }
}
