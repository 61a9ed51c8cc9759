//! The master key: seals private keys (token signing now, DKIM later) before they reach the store.

use std::{fs, io::Write, path::Path};

use aws_lc_rs::{
    aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey},
    rand::{SecureRandom, SystemRandom},
};
use base64::{Engine, engine::general_purpose::STANDARD};

const KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("master key file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("the master key in {0} is not a base64 32-byte key")]
    Malformed(String),
    #[error(
        "master key file {path} can be read by other users (mode {mode:o}); run `chmod 600 {path}`"
    )]
    Exposed { path: String, mode: u32 },
    #[error("a sealed value could not be opened: wrong master key or corrupt data")]
    Open,
    #[error("the system random number generator failed")]
    Random,
}

pub struct MasterKey {
    key: LessSafeKey,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// Reads the key file, or creates it (mode 0600) with a fresh key when it does not exist.
    /// Every replica must be given the same file.
    /// The key given as base64 text (`secrets.master_key`).
    pub fn from_base64(encoded: &str, source: &str) -> Result<Self, SecretsError> {
        let raw = STANDARD
            .decode(encoded.trim())
            .ok()
            .filter(|raw| raw.len() == KEY_LEN)
            .ok_or_else(|| SecretsError::Malformed(source.to_owned()))?;
        Self::from_bytes(&raw)
    }

    /// The key in `path`, or `None` when there is no such file. A file that group or others may
    /// read is refused: whoever reads it opens every sealed secret.
    pub fn load(path: &Path) -> Result<Option<Self>, SecretsError> {
        #[cfg(unix)]
        if let Ok(metadata) = fs::metadata(path) {
            use std::os::unix::fs::PermissionsExt;
            let mode = metadata.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(SecretsError::Exposed {
                    path: path.display().to_string(),
                    mode,
                });
            }
        }
        match fs::read_to_string(path) {
            Ok(text) => Self::from_base64(&text, &format!("file {}", path.display())).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(SecretsError::Io {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    pub fn load_or_create(path: &Path) -> Result<Self, SecretsError> {
        let io = |source| SecretsError::Io {
            path: path.display().to_string(),
            source,
        };
        let encoded = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut raw = [0u8; KEY_LEN];
                SystemRandom::new()
                    .fill(&mut raw)
                    .map_err(|_| SecretsError::Random)?;
                let encoded = STANDARD.encode(raw);
                let mut options = fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                match options.open(path) {
                    Ok(mut file) => {
                        file.write_all(format!("{encoded}\n").as_bytes())
                            .and_then(|()| file.sync_all())
                            .map_err(io)?;
                        encoded
                    }
                    // Another process created it first: use theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        fs::read_to_string(path).map_err(io)?
                    }
                    Err(e) => return Err(io(e)),
                }
            }
            Err(e) => return Err(io(e)),
        };
        Self::from_base64(&encoded, &format!("file {}", path.display()))
    }

    fn from_bytes(raw: &[u8]) -> Result<Self, SecretsError> {
        let key = UnboundKey::new(&AES_256_GCM, raw)
            .map_err(|_| SecretsError::Malformed("key".into()))?;
        Ok(Self {
            key: LessSafeKey::new(key),
        })
    }

    /// AES-256-GCM with a random nonce; `purpose` is bound as associated data so a value sealed
    /// for one use cannot be opened as another. Output: base64(nonce ‖ ciphertext ‖ tag).
    pub fn seal(&self, purpose: &str, plaintext: &[u8]) -> Result<String, SecretsError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| SecretsError::Random)?;
        let mut buf = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(purpose.as_bytes()),
                &mut buf,
            )
            .map_err(|_| SecretsError::Random)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(STANDARD.encode(out))
    }

    pub fn open(&self, purpose: &str, sealed: &str) -> Result<Vec<u8>, SecretsError> {
        let raw = STANDARD.decode(sealed).map_err(|_| SecretsError::Open)?;
        if raw.len() < NONCE_LEN {
            return Err(SecretsError::Open);
        }
        let (nonce, ciphertext) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SecretsError::Open)?;
        let mut buf = ciphertext.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(purpose.as_bytes()), &mut buf)
            .map_err(|_| SecretsError::Open)?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_only_with_the_same_key_and_purpose() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let key = MasterKey::load_or_create(&path).unwrap();
        let sealed = key.seal("jwt", b"secret").unwrap();
        assert!(!sealed.contains("secret"));
        let again = MasterKey::load_or_create(&path).unwrap();
        assert_eq!(again.open("jwt", &sealed).unwrap(), b"secret");
        assert!(again.open("dkim", &sealed).is_err());
        let other = MasterKey::load_or_create(&dir.path().join("other")).unwrap();
        assert!(other.open("jwt", &sealed).is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_malformed_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        fs::write(&path, "short").unwrap();
        assert!(matches!(
            MasterKey::load_or_create(&path),
            Err(SecretsError::Malformed(_))
        ));
    }
}
