//! Populations. Every write locks its environment's row first, so that "at most one default",
//! "names are unique" and "at least one population" hold under concurrent writes on both
//! backends.

use sqlx::{Row, any::AnyRow};

use super::{Child, FromRow, RowExt, Store, StoreError, Tx, commit_recorded, count, millis};
use crate::domain::{Activity, EnvironmentId, Population, PopulationFields, PopulationId, now};

macro_rules! population_columns {
    () => {
        "id, environment_id, name, description, is_default, alternative_identifiers, \
         preferred_language, password_policy_id, theme_id, created_at, updated_at"
    };
}

const INSERT_MISSING_DEFAULT: &str = concat!(
    "INSERT INTO populations (",
    population_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING"
);

/// Why a population write was refused.
#[derive(Debug, thiserror::Error)]
pub enum PopulationError {
    #[error("no such population (or environment)")]
    NotFound,
    #[error("another population of the environment has this name")]
    DuplicateName,
    #[error("the default population cannot be deleted")]
    IsDefault,
    #[error("an environment keeps at least one population")]
    LastPopulation,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Store {
    /// Inserts (`new`) or rewrites a population; when it is the default, the environment's
    /// previous default stops being one in the same transaction.
    pub async fn save_population(
        &self,
        population: &Population,
        new: bool,
        activity: &Activity,
    ) -> Result<(), PopulationError> {
        let environment = population.environment_id.to_string();
        let mut tx = self
            .begin_locked(population.environment_id, PopulationError::NotFound)
            .await?;
        let query = sqlx::query(
            "SELECT COUNT(*) AS n FROM populations \
             WHERE environment_id = $1 AND name = $2 AND id <> $3",
        )
        .bind(&environment)
        .bind(&population.fields.name)
        .bind(population.id.to_string());
        let taken = count(&mut tx, query).await?;
        if taken > 0 {
            return Err(PopulationError::DuplicateName);
        }
        if population.is_default {
            sqlx::query(
                "UPDATE populations SET is_default = 0, updated_at = $1 \
                 WHERE environment_id = $2 AND is_default = 1 AND id <> $3",
            )
            .bind(millis(population.updated_at))
            .bind(&environment)
            .bind(population.id.to_string())
            .execute(&mut *tx)
            .await?;
        }
        if new {
            insert_population(&mut tx, population).await?;
        } else if !update_population(&mut tx, population).await? {
            return Err(PopulationError::NotFound);
        }
        commit_recorded(tx, activity).await?;
        Ok(())
    }

    /// Deletes a population that is neither the default nor the environment's last one.
    pub async fn delete_population(
        &self,
        population: &Population,
        activity: &Activity,
    ) -> Result<(), PopulationError> {
        let environment = population.environment_id.to_string();
        let mut tx = self
            .begin_locked(population.environment_id, PopulationError::NotFound)
            .await?;
        let row = sqlx::query(
            "SELECT is_default, (SELECT COUNT(*) FROM populations WHERE environment_id = $1) AS n \
             FROM populations WHERE id = $2 AND environment_id = $1",
        )
        .bind(&environment)
        .bind(population.id.to_string())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(PopulationError::NotFound)?;
        if row.int("is_default")? != 0 {
            return Err(PopulationError::IsDefault);
        }
        if row.int("n")? <= 1 {
            return Err(PopulationError::LastPopulation);
        }
        sqlx::query("DELETE FROM populations WHERE id = $1")
            .bind(population.id.to_string())
            .execute(&mut *tx)
            .await?;
        commit_recorded(tx, activity).await?;
        Ok(())
    }

    /// Gives every environment without a population (those made before populations existed)
    /// its default one; returns how many it made. Safe to run from several replicas at once:
    /// the unique index on defaults turns a second insert into nothing.
    pub async fn create_missing_default_populations(&self) -> Result<u64, StoreError> {
        let rows = sqlx::query(
            "SELECT id FROM environments e \
             WHERE NOT EXISTS (SELECT 1 FROM populations p WHERE p.environment_id = e.id)",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut made = 0;
        for row in &rows {
            let population = Population::initial(row.parsed("id")?, now());
            made += bind_population(INSERT_MISSING_DEFAULT, &population)
                .execute(&self.pool)
                .await?
                .rows_affected();
        }
        Ok(made)
    }
}

const INSERT_POPULATION: &str = concat!(
    "INSERT INTO populations (",
    population_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
);

pub(super) async fn insert_population(
    tx: &mut Tx<'_>,
    population: &Population,
) -> Result<(), StoreError> {
    bind_population(INSERT_POPULATION, population)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// `sql` bound to every column of `population`, in `population_columns!` order.
fn bind_population<'q>(sql: &'static str, population: &'q Population) -> super::Query<'q> {
    let fields = &population.fields;
    sqlx::query(sql)
        .bind(population.id.to_string())
        .bind(population.environment_id.to_string())
        .bind(&fields.name)
        .bind(&fields.description)
        .bind(i64::from(population.is_default))
        .bind(alternative_identifiers(fields))
        .bind(&fields.preferred_language)
        .bind(&fields.password_policy_id)
        .bind(&fields.theme_id)
        .bind(millis(population.created_at))
        .bind(millis(population.updated_at))
}

/// Every column but the two that name the row (`$1`, `$2`) set from `population`; `created_at`
/// (`$10`) is set to itself.
const UPDATE_POPULATION: &str = "UPDATE populations SET name = $3, description = $4, \
     is_default = $5, alternative_identifiers = $6, preferred_language = $7, \
     password_policy_id = $8, theme_id = $9, created_at = $10, updated_at = $11 \
     WHERE id = $1 AND environment_id = $2";

async fn update_population(tx: &mut Tx<'_>, population: &Population) -> Result<bool, StoreError> {
    let updated = bind_population(UPDATE_POPULATION, population)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    Ok(updated > 0)
}

fn alternative_identifiers(fields: &PopulationFields) -> Option<String> {
    fields
        .alternative_identifiers
        .as_ref()
        .map(|ids| serde_json::Value::from(ids.clone()).to_string())
}

impl FromRow for Population {
    const SELECT: &'static str = concat!("SELECT ", population_columns!(), " FROM populations");

    fn from_row(row: &AnyRow) -> Result<Self, StoreError> {
        let alternative_identifiers = row
            .try_get::<Option<String>, _>("alternative_identifiers")?
            .map(|text| {
                serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
                    column: "alternative_identifiers",
                    reason: e.to_string(),
                })
            })
            .transpose()?;
        Ok(Population {
            id: row.parsed("id")?,
            environment_id: row.parsed("environment_id")?,
            is_default: row.int("is_default")? != 0,
            fields: PopulationFields {
                name: row.text("name")?,
                description: row.try_get("description")?,
                alternative_identifiers,
                preferred_language: row.try_get("preferred_language")?,
                password_policy_id: row.try_get("password_policy_id")?,
                theme_id: row.try_get("theme_id")?,
            },
            created_at: row.time("created_at")?,
            updated_at: row.time("updated_at")?,
        })
    }
}

impl Child for Population {
    type Parent = EnvironmentId;
    type Id = PopulationId;
}
