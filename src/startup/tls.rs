//! HTTPS: the certificate chain and key of `http.tls_cert_file` / `http.tls_key_file` (PEM),
//! re-read every `http.tls_reload_interval_s` so that a renewed certificate is served without a
//! restart (README § HTTPS). A renewal that does not load keeps the certificate in use.
//!
//! The files are read whole and compared, not judged by their times: a rename over them, a
//! rewrite in place and a second write within one mtime tick all show. Certificate and key are
//! rarely replaced at once, so a pair that does not load is reported only when it is still
//! there on the next look (a renewal half-way through is not worth a warning).

use std::{
    fmt,
    path::{Path, PathBuf},
    sync::{Arc, PoisonError, RwLock},
    time::Duration,
};

use rustls::{
    ServerConfig,
    crypto::{CryptoProvider, aws_lc_rs},
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};
use tokio_rustls::TlsAcceptor;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")]
    NoCertificate { path: String },
    #[error("{path} is not a PEM certificate chain: {source}")]
    Certificate {
        path: String,
        source: rustls::pki_types::pem::Error,
    },
    #[error("{path} holds no PEM private key (PKCS#8, PKCS#1 or SEC1): {source}")]
    Key {
        path: String,
        source: rustls::pki_types::pem::Error,
    },
    #[error("the certificate in {cert} and the key in {key} cannot serve together: {source}")]
    Pair {
        cert: String,
        key: String,
        source: rustls::Error,
    },
    #[error("cannot set up TLS: {0}")]
    Setup(rustls::Error),
}

/// The certificate served now; the reload loop replaces it.
struct CurrentCertificate(RwLock<Arc<CertifiedKey>>);

impl CurrentCertificate {
    fn get(&self) -> Arc<CertifiedKey> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set(&self, key: Arc<CertifiedKey>) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = key;
    }
}

impl fmt::Debug for CurrentCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CurrentCertificate")
    }
}

impl ResolvesServerCert for CurrentCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.get())
    }
}

/// What the files held when last read, so that an unchanged file is not parsed (nor its error
/// logged) again on every tick.
type Seen = Result<(Vec<u8>, Vec<u8>), String>;

/// HTTPS for the serve loop: the acceptor its connections handshake with, and the files it
/// reloads from. A clone serves the same certificate (the reload job restarts from one).
#[derive(Clone)]
pub struct Tls {
    cert_file: PathBuf,
    key_file: PathBuf,
    provider: Arc<CryptoProvider>,
    current: Arc<CurrentCertificate>,
    acceptor: TlsAcceptor,
    seen: Seen,
    /// Why the files as last seen do not load, until it is logged.
    unreported: Option<String>,
}

impl Tls {
    /// Loads both files; at start-up a pair that does not load is an error, not a fallback.
    pub async fn load(cert_file: &Path, key_file: &Path) -> Result<Self, TlsError> {
        let provider = Arc::new(aws_lc_rs::default_provider());
        let (cert, key) = read_pair(cert_file, key_file).await?;
        let certified = certified_key(cert_file, key_file, &cert, &key, &provider)?;
        let current = Arc::new(CurrentCertificate(RwLock::new(Arc::new(certified))));
        let mut config = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Setup)?
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        // The serve loop speaks HTTP/1.1 only.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            cert_file: cert_file.to_owned(),
            key_file: key_file.to_owned(),
            provider,
            current,
            acceptor: TlsAcceptor::from(Arc::new(config)),
            seen: Ok((cert, key)),
            unreported: None,
        })
    }

    pub fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.clone()
    }

    /// Re-reads the files every `interval` and serves a pair that changed and loads; one that
    /// does not load is logged once and the certificate in use stays.
    pub async fn reload_every(mut self, interval: Duration) {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            self.reload().await;
        }
    }

    /// One look at the files: whether a new certificate is now served.
    pub async fn reload(&mut self) -> bool {
        let seen: Seen = read_pair(&self.cert_file, &self.key_file)
            .await
            .map_err(|e| crate::error_chain::ErrorChain(&e).to_string());
        if seen == self.seen {
            if let Some(error) = self.unreported.take() {
                tracing::warn!(
                    %error,
                    "the TLS files do not load; still serving the certificate loaded before"
                );
            }
            return false;
        }
        self.seen = seen;
        let loaded = match &self.seen {
            Err(e) => Err(e.clone()),
            Ok((cert, key)) => {
                certified_key(&self.cert_file, &self.key_file, cert, key, &self.provider)
                    .map_err(|e| crate::error_chain::ErrorChain(&e).to_string())
            }
        };
        match loaded {
            Ok(certified) => {
                self.unreported = None;
                self.current.set(Arc::new(certified));
                tracing::info!(file = %self.cert_file.display(), "serving a renewed TLS certificate");
                true
            }
            Err(error) => {
                self.unreported = Some(error);
                false
            }
        }
    }
}

