//! Wiring: configuration in, a running server out. Tests build it on port 0.

mod open_files;
mod serve;
mod tls;

pub use open_files::{OpenFilesError, ensure as ensure_open_files};

pub use serve::SHUTDOWN_GRACE;
use tls::Tls;
pub use tls::TlsError;

use std::{future::Future, sync::Arc};

use axum::Router;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;

use crate::{
    api,
    config::{Config, Http, Secrets},
    dkim_dns::DkimDns,
    feedback::mx::FeedbackMx,
    jobs::outbox::OutboxDelivery,
    mail::{RelayConfigError, Relays},
    secrets::{KeyId, MasterKey, SecretsError},
    service::{Credentials, Service, ServiceError, Settings, TokenError},
    store::{Store, StoreError},
    webhooks::SubscriptionDelivery,
};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot open the database")]
    Store(#[from] StoreError),
    #[error("cannot load the master key")]
    Secrets(#[from] SecretsError),
    #[error("cannot start the service")]
    Service(#[from] ServiceError),
    #[error("cannot set up DNS")]
    Dns(#[from] crate::dns::DnsSetupError),
    #[error("cannot serve the DKIM zones")]
    DkimDns(#[from] crate::dkim_dns::DkimDnsError),
    #[error("cannot deliver webhooks")]
    Webhooks(#[from] crate::webhooks::ClientError),
    #[error("cannot use the outbound mail relay")]
    Mail(#[from] RelayConfigError),
    #[error("cannot serve HTTPS with http.tls_cert_file and http.tls_key_file")]
    Tls(#[from] TlsError),
    #[error(
        "the database holds data sealed with a master key, but there is no key: {path} does not \
         exist and secrets.master_key is not set. Copy the key file of a replica that runs against \
         this database to {path} (or set TRUSTMAIL_SECRETS__MASTER_KEY to its contents); a new key \
         could never open what the first one sealed"
    )]
    MasterKeyMissing { path: String },
    #[error("not enough open files for the configured connections")]
    OpenFiles(#[from] OpenFilesError),
    #[error(
        "secrets.previous_master_key_file names {path}, which does not exist: copy the key file \
         there, or unset secrets.previous_master_key_file once no value is sealed under that key"
    )]
    PreviousMasterKeyMissing { path: String },
    #[error("cannot load secrets.previous_master_key_file")]
    PreviousMasterKey(#[source] SecretsError),
    #[error("cannot listen on {address}")]
    Bind {
        address: String,
        source: std::io::Error,
    },
}

/// The store, keys and use cases, without a listener (the CLI's commands use this).
pub async fn open_service(config: &Config, public_url: &str) -> Result<Service, StartupError> {
    Ok(open(config, public_url).await?.0)
}

impl StartupError {
    /// Whether the operator's configuration or files are at fault (the CLI exits 2), rather
    /// than something at run time.
    pub fn is_configuration(&self) -> bool {
        matches!(
            self,
            StartupError::MasterKeyMissing { .. }
                | StartupError::OpenFiles(_)
                | StartupError::PreviousMasterKeyMissing { .. }
                | StartupError::PreviousMasterKey(_)
                | StartupError::Secrets(_)
                | StartupError::Tls(_)
                | StartupError::Service(ServiceError::Token(TokenError::WrongMasterKey(_)))
        )
    }
}

/// The master key (see `sealing_key`), opening with `secrets.previous_master_key_file` too when
/// that is set.
async fn master_key(secrets: &Secrets, store: &Store) -> Result<MasterKey, StartupError> {
    let key = sealing_key(secrets, store).await?;
    let Some(path) = secrets.previous_key_file() else {
        return Ok(key);
    };
    match MasterKey::load(path) {
        Ok(Some(previous)) => Ok(key.with_previous(previous)),
        Ok(None) => Err(StartupError::PreviousMasterKeyMissing {
            path: path.display().to_string(),
        }),
        Err(e) => Err(StartupError::PreviousMasterKey(e)),
    }
}

/// The key that seals: `secrets.master_key` when set, else the key file. A database that
/// already holds sealed data needs the key that sealed it, so a missing file is made only for a
/// new one.
async fn sealing_key(secrets: &Secrets, store: &Store) -> Result<MasterKey, StartupError> {
    let configured = secrets.master_key.expose_secret();
    if !configured.is_empty() {
        return Ok(MasterKey::from_base64(configured, "secrets.master_key")?);
    }
    if let Some(key) = MasterKey::load(&secrets.master_key_file)? {
        return Ok(key);
    }
    if store.holds_sealed_data().await? {
        return Err(StartupError::MasterKeyMissing {
            path: secrets.master_key_file.display().to_string(),
        });
    }
    Ok(MasterKey::load_or_create(&secrets.master_key_file)?)
}

/// The store, keys and use cases for `trustmail secrets rotate-master-key`: `new_key` seals, the
/// configured keys only open. Also the ids of the configured keys, the sealing one's first.
pub async fn open_for_rotation(
    config: &Config,
    public_url: &str,
    new_key: MasterKey,
) -> Result<(Service, Vec<KeyId>), StartupError> {
    let mut configured = Vec::new();
    let (service, _) = open_keyed(config, public_url, |key| {
        configured = key.key_ids().cloned().collect();
        new_key.with_previous(key)
    })
    .await?;
    Ok((service, configured))
}

/// The use cases and the store under them (the server's jobs and shutdown need the store too).
async fn open(config: &Config, public_url: &str) -> Result<(Service, Store), StartupError> {
    open_keyed(config, public_url, |key| key).await
}

/// As `open`, with the configured master key turned into the one used by `keys`.
async fn open_keyed(
    config: &Config,
    public_url: &str,
    keys: impl FnOnce(MasterKey) -> MasterKey,
) -> Result<(Service, Store), StartupError> {
    let store = Store::connect(config.database_url.expose_secret()).await?;
    let master_key = Arc::new(keys(master_key(&config.secrets, &store).await?));
    let store = store.sealing_with(master_key.clone());
    let dns = crate::dns::DnsClient::new(&config.dns)?;
    let service = Service::new(
        store.clone(),
        master_key,
        Settings::from_config(config),
        dns,
        public_url.to_owned(),
    )
    .await?;
    Ok((service, store))
}

/// `public_url` as configured, else `http://` (`https://` with TLS) + the address bound.
pub fn public_url(config: &Config, bound: std::net::SocketAddr) -> String {
    if config.public_url.is_empty() {
        let scheme = if config.http.tls_files().is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{bound}")
    } else {
        config.public_url.trim_end_matches('/').to_owned()
    }
}

pub struct Application {
    listener: TcpListener,
    router: Router,
    port: u16,
    public_url: String,
    service: Service,
    store: Store,
    bootstrap: Option<Credentials>,
    outbox: OutboxDelivery,
    webhooks: SubscriptionDelivery,
    dkim_dns: Option<DkimDns>,
    /// The feedback MX, when `feedback.listen` is set.
    feedback_mx: Option<FeedbackMx>,
    metrics: Option<MetricsListener>,
    http: Http,
    tls: Option<Tls>,
    retention: crate::config::Retention,
}

/// `metrics.listen`: a listener of its own that serves only `/metrics`.
struct MetricsListener {
    listener: TcpListener,
    router: Router,
}

impl Application {
    /// Binds `config.listen`, opens the store, and on an empty database creates the first
    /// administrator (see `take_bootstrap_credentials`).
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartupError::Bind {
                    address: config.listen.to_string(),
                    source,
                })?;
        let bound = listener.local_addr().map_err(|source| StartupError::Bind {
            address: config.listen.to_string(),
            source,
        })?;
        let public_url = public_url(&config, bound);
        // Before the store: a certificate that does not load is the operator's to fix first.
        let tls = match config.http.tls_files() {
            Some((cert, key)) => Some(Tls::load(cert, key).await?),
            None => None,
        };
        let relays = Relays::from_config(&config.mail, &config.regions)?;
        let (service, store) = open(&config, &public_url).await?;
        let outbox = OutboxDelivery::new(
            store.clone(),
            relays,
            Arc::new(service.clone()),
            Arc::new(service.clone()),
        );
        let webhooks =
            SubscriptionDelivery::new(store.clone(), &config.webhooks, api::activity_body)?;
        let bootstrap = service.bootstrap(&public_url).await?;
        let minted = service.mint_missing_dkim_keys().await?;
        if minted > 0 {
            tracing::info!(keys = minted, "made DKIM keys for domains that had none");
        }
        let dkim_dns = if config.dkim_dns.listen.is_empty() {
            None
        } else {
            Some(DkimDns::start(&config.dkim_dns, service.clone()).await?)
        };
        let feedback_mx = match config.feedback.listen_addr() {
            Some(address) => Some(
                FeedbackMx::start(
                    &config.feedback,
                    config.feedback_host(),
                    tls.as_ref().map(Tls::acceptor),
                    Arc::new(service.clone()),
                )
                .await
                .map_err(|source| StartupError::Bind {
                    address: address.to_string(),
                    source,
                })?,
            ),
            None => None,
        };
        let metrics_access = api::MetricsAccess {
            on_api_listener: config.metrics.listen_addr().is_none(),
            token: config.metrics.token(),
        };
        let metrics = match config.metrics.listen_addr() {
            Some(address) => Some(MetricsListener {
                listener: TcpListener::bind(address).await.map_err(|source| {
                    StartupError::Bind {
                        address: address.to_string(),
                        source,
                    }
                })?,
                router: api::metrics_router(api::middleware::metrics_handle(), &metrics_access),
            }),
            None => None,
        };
        let router = api::router(
            service.clone(),
            &public_url,
            config.http.request_timeout(),
            &metrics_access,
        );
        Ok(Self {
            listener,
            router,
            port: bound.port(),
            public_url,
            service,
            store,
            bootstrap,
            outbox,
            webhooks,
            dkim_dns,
            feedback_mx,
            metrics,
            http: config.http,
            tls,
            retention: config.retention,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// Where trustmail's DNS for the DKIM zones answers (UDP and TCP), when `dkim_dns.listen`
    /// is set.
    pub fn dkim_dns_addr(&self) -> Option<std::net::SocketAddr> {
        self.dkim_dns.as_ref().map(DkimDns::local_addr)
    }

    /// Where the feedback MX takes SMTP, when `feedback.listen` is set.
    pub fn feedback_addr(&self) -> Option<std::net::SocketAddr> {
        self.feedback_mx.as_ref().map(FeedbackMx::local_addr)
    }

    /// Where `/metrics` is served instead of the API's listener, when `metrics.listen` is set.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.metrics
            .as_ref()
            .and_then(|m| m.listener.local_addr().ok())
    }

    pub fn service(&self) -> &Service {
        &self.service
    }

    /// The store under the service: the outbox job and shutdown use it, and tests inspect it.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The credentials made on an empty database, once.
    pub fn take_bootstrap_credentials(&mut self) -> Option<Credentials> {
        self.bootstrap.take()
    }

    /// Serves until `shutdown` completes, then finishes the requests in flight (for at most
    /// `SHUTDOWN_GRACE`).
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        tracing::info!(url = %self.public_url, "trustmail listening");
        let store = self.store;
        use crate::jobs::{FIRST_BACKOFF, supervise};
        let upkeep = tokio::spawn(supervise("metrics_upkeep", FIRST_BACKOFF, || {
            api::middleware::metrics_upkeep()
        }));
        let delivery = self.outbox.spawn();
        let webhooks = self.webhooks.spawn();
        let retention = crate::jobs::retention::spawn(store.clone(), self.retention);
        let service = self.service.clone();
        let checks = tokio::spawn(supervise("dns_checks", FIRST_BACKOFF, move || {
            crate::jobs::dns::run_scheduled_checks(service.clone())
        }));
        let acceptor = self.tls.as_ref().map(Tls::acceptor);
        let waits = self.service.clone();
        let shutdown = async move {
            shutdown.await;
            // Long polls answer now, inside the shutdown grace.
            waits.stop_waiting();
        };
        let reload = self.tls.map(|tls| {
            let interval = self.http.tls_reload_interval();
            tokio::spawn(supervise("tls_reload", FIRST_BACKOFF, move || {
                tls.clone().reload_every(interval)
            }))
        });
        let (stop_metrics, metrics_stopping) = tokio::sync::watch::channel(());
        let metrics = self.metrics.map(|metrics| {
            let http = self.http.clone();
            let mut stopping = metrics_stopping;
            tokio::spawn(async move {
                let stop = async move {
                    let _ = stopping.changed().await;
                };
                serve::serve(metrics.listener, metrics.router, &http, None, stop).await
            })
        });
        let served = serve::serve(self.listener, self.router, &self.http, acceptor, shutdown).await;
        drop(stop_metrics);
        if let Some(metrics) = metrics {
            let _ = metrics.await;
        }
        if let Some(reload) = reload {
            reload.abort();
        }
        upkeep.abort();
        checks.abort();
        if let Some(dkim_dns) = self.dkim_dns {
            dkim_dns.stop().await;
        }
        if let Some(feedback_mx) = self.feedback_mx {
            feedback_mx.stop().await;
        }
        tokio::join!(delivery.stop(), webhooks.stop(), retention.stop());
        store.close().await;
        served
    }

    /// Serves until SIGINT or SIGTERM.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
