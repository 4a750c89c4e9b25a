//! Secrets at rest: signing secrets and Basic passwords are sealed with AES-256-GCM before they
//! reach the database, under a key that never does. A sealed value is `v1.<base64(nonce ‖
//! ciphertext)>`; a fresh random nonce per seal means equal secrets never look equal on disk.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rand::RngCore;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("HERALD_SECRET_KEY must be 32 bytes, as 64 hex digits or base64")]
    BadKey,
    #[error("a sealed secret could not be opened (wrong HERALD_SECRET_KEY, or corrupt data)")]
    Open,
    #[error("key file {path}: {source}")]
    KeyFile {
        path: String,
        source: std::io::Error,
    },
}

/// The process's sealing key. Cloning shares the key; it is never printed.
#[derive(Clone)]
pub struct Sealer {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    /// Parses a key given as 64 hex digits or base64 of 32 bytes.
    pub fn from_key_text(text: &str) -> Result<Self, SealError> {
        let text = text.trim();
        let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            (0..32)
                .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16))
                .collect::<Result<Vec<u8>, _>>()
                .map_err(|_| SealError::BadKey)?
        } else {
            STANDARD.decode(text).map_err(|_| SealError::BadKey)?
        };
        let key: [u8; 32] = bytes.try_into().map_err(|_| SealError::BadKey)?;
        Ok(Self {
            cipher: Aes256Gcm::new(&key.into()),
        })
    }

    /// A key derived from a passphrase with argon2id over `salt` (at least 8 bytes): sealing that
    /// only someone who knows the passphrase can open (exported secrets).
    pub fn from_passphrase(passphrase: &str, salt: &[u8]) -> Result<Self, SealError> {
        let mut key = [0u8; 32];
        argon2::Argon2::default()
            .hash_password_into(passphrase.as_bytes(), salt, &mut key)
            .map_err(|_| SealError::BadKey)?;
        Ok(Self {
            cipher: Aes256Gcm::new(&key.into()),
        })
    }

    /// Reads the key file, creating it (mode 0600) with a fresh random key when it does not
    /// exist. Returns the sealer and whether the file was created.
    pub fn from_key_file(path: &Path) -> Result<(Self, bool), SealError> {
        let err = |source| SealError::KeyFile {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => Ok((Self::from_key_text(&text)?, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut key);
                let text = STANDARD.encode(key);
                write_private(path, &text).map_err(err)?;
                Ok((Self::from_key_text(&text)?, true))
            }
            Err(e) => Err(err(e)),
        }
    }

    pub fn seal(&self, plain: &[u8]) -> String {
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), plain)
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ciphertext);
        format!("v1.{}", STANDARD.encode(out))
    }

    pub fn open(&self, sealed: &str) -> Result<Vec<u8>, SealError> {
        let raw = sealed
            .strip_prefix("v1.")
            .and_then(|b| STANDARD.decode(b).ok())
            .filter(|r| r.len() > 12)
            .ok_or(SealError::Open)?;
        let (nonce, ciphertext) = raw.split_at(12);
        self.cipher
            .decrypt(Nonce::from_slice(nonce), ciphertext)
            .map_err(|_| SealError::Open)
    }
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trips_and_hides_the_plain_text() {
        let s = Sealer::from_key_text(&"ab".repeat(32)).unwrap();
        let sealed = s.seal(b"whsec_topsecret");
        assert!(!sealed.contains("topsecret"));
        assert_ne!(sealed, s.seal(b"whsec_topsecret"), "fresh nonce each time");
        assert_eq!(s.open(&sealed).unwrap(), b"whsec_topsecret");
        let other = Sealer::from_key_text(&"cd".repeat(32)).unwrap();
        assert!(matches!(other.open(&sealed), Err(SealError::Open)));
        assert!(Sealer::from_key_text("short").is_err());
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("herald.key");
        let (a, created) = Sealer::from_key_file(&path).unwrap();
        assert!(created);
        let (b, created) = Sealer::from_key_file(&path).unwrap();
        assert!(!created);
        assert_eq!(b.open(&a.seal(b"x")).unwrap(), b"x");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
