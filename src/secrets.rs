//! The master key: seals private keys, queued mail and webhook secrets before they reach the
//! store, each value bound to its use and to its row.
//!
//! A sealed value reads `v2:<key id>:<base64(nonce ‖ ciphertext ‖ tag)>` (AES-256-GCM). The key
//! id names the master key that sealed it, so that during a rotation each value opens with its
//! own key; the associated data is the value's `Binding` (its use, table and row), so a value
//! copied into another row does not open there. Values written before the key id existed are
//! bare base64 with only the use as associated data; they still open, and
//! `trustmail secrets rotate-master-key` rewrites them in the new form.

use std::{fs, io::Write, path::Path};

use aws_lc_rs::{
    aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey},
    digest, hkdf, hmac,
    rand::{SecureRandom, SystemRandom},
};
use base64::{Engine, engine::general_purpose::STANDARD};

use crate::{
    domain::{DomainId, SubscriptionId},
    mail::MessageId,
};

const KEY_LEN: usize = 32;
/// Marks the sealed form that carries a key id and binds the row.
const V2_PREFIX: &str = "v2:";
/// Hex digits of a key id: the first 8 bytes of its digest.
const KEY_ID_LEN: usize = 16;
/// Separates a key id's digest from any other SHA-256 of the key.
const KEY_ID_DOMAIN: &[u8] = b"trustmail master key id\0";
/// Leads the associated data of a v2 value.
const AAD_DOMAIN: &[u8] = b"trustmail sealed value v2";
/// Names the HMAC key derived from a master key (HKDF-SHA256), apart from its sealing key.
const TAG_KEY_INFO: &[u8] = b"trustmail tag key v1";

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
    #[error(
        "a sealed value was sealed under master key {key_id}, which is not loaded (loaded: \
         {loaded}); set secrets.master_key_file to that key's file, or \
         secrets.previous_master_key_file while a rotation is under way"
    )]
    UnknownKey { key_id: String, loaded: String },
    #[error("the system random number generator failed")]
    Random,
}

/// What a sealed value is for and which row holds it: the associated data it is sealed with.
/// One constructor per sealed column; the use alone is what values of the old form were bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    purpose: &'static str,
    table: &'static str,
    row: Vec<String>,
}

impl Binding {
    /// `dkim_keys.sealed_private_key`: the domain, region and public key of its slot.
    pub fn dkim_private_key(domain_id: DomainId, region: &str, public_key: &str) -> Self {
        Self::new(
            "dkim-private-key",
            "dkim_keys",
            [
                domain_id.to_string(),
                region.to_owned(),
                public_key.to_owned(),
            ],
        )
    }

    /// `signing_keys.sealed_private_key`: the key's `kid`.
    pub fn token_signing_key(kid: &str) -> Self {
        Self::new("token-signing-key", "signing_keys", [kid.to_owned()])
    }

    /// `outbox.message` (after its `sealed:` mark): the message id.
    pub fn outbox_message(id: MessageId) -> Self {
        Self::new("outbox-message", "outbox", [id.to_string()])
    }

    /// `subscriptions.sealed_secret`: the subscription id.
    pub fn subscription_secret(id: SubscriptionId) -> Self {
        Self::new("subscription-secret", "subscriptions", [id.to_string()])
    }

    /// `subscriptions.sealed_headers`: the subscription id.
    pub fn subscription_headers(id: SubscriptionId) -> Self {
        Self::new("subscription-headers", "subscriptions", [id.to_string()])
    }

    fn new<const N: usize>(purpose: &'static str, table: &'static str, row: [String; N]) -> Self {
        Self {
            purpose,
            table,
            row: row.into(),
        }
    }

    /// Each part length-prefixed, so that no two bindings share their bytes.
    fn associated_data(&self) -> Vec<u8> {
        let mut out = AAD_DOMAIN.to_vec();
        let parts = [self.purpose, self.table]
            .into_iter()
            .chain(self.row.iter().map(String::as_str));
        for part in parts {
            out.extend_from_slice(&(part.len() as u64).to_be_bytes());
            out.extend_from_slice(part.as_bytes());
        }
        out
    }
}

/// A short, stable name of a master key: the first 8 bytes of a domain-separated SHA-256 of it,
/// in hex. It says which key sealed a value without revealing the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyId(String);

