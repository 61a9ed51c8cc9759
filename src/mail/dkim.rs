//! DKIM with mail-auth: key pairs for new selectors, signing a composed message, and what the
//! outbox delivery asks of whoever holds the keys (`DeliverySigner`).

use mail_auth::{
    common::{
        crypto::{DkimKey as SigningKeyPair, Ed25519Key, RsaKey, Sha256},
        headers::HeaderWriter,
    },
    dkim::{Canonicalization, DkimSigner, Done, generate::DkimKeyPair},
};
use rsa::{pkcs1::DecodeRsaPublicKey, pkcs8::EncodePublicKey};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs1KeyDer};

use crate::domain::{DkimAlgorithm, DomainId};

/// The headers a signature covers: the ones receivers show or judge a message by. A header the
/// message lacks is still listed once, so that nobody can add it later (RFC 6376 § 5.4).
pub const SIGNED_HEADERS: [&str; 10] = [
    "From",
    "Reply-To",
    "Subject",
    "Date",
    "To",
    "Cc",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
];

#[derive(Debug, thiserror::Error)]
pub enum DkimError {
    #[error("DKIM key generation failed: {0}")]
    Generate(String),
    #[error("the stored DKIM private key cannot be used: {0}")]
    Key(String),
    #[error("DKIM signing failed: {0}")]
    Sign(String),
}

/// A fresh key pair: the private key as DER (PKCS#1 for RSA, PKCS#8 for Ed25519), and the
/// public key as base64 for `p=` (SubjectPublicKeyInfo for RSA, the raw 32 bytes for Ed25519).
pub struct GeneratedKey {
    pub private_der: Vec<u8>,
    pub public_key: String,
}

/// Makes a key pair. RSA-2048 takes a noticeable fraction of a second: call it off the async
/// workers.
pub fn generate_key(algorithm: DkimAlgorithm) -> Result<GeneratedKey, DkimError> {
    let generate = |e: &dyn std::fmt::Display| DkimError::Generate(e.to_string());
    let pair = match algorithm {
        DkimAlgorithm::Rsa2048 => DkimKeyPair::generate_rsa(2048),
        DkimAlgorithm::Ed25519 => DkimKeyPair::generate_ed25519(),
    }
    .map_err(|e| generate(&e))?;
    let (private_der, public) = pair.into_inner();
    let public = match algorithm {
        DkimAlgorithm::Rsa2048 => rsa::RsaPublicKey::from_pkcs1_der(&public)
            .and_then(|key| {
                key.to_public_key_der()
                    .map_err(|e| rsa::pkcs1::Error::Pkcs8(e.into()))
            })
            .map_err(|e| generate(&e))?
            .into_vec(),
        DkimAlgorithm::Ed25519 => public,
    };
    Ok(GeneratedKey {
        private_der,
        public_key: base64::Engine::encode(&base64::engine::general_purpose::STANDARD, public),
    })
}

/// A private key ready to sign with for one domain and selector: parsed once, kept while its
/// selector signs.
pub struct Signer {
    selector: String,
    signer: DkimSigner<SigningKeyPair, Done>,
}

impl Signer {
    pub fn new(
        algorithm: DkimAlgorithm,
        private_der: &[u8],
        domain: &str,
        selector: &str,
    ) -> Result<Self, DkimError> {
        let key = |e: &dyn std::fmt::Display| DkimError::Key(e.to_string());
        let key = match algorithm {
            DkimAlgorithm::Rsa2048 => SigningKeyPair::Rsa(
                RsaKey::<Sha256>::from_key_der(PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(
                    private_der,
                )))
                .map_err(|e| key(&e))?,
            ),
            DkimAlgorithm::Ed25519 => SigningKeyPair::Ed25519(
                Ed25519Key::from_pkcs8_der(private_der).map_err(|e| key(&e))?,
            ),
        };
        let signer = DkimSigner::from_key(key)
            .domain(domain)
            .selector(selector)
            .headers(SIGNED_HEADERS)
            .header_canonicalization(Canonicalization::Relaxed)
            .body_canonicalization(Canonicalization::Relaxed);
        Ok(Self {
            selector: selector.to_owned(),
            signer,
        })
    }

    pub fn selector(&self) -> &str {
        &self.selector
    }

    /// The `DKIM-Signature:` header line (with its CRLF) to put in front of `message`:
    /// relaxed/relaxed, `d=` the signing domain, over `SIGNED_HEADERS`.
    pub fn sign(&self, message: &[u8]) -> Result<String, DkimError> {
        let signature = self
            .signer
            .sign(message)
            .map_err(|e| DkimError::Sign(e.to_string()))?;
        Ok(signature.to_header())
    }
}

/// Why a message could not be signed just before its delivery.
#[derive(Debug, thiserror::Error)]
pub enum DeliverySignError {
    /// It never can be (its domain was deleted, or has no signing key in the region): the
    /// message fails unsent, with this reason.
    #[error("{0}")]
    Refused(String),
    /// Not now (the store did not answer): the attempt counts as a failed delivery and is
    /// retried with the usual backoff.
    #[error("{0}")]
    Unavailable(String),
}

/// Signs customer mail when it is sent (`jobs::outbox`), with the key that signs for its domain
/// in its region at that moment. `service::Service` implements it with its parsed-key cache.
#[async_trait::async_trait]
pub trait DeliverySigner: Send + Sync {
    /// `message` with the `DKIM-Signature` of `domain`'s signing key in `region` in front.
    async fn sign_for_delivery(
        &self,
        domain: DomainId,
        region: &str,
        message: &str,
    ) -> Result<String, DeliverySignError>;
}
