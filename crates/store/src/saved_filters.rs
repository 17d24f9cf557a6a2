//! Named filters (`saved_filters`): an expression saved under a name by a console or the CLI,
//! seen by every console and command of the database. The expression is stored as typed;
//! whoever saves it checks it parses ([`crate::model::filter::parse`]).

use super::{Result, Store};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct SavedFilter {
    pub name: String,
    pub expression: String,
    /// `console` or `cli`.
    pub saved_by: String,
    pub saved_at: String,
}

impl Store {
    /// Saves `expression` as `name`, replacing a filter of that name. Returns whether one
    /// was replaced.
    pub async fn save_filter(&self, name: &str, expression: &str, by: &str) -> Result<bool> {
        let mut tx = self.write().await?;
        let replaced = sqlx::query("DELETE FROM saved_filters WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
        sqlx::query(
            "INSERT INTO saved_filters (name, expression, saved_by, saved_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(name)
        .bind(expression)
        .bind(by)
        .bind(tx.now())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(replaced)
    }

    /// Every saved filter, by name.
    pub async fn saved_filters(&self) -> Result<Vec<SavedFilter>> {
        Ok(sqlx::query_as(
            "SELECT name, expression, saved_by, saved_at FROM saved_filters ORDER BY name",
        )
        .fetch_all(self.reader())
        .await?)
    }

    /// Removes the filter `name`; false if there was none.
    pub async fn delete_filter(&self, name: &str) -> Result<bool> {
        let mut tx = self.write().await?;
        let deleted = sqlx::query("DELETE FROM saved_filters WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
        tx.commit().await?;
        Ok(deleted)
    }
}