impl KeyId {
    fn of(raw: &[u8]) -> Self {
        let mut context = digest::Context::new(&digest::SHA256);
        context.update(KEY_ID_DOMAIN);
        context.update(raw);
        let digest = context.finish();
        let hex = digest.as_ref()[..KEY_ID_LEN / 2]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Self(hex)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One master key: its id, its AES-256-GCM key, and the HMAC key derived from it.
struct Key {
    id: KeyId,
    aead: LessSafeKey,
    /// HMAC-SHA256 key for `MasterKey::tag`, derived from the master key.
    tag: hmac::Key,
}

impl Key {
    /// `nonce ‖ ciphertext ‖ tag` of `plaintext` bound to `aad`, the raw form `open` reads.
    fn seal(
        &self,
        nonce: [u8; NONCE_LEN],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, aws_lc_rs::error::Unspecified> {
        let mut buf = plaintext.to_vec();
        self.aead.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut buf,
        )?;
        Ok([nonce.as_slice(), &buf].concat())
    }

    fn tag(&self, purpose: &str, data: &[u8]) -> hmac::Tag {
        let mut context = hmac::Context::with_key(&self.tag);
        // Length-prefixed, so that no purpose's input is another's.
        context.update(&(purpose.len() as u64).to_be_bytes());
        context.update(purpose.as_bytes());
        context.update(data);
        context.sign()
    }

    fn open(&self, aad: &[u8], encoded: &str) -> Result<Vec<u8>, SecretsError> {
        let raw = STANDARD.decode(encoded).map_err(|_| SecretsError::Open)?;
        if raw.len() < NONCE_LEN {
            return Err(SecretsError::Open);
        }
        let (nonce, ciphertext) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SecretsError::Open)?;
        let mut buf = ciphertext.to_vec();
        let plain = self
            .aead
            .open_in_place(nonce, Aad::from(aad), &mut buf)
            .map_err(|_| SecretsError::Open)?;
        Ok(plain.to_vec())
    }
}

/// A sealed value as stored, taken apart.
enum Sealed<'a> {
    V2 {
        key_id: &'a str,
        body: &'a str,
    },
    /// Bare base64, bound to the use only.
    Unversioned(&'a str),
}

impl<'a> Sealed<'a> {
    fn parse(stored: &'a str) -> Result<Self, SecretsError> {
        let Some(rest) = stored.strip_prefix(V2_PREFIX) else {
            return Ok(Self::Unversioned(stored));
        };
        let (key_id, body) = rest.split_once(':').ok_or(SecretsError::Open)?;
        let well_formed = key_id.len() == KEY_ID_LEN
            && key_id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !well_formed {
            return Err(SecretsError::Open);
        }
        Ok(Self::V2 { key_id, body })
    }
}

/// The key that seals, and during a rotation others that only open (`with_previous`).
pub struct MasterKey {
    sealing: Key,
    opening: Vec<Key>,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys().map(|k| k.id.as_str()).collect();
        write!(f, "MasterKey({})", ids.join(", "))
    }
}

impl MasterKey {
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