async fn read_pair(cert_file: &Path, key_file: &Path) -> Result<(Vec<u8>, Vec<u8>), TlsError> {
    let read = |path: &Path| {
        let path = path.to_owned();
        async move {
            tokio::fs::read(&path)
                .await
                .map_err(|source| TlsError::Read {
                    path: path.display().to_string(),
                    source,
                })
        }
    };
    Ok((read(cert_file).await?, read(key_file).await?))
}

/// The chain and key as rustls serves them, refused when the key is not the certificate's.
fn certified_key(
    cert_file: &Path,
    key_file: &Path,
    cert: &[u8],
    key: &[u8],
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let cert_path = cert_file.display().to_string();
    let key_path = key_file.display().to_string();
    let chain = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Certificate {
            path: cert_path.clone(),
            source,
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate { path: cert_path });
    }
    let key = PrivateKeyDer::from_pem_slice(key).map_err(|source| TlsError::Key {
        path: key_path.clone(),
        source,
    })?;
    CertifiedKey::from_der(chain, key, provider).map_err(|source| TlsError::Pair {
        cert: cert_path,
        key: key_path,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate for localhost: (certificate PEM, key PEM, certificate DER).
    fn self_signed(name: &str) -> (String, String, Vec<u8>) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![name.to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem(), cert.der().to_vec())
    }

    struct Files {
        _dir: tempfile::TempDir,
        cert: PathBuf,
        key: PathBuf,
    }

    impl Files {
        fn new(cert: &str, key: &str) -> Self {
            let dir = tempfile::tempdir().unwrap();
            let files = Self {
                cert: dir.path().join("cert.pem"),
                key: dir.path().join("key.pem"),
                _dir: dir,
            };
            files.write(cert, key);
            files
        }

        fn write(&self, cert: &str, key: &str) {
            std::fs::write(&self.cert, cert).unwrap();
            std::fs::write(&self.key, key).unwrap();
        }
    }

    fn served(tls: &Tls) -> Vec<u8> {
        tls.current.get().cert[0].to_vec()
    }

    #[tokio::test]
    async fn a_renewal_that_does_not_load_keeps_the_certificate_in_use() {
        let (cert, key, first) = self_signed("localhost");
        let files = Files::new(&cert, &key);
        let mut tls = Tls::load(&files.cert, &files.key).await.unwrap();
        assert_eq!(served(&tls), first);
        assert!(!tls.reload().await, "nothing changed");

        let (new_cert, new_key, renewed) = self_signed("localhost");
        // Half-way through a renewal: the new certificate with the old key.
        files.write(&new_cert, &key);
        assert!(!tls.reload().await);
        files.write("-----BEGIN CERTIFICATE-----\nnot base64\n", &new_key);
        assert!(!tls.reload().await);
        std::fs::remove_file(&files.cert).unwrap();
        assert!(!tls.reload().await);
        assert_eq!(served(&tls), first);

        files.write(&new_cert, &new_key);
        assert!(tls.reload().await);
        assert_eq!(served(&tls), renewed);
    }

    #[tokio::test]
    async fn a_pair_that_does_not_load_is_reported_only_if_it_is_still_there_on_the_next_look() {
        let (cert, key, _) = self_signed("localhost");
        let files = Files::new(&cert, &key);
        let mut tls = Tls::load(&files.cert, &files.key).await.unwrap();
        let (new_cert, new_key, _) = self_signed("localhost");
        // The certificate renamed over, the key not yet: half-way through a renewal.
        files.write(&new_cert, &key);
        assert!(!tls.reload().await);
        assert!(tls.unreported.is_some());
        files.write(&new_cert, &new_key);
        assert!(tls.reload().await);
        assert!(tls.unreported.is_none(), "nothing left to report");

        files.write(&new_cert, &key);
        assert!(!tls.reload().await);
        assert!(!tls.reload().await, "still there: reported now");
        assert!(tls.unreported.is_none(), "reported once");
    }

    #[tokio::test]
    async fn files_that_do_not_load_at_start_up_say_which_and_why() {
        let (cert, key, _) = self_signed("localhost");
        let (_, other_key, _) = self_signed("localhost");
        let error = |cert: &str, key: &str| {
            let files = Files::new(cert, key);
            async move {
                let e = Tls::load(&files.cert, &files.key).await.err().unwrap();
                (e.to_string(), files)
            }
        };
        let (e, files) = error(&cert, &other_key).await;
        assert!(e.contains("cannot serve together"), "{e}");
        assert!(e.contains(&files.cert.display().to_string()), "{e}");
        let (e, _) = error(&key, &key).await;
        assert!(e.contains("holds no PEM certificate"), "{e}");
        let (e, _) = error(&cert, &cert).await;
        assert!(e.contains("holds no PEM private key"), "{e}");
        let missing = Tls::load(Path::new("/nonexistent/cert.pem"), Path::new("/x"))
            .await
            .err()
            .unwrap();
        assert!(matches!(missing, TlsError::Read { .. }), "{missing}");
    }
}
