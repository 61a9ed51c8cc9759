//! DKIM keys: three per domain and region, their private halves sealed with the master key.
//! Rotations lock the domain row, so two at once cannot leave a region without a signing key.

use std::collections::HashMap;

use sqlx::any::AnyRow;
use time::OffsetDateTime;

use super::{FromRow, RowExt, Store, StoreError, Tx, changed, insert_activity, millis};
use crate::domain::{Activity, DkimAlgorithm, DkimKey, DkimRole, DomainId};

macro_rules! dkim_columns {
    () => {
        "domain_id, region, position, selector, algorithm, public_key, role, role_since, created_at"
    };
}

/// Key material for a slot: the public key as published and the private key sealed.
#[derive(Debug, Clone)]
pub struct NewKeyMaterial {
    pub algorithm: DkimAlgorithm,
    pub public_key: String,
    pub sealed_private_key: String,
}

/// A key and its sealed private half, as stored.
#[derive(Debug, Clone)]
pub struct SealedDkimKey {
    pub key: DkimKey,
    pub sealed_private_key: String,
}

/// A DKIM record with no key behind it yet (domains created before keys existed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeylessSelector {
    pub domain_id: DomainId,
    pub region: String,
    pub position: u8,
    pub selector: String,
}

/// A summary of the whole table that changes with any insert, delete or rotation: rotations
/// set every key's `role_since` of the region, so the sum moves even when the count does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DkimKeysFingerprint {
    pub count: i64,
    pub role_since_sum: i64,
}

impl Store {
    /// See `DkimKeysFingerprint`; one aggregate row, cheap enough to ask every second.
    pub async fn dkim_keys_fingerprint(&self) -> Result<DkimKeysFingerprint, StoreError> {
        // Modulo a million keeps the sum inside BIGINT for any table this service holds.
        let row = sqlx::query(
            "SELECT COUNT(*) AS keys, \
             CAST(COALESCE(SUM(role_since % 1000000), 0) AS BIGINT) AS role_since_sum \
             FROM dkim_keys",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(DkimKeysFingerprint {
            count: row.int("keys")?,
            role_since_sum: row.int("role_since_sum")?,
        })
    }

    /// The domain's keys, by region and position.
    pub async fn dkim_keys(&self, domain_id: DomainId) -> Result<Vec<DkimKey>, StoreError> {
        Ok(self
            .dkim_keys_of(&[domain_id])
            .await?
            .remove(&domain_id)
            .unwrap_or_default())
    }

    /// The keys of several domains at once (each domain's by region, then position).
    pub async fn dkim_keys_of(
        &self,
        ids: &[DomainId],
    ) -> Result<HashMap<DomainId, Vec<DkimKey>>, StoreError> {
        self.fetch_by_domain(
            concat!(
                "SELECT ",
                dkim_columns!(),
                " FROM dkim_keys WHERE domain_id IN (#IDS) ORDER BY region, position"
            ),
            ids,
            DkimKey::from_row,
        )
        .await
    }

    /// The key published under `selector`, whatever its role.
    pub async fn dkim_key_by_selector(
        &self,
        selector: &str,
    ) -> Result<Option<DkimKey>, StoreError> {
        self.fetch_optional_as(DkimKey::select("WHERE selector = $1").bind(selector))
            .await
    }

    /// Every key of a region, by selector: the region's zone.
    pub async fn dkim_keys_in_region(&self, region: &str) -> Result<Vec<DkimKey>, StoreError> {
        self.fetch_all_as(DkimKey::select("WHERE region = $1 ORDER BY selector").bind(region))
            .await
    }

    /// The key that signs the domain's mail in `region`, with its sealed private half.
    pub async fn signing_dkim_key(
        &self,
        domain_id: DomainId,
        region: &str,
    ) -> Result<Option<SealedDkimKey>, StoreError> {
        let query = SealedDkimKey::select("WHERE domain_id = $1 AND region = $2 AND role = $3")
            .bind(domain_id.to_string())
            .bind(region)
            .bind(DkimRole::Signing.as_str());
        self.fetch_optional_as(query).await
    }

    /// Moves the roles of the domain's keys in `region` one step (waiting signs, signing
    /// retires) and gives the retired slot `fresh` material, in one transaction with
    /// `activity`. Returns the region's keys after; none when the domain has no keys there.
    pub async fn rotate_dkim_keys(
        &self,
        domain_id: DomainId,
        region: &str,
        fresh: &NewKeyMaterial,
        now: OffsetDateTime,
        activity: &Activity,
    ) -> Result<Vec<DkimKey>, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Serialises rotations of one domain on both backends.
        let lock = sqlx::query("UPDATE email_domains SET updated_at = updated_at WHERE id = $1")
            .bind(domain_id.to_string());
        if !changed(&mut tx, lock).await? {
            return Ok(Vec::new());
        }
        let keys = region_keys(&mut tx, domain_id, region).await?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        for key in &keys {
            let role = key.role.rotated();
            if key.role == DkimRole::Retired {
                sqlx::query(
                    "UPDATE dkim_keys SET role = $1, role_since = $2, algorithm = $3, \
                     public_key = $4, sealed_private_key = $5, created_at = $2 \
                     WHERE domain_id = $6 AND region = $7 AND position = $8",
                )
                .bind(role.as_str())
                .bind(millis(now))
                .bind(fresh.algorithm.as_str())
                .bind(&fresh.public_key)
                .bind(&fresh.sealed_private_key)
                .bind(domain_id.to_string())
                .bind(region)
                .bind(i64::from(key.position))
                .execute(&mut *tx)
                .await?;
            } else {
                sqlx::query(
                    "UPDATE dkim_keys SET role = $1, role_since = $2 \
                     WHERE domain_id = $3 AND region = $4 AND position = $5",
                )
                .bind(role.as_str())
                .bind(millis(now))
                .bind(domain_id.to_string())
                .bind(region)
                .bind(i64::from(key.position))
                .execute(&mut *tx)
                .await?;
            }
        }
        insert_activity(&mut tx, activity).await?;
        let keys = region_keys(&mut tx, domain_id, region).await?;
        tx.commit().await?;
        Ok(keys)
    }