    /// Reads the key file, or creates it (mode 0600) with a fresh key when it does not exist.
    /// Every replica must be given the same file.
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
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &[]).extract(raw);
        let tag = prk
            .expand(&[TAG_KEY_INFO], hmac::HMAC_SHA256)
            .map_err(|_| SecretsError::Malformed("key".into()))?;
        Ok(Self {
            sealing: Key {
                id: KeyId::of(raw),
                aead: LessSafeKey::new(key),
                tag: hmac::Key::from(tag),
            },
            opening: Vec::new(),
        })
    }

    /// The id of the key that seals.
    pub fn key_id(&self) -> &KeyId {
        &self.sealing.id
    }

    /// This key sealing, and `previous` (with any key it opens with) opening too: what a replica
    /// runs with while the master key changes.
    pub fn with_previous(mut self, previous: MasterKey) -> Self {
        for key in std::iter::once(previous.sealing).chain(previous.opening) {
            if !self.keys().any(|k| k.id == key.id) {
                self.opening.push(key);
            }
        }
        self
    }

    /// The ids of every loaded key, the sealing key's first.
    pub fn key_ids(&self) -> impl Iterator<Item = &KeyId> {
        self.keys().map(|k| &k.id)
    }

    fn keys(&self) -> impl Iterator<Item = &Key> {
        std::iter::once(&self.sealing).chain(&self.opening)
    }

    /// AES-256-GCM with a random nonce under the sealing key, bound to `binding`:
    /// `v2:<key id>:<base64(nonce ‖ ciphertext ‖ tag)>`.
    pub fn seal(&self, binding: &Binding, plaintext: &[u8]) -> Result<String, SecretsError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| SecretsError::Random)?;
        let out = self
            .sealing
            .seal(nonce, &binding.associated_data(), plaintext)
            .map_err(|_| SecretsError::Random)?;
        Ok(format!(
            "{V2_PREFIX}{}:{}",
            self.sealing.id,
            STANDARD.encode(out)
        ))
    }

    /// Opens a value sealed for `binding`, with the key its id names (a value of the old form,
    /// which names none, with whichever loaded key opens it).
    pub fn open(&self, binding: &Binding, sealed: &str) -> Result<Vec<u8>, SecretsError> {
        match Sealed::parse(sealed)? {
            Sealed::V2 { key_id, body } => {
                let key = self
                    .keys()
                    .find(|k| k.id.as_str() == key_id)
                    .ok_or_else(|| SecretsError::UnknownKey {
                        key_id: key_id.to_owned(),
                        loaded: self
                            .keys()
                            .map(|k| k.id.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                    })?;
                key.open(&binding.associated_data(), body)
            }
            Sealed::Unversioned(body) => self
                .keys()
                .find_map(|k| k.open(binding.purpose.as_bytes(), body).ok())
                .ok_or(SecretsError::Open),
        }
    }

    /// Whether `sealed` is already in the current form under the sealing key (a rotation
    /// leaves it as it is).
    pub fn is_current(&self, sealed: &str) -> bool {
        matches!(Sealed::parse(sealed), Ok(Sealed::V2 { key_id, .. }) if key_id == self.sealing.id.as_str())
    }

    /// The first `len` bytes (at most 32) of an HMAC-SHA256 of `data` for `purpose` under the
    /// sealing key: a short proof, carried in an address or a link, that trustmail made it.
    pub fn tag(&self, purpose: &str, data: &[u8], len: usize) -> Vec<u8> {
        self.sealing.tag(purpose, data).as_ref()[..len.min(32)].to_vec()
    }

    /// Whether `tag` is `tag(purpose, data, tag.len())` under any loaded key (so tags made
    /// before a rotation still verify), compared in constant time. An empty tag never is.
    pub fn verify_tag(&self, purpose: &str, data: &[u8], tag: &[u8]) -> bool {
        !tag.is_empty()
            && tag.len() <= 32
            && self.keys().any(|k| {
                let full = k.tag(purpose, data);
                aws_lc_rs::constant_time::verify_slices_are_equal(&full.as_ref()[..tag.len()], tag)
                    .is_ok()
            })
    }

    /// What `is_current` values start with: for a query that leaves them out.
    pub fn current_prefix(&self) -> String {
        format!("{V2_PREFIX}{}:", self.sealing.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_in(dir: &tempfile::TempDir, name: &str) -> MasterKey {
        MasterKey::load_or_create(&dir.path().join(name)).unwrap()
    }

    /// A value in the form written before key ids: base64, bound to the use only.
    fn unversioned(key: &MasterKey, purpose: &str, plaintext: &[u8]) -> String {
        let sealed = key
            .sealing
            .seal([7u8; NONCE_LEN], purpose.as_bytes(), plaintext);
        STANDARD.encode(sealed.unwrap())
    }

    fn kid(name: &str) -> Binding {
        Binding::token_signing_key(name)
    }

    #[test]
    fn seals_and_opens_only_with_the_same_key_and_binding() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let key = MasterKey::load_or_create(&path).unwrap();
        let sealed = key.seal(&kid("a"), b"secret").unwrap();
        assert!(!sealed.contains("secret"));
        let again = MasterKey::load_or_create(&path).unwrap();
        assert_eq!(again.open(&kid("a"), &sealed).unwrap(), b"secret");
        assert!(matches!(
            again.open(&kid("b"), &sealed),
            Err(SecretsError::Open)
        ));
        let id = SubscriptionId::new();
        let headers = key.seal(&Binding::subscription_headers(id), b"{}").unwrap();
        assert!(
            key.open(&Binding::subscription_secret(id), &headers)
                .is_err()
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_sealed_value_names_its_key_by_a_stable_id() {
        let dir = tempfile::tempdir().unwrap();
        let key = key_in(&dir, "k");
        let sealed = key.seal(&kid("a"), b"secret").unwrap();
        let id = key.key_id().to_string();
        assert_eq!(id.len(), KEY_ID_LEN);
        assert!(sealed.starts_with(&format!("v2:{id}:")), "{sealed}");
        assert_eq!(key_in(&dir, "k").key_id(), key.key_id());
        assert_ne!(key_in(&dir, "other").key_id(), key.key_id());
        assert!(key.is_current(&sealed));
        assert!(sealed.starts_with(&key.current_prefix()));
    }

    #[test]
    fn parts_of_a_binding_do_not_run_into_each_other() {
        let ab = Binding::new("p", "t", ["ab".to_owned(), "c".to_owned()]);
        let a_bc = Binding::new("p", "t", ["a".to_owned(), "bc".to_owned()]);
        assert_ne!(ab.associated_data(), a_bc.associated_data());
    }

    #[test]
    fn a_value_of_the_old_form_still_opens_with_its_use() {
        let dir = tempfile::tempdir().unwrap();
        let key = key_in(&dir, "k");
        let old = unversioned(&key, "token-signing-key", b"secret");
        assert_eq!(key.open(&kid("any kid"), &old).unwrap(), b"secret");
        assert!(!key.is_current(&old));
        let dkim = Binding::dkim_private_key(DomainId::new(), "us-east-1", "p");
        assert!(key.open(&dkim, &old).is_err(), "another use");
        // During a rotation the previous key opens what it sealed in the old form.
        let rotated = key_in(&dir, "new").with_previous(key_in(&dir, "k"));
        assert_eq!(rotated.open(&kid("a"), &old).unwrap(), b"secret");
        assert!(key_in(&dir, "third").open(&kid("a"), &old).is_err());
    }

    #[test]
    fn a_previous_key_opens_but_never_seals() {
        let dir = tempfile::tempdir().unwrap();
        let old = key_in(&dir, "old");
        let sealed_before = old.seal(&kid("a"), b"before").unwrap();
        let ring = key_in(&dir, "new").with_previous(key_in(&dir, "old"));
        assert_eq!(ring.open(&kid("a"), &sealed_before).unwrap(), b"before");
        assert!(!ring.is_current(&sealed_before));
        let sealed_after = ring.seal(&kid("a"), b"after").unwrap();
        assert!(sealed_after.starts_with(&format!("v2:{}:", key_in(&dir, "new").key_id())));
        assert!(ring.is_current(&sealed_after));
        // The same key given twice is kept once.
        let twice = key_in(&dir, "new").with_previous(ring);
        assert_eq!(twice.keys().count(), 2);
    }

    #[test]
    fn a_value_under_a_key_not_loaded_names_that_key() {
        let dir = tempfile::tempdir().unwrap();
        let other = key_in(&dir, "other");
        let sealed = other.seal(&kid("a"), b"secret").unwrap();
        let key = key_in(&dir, "k");
        let error = key.open(&kid("a"), &sealed).unwrap_err();
        assert!(matches!(error, SecretsError::UnknownKey { .. }));
        let message = error.to_string();
        assert!(message.contains(other.key_id().as_str()), "{message}");
        assert!(message.contains(key.key_id().as_str()), "{message}");
        assert!(
            message.contains("secrets.previous_master_key_file"),
            "{message}"
        );
    }

    #[test]
    fn a_mangled_v2_value_is_corrupt_not_an_unknown_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = key_in(&dir, "k");
        for mangled in ["v2:", "v2:abc", "v2:XYZXYZXYZXYZXYZX:AAAA", "v2:0123:AAAA"] {
            assert!(
                matches!(key.open(&kid("a"), mangled), Err(SecretsError::Open)),
                "{mangled}"
            );
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

    #[test]
    fn a_tag_verifies_only_for_its_purpose_and_data_and_survives_a_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let old = key_in(&dir, "old");
        let tag = old.tag("bounce", b"message 1", 10);
        assert_eq!(tag.len(), 10);
        assert!(old.verify_tag("bounce", b"message 1", &tag));
        assert!(!old.verify_tag("bounce", b"message 2", &tag));
        assert!(!old.verify_tag("dmarc", b"message 1", &tag));
        // The purpose is length-prefixed: moving a byte across the border changes the tag.
        assert!(!old.verify_tag("bounc", b"emessage 1", &tag));
        let mut forged = tag.clone();
        forged[0] ^= 1;
        assert!(!old.verify_tag("bounce", b"message 1", &forged));
        assert!(!old.verify_tag("bounce", b"message 1", &[]));

        let new = key_in(&dir, "new");
        assert!(!new.verify_tag("bounce", b"message 1", &tag));
        let rotating = key_in(&dir, "new").with_previous(key_in(&dir, "old"));
        assert!(rotating.verify_tag("bounce", b"message 1", &tag));
        assert_eq!(
            rotating.tag("bounce", b"message 1", 10),
            new.tag("bounce", b"message 1", 10),
            "new tags are made under the sealing key"
        );
    }
}
