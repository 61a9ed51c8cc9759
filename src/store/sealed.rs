//! Every column that holds values sealed with the master key, and the pass that re-seals them
//! under a new one (`trustmail secrets rotate-master-key`).
//!
//! Each column is walked in the order of a unique key, `RESEAL_BATCH` rows at a time, leaving out
//! in SQL the values already under the sealing key (so a run that was interrupted resumes where
//! it stopped). A batch is written in one transaction, each row only if it still holds what was
//! read: a running replica that rewrote it meanwhile keeps its value, for the next run.

use sqlx::any::AnyRow;

use super::{RowExt, Store, StoreError, outbox::SEALED_PREFIX};
use crate::secrets::{Binding, MasterKey};

/// Rows read, and re-sealed, per transaction.
pub const RESEAL_BATCH: usize = 100;
/// Unreadable rows named per column; the rest are only counted.
const UNREADABLE_NAMED: usize = 10;

/// A column of sealed values.
struct SealedColumn {
    table: &'static str,
    /// A unique text column that names the row and orders the pass.
    key: &'static str,
    column: &'static str,
    /// What a sealed value starts with: `sealed:` in `outbox.message`, whose rows from before
    /// sealing hold plain text.
    mark: &'static str,
    /// Further columns `binding` reads, each after a comma.
    reads: &'static str,
    binding: fn(&AnyRow) -> Result<Binding, StoreError>,
}

const SEALED_COLUMNS: [SealedColumn; 5] = [
    SealedColumn {
        table: "signing_keys",
        key: "kid",
        column: "sealed_private_key",
        mark: "",
        reads: "",
        binding: |row| Ok(Binding::token_signing_key(&row.text("kid")?)),
    },
    SealedColumn {
        table: "dkim_keys",
        key: "selector",
        column: "sealed_private_key",
        mark: "",
        reads: ", domain_id, region, public_key",
        binding: |row| {
            Ok(Binding::dkim_private_key(
                row.parsed("domain_id")?,
                &row.text("region")?,
                &row.text("public_key")?,
            ))
        },
    },
    SealedColumn {
        table: "outbox",
        key: "id",
        column: "message",
        mark: SEALED_PREFIX,
        reads: "",
        binding: |row| Ok(Binding::outbox_message(row.parsed("id")?)),
    },
    SealedColumn {
        table: "subscriptions",
        key: "id",
        column: "sealed_secret",
        mark: "",
        reads: "",
        binding: |row| Ok(Binding::subscription_secret(row.parsed("id")?)),
    },
    SealedColumn {
        table: "subscriptions",
        key: "id",
        column: "sealed_headers",
        mark: "",
        reads: "",
        binding: |row| Ok(Binding::subscription_headers(row.parsed("id")?)),
    },
];

/// What re-sealing did to one column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResealedColumn {
    pub table: &'static str,
    pub column: &'static str,
    /// Values now under the sealing key.
    pub resealed: u64,
    /// Rows rewritten by someone else (a running replica) between the read and the write:
    /// left as that writer left them, for the next run.
    pub changed_meanwhile: u64,
    /// Values that no loaded key opens, left as they are.
    pub unreadable: u64,
    /// The first of those: the row's key and why.
    pub unreadable_rows: Vec<(String, String)>,
}

impl Store {
    /// Re-seals every sealed value not yet under the sealing key of the store's master key,
    /// opening each with the key its id names (see `MasterKey::with_previous`).
    pub async fn reseal_all(&self) -> Result<Vec<ResealedColumn>, StoreError> {
        let key = self.master_key()?;
        let mut done = Vec::with_capacity(SEALED_COLUMNS.len());
        for column in &SEALED_COLUMNS {
            let outcome = self.reseal_column(key, column).await?;
            tracing::info!(
                table = outcome.table,
                column = outcome.column,
                resealed = outcome.resealed,
                changed_meanwhile = outcome.changed_meanwhile,
                unreadable = outcome.unreadable,
                "re-sealed a column under the new master key"
            );
            done.push(outcome);
        }
        Ok(done)
    }

    async fn reseal_column(
        &self,
        key: &MasterKey,
        sealed: &SealedColumn,
    ) -> Result<ResealedColumn, StoreError> {
        let SealedColumn {
            table,
            key: row_key,
            column,
            mark,
            reads,
            binding,
        } = *sealed;
        let current = format!("{mark}{}", key.current_prefix());
        // Names from `SEALED_COLUMNS` only; every value is bound. `substr` compares exactly
        // (SQLite's LIKE would ignore case).
        let select = format!(
            "SELECT {row_key}, {column} AS sealed{reads} FROM {table} \
             WHERE {row_key} > $1 AND substr({column}, 1, {}) = $2 \
             AND substr({column}, 1, {}) <> $3 ORDER BY {row_key} LIMIT {RESEAL_BATCH}",
            mark.chars().count(),
            current.chars().count(),
        );
        let update =
            format!("UPDATE {table} SET {column} = $1 WHERE {row_key} = $2 AND {column} = $3");
        let mut outcome = ResealedColumn {
            table,
            column,
            resealed: 0,
            changed_meanwhile: 0,
            unreadable: 0,
            unreadable_rows: Vec::new(),
        };
        let mut after = String::new();
        loop {
            let rows = sqlx::query(sqlx::AssertSqlSafe(select.clone()))
                .bind(&after)
                .bind(mark)
                .bind(&current)
                .fetch_all(&self.pool)
                .await?;
            let Some(last) = rows.last() else { break };
            after = last.text(row_key)?;
            let mut fresh = Vec::with_capacity(rows.len());
            for row in &rows {
                let name = row.text(row_key)?;
                let stored = row.text("sealed")?;
                let value = stored.strip_prefix(mark).unwrap_or(&stored);
                let resealed = binding(row).and_then(|binding| {
                    let plain = key.open(&binding, value)?;
                    Ok(key.seal(&binding, &plain)?)
                });
                match resealed {
                    Ok(resealed) => fresh.push((name, format!("{mark}{resealed}"), stored)),
                    Err(e) => {
                        outcome.unreadable += 1;
                        if outcome.unreadable_rows.len() < UNREADABLE_NAMED {
                            let why = crate::error_chain::ErrorChain(&e).to_string();
                            outcome.unreadable_rows.push((name, why));
                        }
                    }
                }
            }
            let mut tx = self.pool.begin().await?;
            for (name, resealed, stored) in &fresh {
                let written = sqlx::query(sqlx::AssertSqlSafe(update.clone()))
                    .bind(resealed)
                    .bind(name)
                    .bind(stored)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if written == 1 {
                    outcome.resealed += 1;
                } else {
                    outcome.changed_meanwhile += 1;
                }
            }
            tx.commit().await?;
            if rows.len() < RESEAL_BATCH {
                break;
            }
        }
        Ok(outcome)
    }
}