    /// DKIM records that have no key behind them (domains created before keys existed).
    pub async fn keyless_selectors(&self) -> Result<Vec<KeylessSelector>, StoreError> {
        let rows = sqlx::query(
            "SELECT r.domain_id, r.region, r.position, r.record_value FROM dns_records r \
             LEFT JOIN dkim_keys k ON k.domain_id = r.domain_id AND k.region = r.region \
             AND k.position = r.position \
             WHERE r.record = 'DKIM' AND k.domain_id IS NULL ORDER BY r.domain_id, r.region, r.position",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let value = row.text("record_value")?;
                Ok(KeylessSelector {
                    domain_id: row.parsed("domain_id")?,
                    region: row.text("region")?,
                    position: position(row.int("position")?)?,
                    selector: value.split('.').next().unwrap_or_default().to_owned(),
                })
            })
            .collect()
    }

    /// Stores keys unless their slot already has one (another replica may have filled it).
    pub async fn insert_missing_dkim_keys(&self, keys: &[SealedDkimKey]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        insert_dkim_keys(&mut tx, keys, true).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Inserts keys in the caller's transaction; with `skip_taken`, a slot that already has a key
/// keeps it.
pub(super) async fn insert_dkim_keys(
    tx: &mut Tx<'_>,
    keys: &[SealedDkimKey],
    skip_taken: bool,
) -> Result<(), StoreError> {
    let sql = if skip_taken {
        "INSERT INTO dkim_keys (domain_id, region, position, selector, algorithm, public_key, \
         sealed_private_key, role, role_since, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING"
    } else {
        "INSERT INTO dkim_keys (domain_id, region, position, selector, algorithm, public_key, \
         sealed_private_key, role, role_since, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    };
    for SealedDkimKey {
        key,
        sealed_private_key,
    } in keys
    {
        sqlx::query(sql)
            .bind(key.domain_id.to_string())
            .bind(&key.region)
            .bind(i64::from(key.position))
            .bind(&key.selector)
            .bind(key.algorithm.as_str())
            .bind(&key.public_key)
            .bind(sealed_private_key)
            .bind(key.role.as_str())
            .bind(millis(key.role_since))
            .bind(millis(key.created_at))
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

async fn region_keys(
    tx: &mut Tx<'_>,
    domain_id: DomainId,
    region: &str,
) -> Result<Vec<DkimKey>, StoreError> {
    let rows = DkimKey::select("WHERE domain_id = $1 AND region = $2 ORDER BY position")
        .bind(domain_id.to_string())
        .bind(region)
        .fetch_all(&mut **tx)
        .await?;
    rows.iter().map(DkimKey::from_row).collect()
}

fn position(stored: i64) -> Result<u8, StoreError> {
    u8::try_from(stored).map_err(|e| StoreError::Corrupt {
        column: "position",
        reason: e.to_string(),
    })
}

impl FromRow for DkimKey {
    const SELECT: &'static str = concat!("SELECT ", dkim_columns!(), " FROM dkim_keys");

    fn from_row(row: &AnyRow) -> Result<Self, StoreError> {
        Ok(DkimKey {
            domain_id: row.parsed("domain_id")?,
            region: row.text("region")?,
            position: position(row.int("position")?)?,
            selector: row.text("selector")?,
            algorithm: row.parsed("algorithm")?,
            public_key: row.text("public_key")?,
            role: row.parsed("role")?,
            role_since: row.time("role_since")?,
            created_at: row.time("created_at")?,
        })
    }
}

impl FromRow for SealedDkimKey {
    const SELECT: &'static str = concat!(
        "SELECT ",
        dkim_columns!(),
        ", sealed_private_key FROM dkim_keys"
    );

    fn from_row(row: &AnyRow) -> Result<Self, StoreError> {
        Ok(SealedDkimKey {
            key: DkimKey::from_row(row)?,
            sealed_private_key: row.text("sealed_private_key")?,
        })
    }
}
