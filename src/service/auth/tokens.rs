//! Access tokens: EdDSA JWTs that any replica can verify, signed with a key sealed in the store.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use aws_lc_rs::{
    rand::SystemRandom,
    signature::{Ed25519KeyPair, KeyPair},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{
    domain::{ClientId, EnvironmentId, Role, now},
    secrets::{Binding, MasterKey, SecretsError},
    store::{Store, StoreError, StoredSigningKey},
};

pub use crate::domain::TOKEN_LIFETIME_S;
/// Verified tokens kept in memory; past this the cache starts over (a bound, not a policy).
const VERIFIED_CACHE_CAPACITY: usize = 10_000;
/// How stale this replica's view of revoked clients may be: another replica's client delete
/// refuses that client's tokens here within this (plus one store round trip).
const REVOCATION_POLL: Duration = Duration::from_secs(1);
/// A token naming a key we do not hold reloads the keys from the store at most this often, so
/// tokens with made-up `kid`s cannot turn into a query each.
const MIN_RELOAD_INTERVAL: Duration = Duration::from_secs(1);

/// Who is calling, from a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub client_id: ClientId,
    pub environment_id: EnvironmentId,
    pub role: Role,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed, badly signed or expired")]
    Invalid,
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The store was unreachable for another request's revocation poll while this one waited
    /// its turn: it fails at once rather than wait out the pool's timeout again.
    #[error("the store was unreachable for the revocation poll just made")]
    StoreUnavailable,
    #[error("signing key: {0}")]
    Key(String),
    #[error(
        "the master key does not open the token signing key in the database: every replica needs \
         the key that sealed it; copy secrets.master_key_file (or secrets.master_key) from a \
         replica that runs against this database"
    )]
    WrongMasterKey(#[source] SecretsError),
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    /// `public_url`: the API the token is for.
    aud: String,
    sub: String,
    env: String,
    role: String,
    iat: i64,
    exp: i64,
    jti: String,
}

struct SigningKey {
    kid: String,
    encoding: EncodingKey,
}

struct Keys {
    signing: SigningKey,
    verifying: HashMap<String, DecodingKey>,
    /// JWKS entries, in store order.
    public: Vec<(String, Vec<u8>)>,
}

pub struct TokenService {
    store: Store,
    master_key: Arc<MasterKey>,
    keys: RwLock<Arc<Keys>>,
    verified: RwLock<HashMap<String, (Actor, i64)>>,
    revoked: RwLock<Revoked>,
    /// One store poll at a time; the others wait for its answer.
    revocation_poll: tokio::sync::Mutex<()>,
    /// When the keys were last reloaded for an unknown `kid`; held while reloading, so
    /// concurrent unknown `kid`s wait for one reload instead of each making their own.
    last_reload: tokio::sync::Mutex<Option<Instant>>,
    public_url: String,
}

/// Clients whose tokens are refused (deleted ones), as last read from the store.
#[derive(Default)]
struct Revoked {
    clients: HashSet<ClientId>,
    polled_at: Option<Instant>,
    /// When a poll last failed because the store was unreachable.
    unavailable_at: Option<Instant>,
}

impl Revoked {
    fn is_fresh(&self) -> bool {
        self.polled_at
            .is_some_and(|at| at.elapsed() < REVOCATION_POLL)
    }
}

impl TokenService {
    /// Loads the signing keys, creating the first one when the store has none.
    pub async fn load(
        store: Store,
        master_key: Arc<MasterKey>,
        public_url: String,
    ) -> Result<Self, TokenError> {
        let mut stored = store.list_signing_keys().await?;
        if stored.is_empty() {
            store
                .insert_signing_key(&generate_key(&master_key)?)
                .await?;
            // Re-read: a replica starting at the same moment may have won; all sign with the oldest.
            stored = store.list_signing_keys().await?;
        }
        let keys = build_keys(&stored, &master_key)?;
        Ok(Self {
            store,
            master_key,
            keys: RwLock::new(Arc::new(keys)),
            verified: RwLock::new(HashMap::new()),
            revoked: RwLock::new(Revoked::default()),
            revocation_poll: tokio::sync::Mutex::new(()),
            last_reload: tokio::sync::Mutex::new(None),
            public_url,
        })
    }

