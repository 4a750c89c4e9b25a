//! API keys for the events API: `hk_` + 32 random bytes in base64url. Only a SHA-256 of the key
//! is stored (keys are high-entropy, so a fast hash is the right tool). A presented key is looked
//! up by its short display prefix and its hash compared with the stored one in constant time.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};

pub const PREFIX: &str = "hk_";

/// A freshly generated key: `plain` is shown once, `hash` and `display_prefix` are stored.
pub struct GeneratedKey {
    pub plain: String,
    pub hash: String,
    pub display_prefix: String,
}

pub fn generate() -> GeneratedKey {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let plain = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    GeneratedKey {
        hash: hash(&plain),
        display_prefix: display_prefix(&plain).to_owned(),
        plain,
    }
}

/// A new key for `program` and the record that stores it (hashed).
pub fn new_record(
    program: crate::domain::ids::ProgramId,
    name: &str,
    scope: crate::domain::account::KeyScope,
) -> (GeneratedKey, crate::store::ApiKeyRecord) {
    let key = generate();
    let record = crate::store::ApiKeyRecord {
        id: crate::domain::ids::ApiKeyId::generate(),
        program_id: program,
        name: name.to_owned(),
        prefix: key.display_prefix.clone(),
        key_hash: key.hash.clone(),
        created_at: crate::store::now(),
        scope,
    };
    (key, record)
}

/// Creates a key for the store's default program and stores its hash; the returned key's `plain`
/// text is the only copy (shown once by whoever called this).
pub async fn issue(
    store: &dyn crate::store::Store,
    name: &str,
) -> Result<GeneratedKey, crate::store::StoreError> {
    let (key, record) = new_record(
        store.default_program().await?,
        name,
        crate::domain::account::KeyScope::Admin,
    );
    store.insert_api_key(&record).await?;
    Ok(key)
}

/// The part of a key lists show and lookups start from.
pub fn display_prefix(plain: &str) -> &str {
    plain.get(..PREFIX.len() + 6).unwrap_or(plain)
}

/// The stored form of a key.
pub fn hash(plain: &str) -> String {
    crate::domain::lower_hex(&Sha256::digest(plain.as_bytes()))
}

/// Whether a presented key has the shape of one of ours (cheap rejection before any lookup).
pub fn looks_valid(plain: &str) -> bool {
    plain.len() == PREFIX.len() + 43 && plain.starts_with(PREFIX)
}

/// Constant-time equality of two hashes.
pub fn hashes_equal(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_hash_stably_and_look_valid() {
        let k = generate();
        assert!(looks_valid(&k.plain));
        assert!(hashes_equal(&hash(&k.plain), &k.hash));
        assert!(!hashes_equal(&hash("hk_other"), &k.hash));
        assert!(k.plain.starts_with(&k.display_prefix));
        assert!(!looks_valid("hk_short"));
    }
}