    fn keys(&self) -> Arc<Keys> {
        match self.keys.read() {
            Ok(keys) => keys.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn issue(&self, actor: &Actor) -> Result<String, TokenError> {
        self.issue_at(actor, now())
    }

    /// A token as if issued at `issued_at` (tests use this to make expired tokens).
    pub fn issue_at(&self, actor: &Actor, issued_at: OffsetDateTime) -> Result<String, TokenError> {
        let keys = self.keys();
        let iat = issued_at.unix_timestamp();
        let claims = Claims {
            iss: self.issuer(actor.environment_id),
            aud: self.public_url.clone(),
            sub: actor.client_id.to_string(),
            env: actor.environment_id.to_string(),
            role: actor.role.as_str().to_owned(),
            iat,
            exp: iat + TOKEN_LIFETIME_S,
            jti: uuid::Uuid::new_v4().to_string(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(keys.signing.kid.clone());
        jsonwebtoken::encode(&header, &claims, &keys.signing.encoding)
            .map_err(|e| TokenError::Key(e.to_string()))
    }

    /// `iss` of the tokens of `environment_id`: its authorization server's base URL.
    fn issuer(&self, environment_id: EnvironmentId) -> String {
        format!("{}/{}/as", self.public_url, environment_id)
    }

    /// Checks signature, expiry, audience (`public_url`), issuer (the environment's
    /// authorization server) and that the client is not revoked; a token seen before is
    /// answered from memory until it expires, but revocations are re-read at least every second.
    pub async fn verify(&self, token: &str) -> Result<Actor, TokenError> {
        let actor = self.verify_signed(token).await?;
        if self.is_revoked(actor.client_id).await? {
            return Err(TokenError::Invalid);
        }
        Ok(actor)
    }

    /// Refuses the client's tokens in this process at once (other replicas learn it from the
    /// store within `REVOCATION_POLL`).
    pub fn revoke(&self, client_id: ClientId) {
        if let Ok(mut revoked) = self.revoked.write() {
            revoked.clients.insert(client_id);
        }
    }

    async fn is_revoked(&self, client_id: ClientId) -> Result<bool, TokenError> {
        if let Ok(revoked) = self.revoked.read()
            && revoked.is_fresh()
        {
            return Ok(revoked.clients.contains(&client_id));
        }
        let waiting_since = Instant::now();
        let _polling = self.revocation_poll.lock().await;
        // Requests queued here behind a poll that found the store unreachable would each wait
        // out the pool's timeout in turn (and run into the request timeout): they fail now.
        if self
            .revoked
            .read()
            .is_ok_and(|r| r.unavailable_at.is_some_and(|at| at >= waiting_since))
        {
            return Err(TokenError::StoreUnavailable);
        }
        let fresh = self.revoked.read().map(|r| r.is_fresh()).unwrap_or(false);
        if !fresh {
            let since = now() - time::Duration::seconds(TOKEN_LIFETIME_S);
            let clients: HashSet<_> = match self.store.revoked_clients(since).await {
                Ok(clients) => clients.into_iter().collect(),
                Err(e) => {
                    if e.is_unavailable()
                        && let Ok(mut revoked) = self.revoked.write()
                    {
                        revoked.unavailable_at = Some(Instant::now());
                    }
                    return Err(e.into());
                }
            };
            if let Ok(mut revoked) = self.revoked.write() {
                // Keep local revocations too: the store has them, but a poll that started
                // before one committed would not.
                revoked.clients.extend(clients);
                revoked.polled_at = Some(Instant::now());
            }
        }
        Ok(self
            .revoked
            .read()
            .map(|r| r.clients.contains(&client_id))
            .unwrap_or(true))
    }

    async fn verify_signed(&self, token: &str) -> Result<Actor, TokenError> {
        let now_s = now().unix_timestamp();
        if let Ok(cache) = self.verified.read()
            && let Some((actor, exp)) = cache.get(token)
        {
            return if *exp > now_s {
                Ok(actor.clone())
            } else {
                Err(TokenError::Invalid)
            };
        }
        let kid = jsonwebtoken::decode_header(token)
            .map_err(|_| TokenError::Invalid)?
            .kid
            .ok_or(TokenError::Invalid)?;
        if !self.keys().verifying.contains_key(&kid) {
            // Perhaps a key another replica added since we loaded ours.
            self.reload_for(&kid).await?;
        }
        let keys = self.keys();
        let key = keys.verifying.get(&kid).ok_or(TokenError::Invalid)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.leeway = 0;
        validation.set_audience(&[&self.public_url]);
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        let claims = jsonwebtoken::decode::<Claims>(token, key, &validation)
            .map_err(|_| TokenError::Invalid)?
            .claims;
        let actor = Actor {
            client_id: claims.sub.parse().map_err(|_| TokenError::Invalid)?,
            environment_id: claims.env.parse().map_err(|_| TokenError::Invalid)?,
            role: claims.role.parse().map_err(|_| TokenError::Invalid)?,
        };
        if claims.iss != self.issuer(actor.environment_id) {
            return Err(TokenError::Invalid);
        }
        if let Ok(mut cache) = self.verified.write() {
            if cache.len() >= VERIFIED_CACHE_CAPACITY {
                cache.clear();
            }
            cache.insert(token.to_owned(), (actor.clone(), claims.exp));
        }
        Ok(actor)
    }

    /// Reloads the keys for a token naming `kid`, unless another request just did (then its
    /// result serves this one) or the last reload was under `MIN_RELOAD_INTERVAL` ago.
    async fn reload_for(&self, kid: &str) -> Result<(), TokenError> {
        let mut last = self.last_reload.lock().await;
        if self.keys().verifying.contains_key(kid)
            || last.is_some_and(|at| at.elapsed() < MIN_RELOAD_INTERVAL)
        {
            return Ok(());
        }
        *last = Some(Instant::now());
        metrics::counter!("token_key_reloads_total").increment(1);
        let stored = self.store.list_signing_keys().await?;
        let keys = build_keys(&stored, &self.master_key)?;
        if let Ok(mut slot) = self.keys.write() {
            *slot = Arc::new(keys);
        }
        Ok(())
    }

    /// The JSON Web Key Set of every verifying key.
    pub fn jwks(&self) -> serde_json::Value {
        let keys = self.keys();
        let keys: Vec<_> = keys
            .public
            .iter()
            .map(|(kid, public)| {
                serde_json::json!({
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "use": "sig",
                    "alg": "EdDSA",
                    "kid": kid,
                    "x": URL_SAFE_NO_PAD.encode(public),
                })
            })
            .collect();
        serde_json::json!({ "keys": keys })
    }
}

fn generate_key(master_key: &MasterKey) -> Result<StoredSigningKey, TokenError> {
    let key_err = |e: &dyn std::fmt::Display| TokenError::Key(e.to_string());
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|e| key_err(&e))?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|e| key_err(&e))?;
    let kid = uuid::Uuid::new_v4().to_string();
    Ok(StoredSigningKey {
        sealed_private_key: master_key
            .seal(&Binding::token_signing_key(&kid), pkcs8.as_ref())
            .map_err(|e| key_err(&e))?,
        kid,
        algorithm: "EdDSA".into(),
        public_key: URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
        created_at: now(),
    })
}

fn build_keys(stored: &[StoredSigningKey], master_key: &MasterKey) -> Result<Keys, TokenError> {
    let first = stored
        .first()
        .ok_or_else(|| TokenError::Key("no signing key in the store".into()))?;
    let pkcs8 = master_key
        .open(
            &Binding::token_signing_key(&first.kid),
            &first.sealed_private_key,
        )
        .map_err(TokenError::WrongMasterKey)?;
    let mut verifying = HashMap::new();
    let mut public = Vec::new();
    for key in stored {
        let raw = URL_SAFE_NO_PAD
            .decode(&key.public_key)
            .map_err(|e| TokenError::Key(e.to_string()))?;
        verifying.insert(key.kid.clone(), DecodingKey::from_ed_der(&raw));
        public.push((key.kid.clone(), raw));
    }
    Ok(Keys {
        signing: SigningKey {
            kid: first.kid.clone(),
            encoding: EncodingKey::from_ed_der(&pkcs8),
        },
        verifying,
        public,
    })
}
