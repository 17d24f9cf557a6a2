//! SQL built together with its binds. A placeholder is written by the call that binds its
//! value, so conditional filters can never put the two out of step, and what the backends
//! spell differently (case-insensitive LIKE, row locks, index hints, ownership) is a method
//! of [`Sql`] rather than a rewrite of finished text.

use sqlx::Any;
use sqlx::any::AnyArguments;
use sqlx::query::{QueryAs, QueryScalar};

use super::Backend;

/// One value bound to a placeholder.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Arg {
    Int(i64),
    Real(f64),
    Text(String),
}

impl From<f64> for Arg {
    fn from(v: f64) -> Arg {
        Arg::Real(v)
    }
}

impl From<i64> for Arg {
    fn from(v: i64) -> Arg {
        Arg::Int(v)
    }
}

impl From<&str> for Arg {
    fn from(v: &str) -> Arg {
        Arg::Text(v.to_string())
    }
}

impl From<String> for Arg {
    fn from(v: String) -> Arg {
        Arg::Text(v)
    }
}

impl From<&String> for Arg {
    fn from(v: &String) -> Arg {
        Arg::Text(v.clone())
    }
}

/// A statement being written for one backend: its text and the values of its placeholders,
/// in order.
#[derive(Debug, Clone)]
pub(crate) struct Sql {
    backend: Backend,
    text: String,
    args: Vec<Arg>,
}

impl Sql {
    pub fn new(backend: Backend) -> Sql {
        Sql {
            backend,
            text: String::with_capacity(256),
            args: Vec::new(),
        }
    }

    /// Appends literal SQL (never a value: values go through [`Sql::bind`]).
    pub fn push(&mut self, sql: &str) -> &mut Sql {
        self.text.push_str(sql);
        self
    }

    /// Appends a placeholder and binds `value` to it. SQLite takes `?` (it binds numbered
    /// parameters by name, one look-up each), PostgreSQL `$n`.
    pub fn bind(&mut self, value: impl Into<Arg>) -> &mut Sql {
        self.args.push(value.into());
        match self.backend {
            Backend::Sqlite => self.text.push('?'),
            Backend::Postgres => {
                self.text.push('$');
                self.text.push_str(&self.args.len().to_string());
            }
        }
        self
    }

    /// `(v1, v2, …)`, each bound. An empty list is `(NULL)`, which matches nothing.
    pub fn bind_list<T: Into<Arg>>(&mut self, values: impl IntoIterator<Item = T>) -> &mut Sql {
        self.push("(");
        let mut any = false;
        for value in values {
            if any {
                self.push(", ");
            }
            self.bind(value);
            any = true;
        }
        if !any {
            self.push("NULL");
        }
        self.push(")")
    }

    /// `column` contains `text`, ignoring ASCII case (SQLite's LIKE already does;
    /// PostgreSQL needs ILIKE), with `%`, `_` and `\` in `text` taken literally.
    pub fn contains(&mut self, column: &str, text: &str) -> &mut Sql {
        let escaped = text
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        self.push(column);
        self.push(match self.backend {
            Backend::Sqlite => " LIKE ",
            Backend::Postgres => " ILIKE ",
        });
        self.bind(format!("%{escaped}%"));
        self.push(" ESCAPE '\\'")
    }

    /// The text under `key` of the JSON object in `column` (NULL when absent): SQLite's
    /// `json_extract` with a quoted path, PostgreSQL's `->>`.
    pub fn json_text(&mut self, column: &str, key: &str) -> &mut Sql {
        match self.backend {
            Backend::Sqlite => {
                let quoted = key.replace('\\', "\\\\").replace('"', "\\\"");
                self.push("json_extract(").push(column).push(", ");
                self.bind(format!("$.\"{quoted}\""));
                self.push(")")
            }
            Backend::Postgres => {
                self.push("(CAST(").push(column).push(" AS json) ->> ");
                self.bind(key);
                self.push(")")
            }
        }
    }

    /// Locks the rows read against other engines' transactions (PostgreSQL); nothing on
    /// SQLite, where the single writer already serialises.
    pub fn for_update(&mut self) -> &mut Sql {
        match self.backend {
            Backend::Postgres => self.push(" FOR UPDATE"),
            Backend::Sqlite => self,
        }
    }

    /// Seconds from the stored time `start` to the stored time `end` (NULL when either is).
    pub fn seconds_between(&mut self, start: &str, end: &str) -> &mut Sql {
        match self.backend {
            Backend::Sqlite => self
                .push("((julianday(")
                .push(end)
                .push(") - julianday(")
                .push(start)
                .push(")) * 86400.0)"),
            Backend::Postgres => self
                .push("EXTRACT(EPOCH FROM (CAST(")
                .push(end)
                .push(" AS timestamptz) - CAST(")
                .push(start)
                .push(" AS timestamptz)))"),
        }
    }

    /// Locks the rows of `alias` that no other transaction holds and skips the rest, so
    /// engines claiming at once each take a different row (PostgreSQL; SQLite has one writer).
    pub fn for_update_skip_locked(&mut self, alias: &str) -> &mut Sql {
        match self.backend {
            Backend::Postgres => {
                self.push(" FOR UPDATE OF ");
                self.push(alias);
                self.push(" SKIP LOCKED")
            }
            Backend::Sqlite => self,
        }
    }

    /// SQLite's planner told which index to use; PostgreSQL picks it by itself.
    pub fn indexed_by(&mut self, index: &str) -> &mut Sql {
        match self.backend {
            Backend::Sqlite => {
                self.push(" INDEXED BY ");
                self.push(index)
            }
            Backend::Postgres => self,
        }
    }

    /// "Owned by `engine_id`": on PostgreSQL the rows whose `{alias}engine_id` it is; on
    /// SQLite every row (one engine owns the database).
    pub fn owned_by(&mut self, alias: &str, engine_id: &str) -> &mut Sql {
        match self.backend {
            Backend::Postgres => {
                self.push(alias);
                self.push("engine_id = ");
                self.bind(engine_id)
            }
            Backend::Sqlite => self.push("1 = 1"),
        }
    }

    /// The statement's text (for tests and logs; values are never in it).
    #[cfg(test)]
    pub fn text(&self) -> &str {
        &self.text
    }

    fn statement(&self) -> sqlx::AssertSqlSafe<String> {
        sqlx::AssertSqlSafe(self.text.clone())
    }

    pub fn query_as<O>(&self) -> QueryAs<'static, Any, O, AnyArguments>
    where
        O: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow>,
    {
        let mut query = sqlx::query_as(self.statement());
        for arg in &self.args {
            query = match arg {
                Arg::Int(v) => query.bind(*v),
                Arg::Real(v) => query.bind(*v),
                Arg::Text(v) => query.bind(v.clone()),
            };
        }
        query
    }

    pub fn query_scalar<O>(&self) -> QueryScalar<'static, Any, O, AnyArguments>
    where
        (O,): for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow>,
    {
        let mut query = sqlx::query_scalar(self.statement());
        for arg in &self.args {
            query = match arg {
                Arg::Int(v) => query.bind(*v),
                Arg::Real(v) => query.bind(*v),
                Arg::Text(v) => query.bind(v.clone()),
            };
        }
        query
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_follow_the_backend_and_stay_in_step_with_their_values() {
        for (backend, want) in [
            (Backend::Sqlite, "a = ? AND b IN (?, ?) AND c = ?"),
            (Backend::Postgres, "a = $1 AND b IN ($2, $3) AND c = $4"),
        ] {
            let mut sql = Sql::new(backend);
            sql.push("a = ").bind(1).push(" AND b IN ");
            sql.bind_list(["x", "y"]).push(" AND c = ").bind("z");
            assert_eq!(sql.text(), want);
            assert_eq!(
                sql.args,
                vec![
                    Arg::Int(1),
                    Arg::Text("x".into()),
                    Arg::Text("y".into()),
                    Arg::Text("z".into())
                ]
            );
        }
    }

    #[test]
    fn an_empty_list_matches_nothing() {
        let mut sql = Sql::new(Backend::Sqlite);
        sql.push("k.timezone IN ").bind_list(Vec::<String>::new());
        assert_eq!(sql.text(), "k.timezone IN (NULL)");
        assert!(sql.args.is_empty());
    }

    #[test]
    fn contains_escapes_the_pattern_and_is_case_insensitive_on_both_backends() {
        let mut lite = Sql::new(Backend::Sqlite);
        lite.contains("k.name", "50%_a\\b");
        assert_eq!(lite.text(), "k.name LIKE ? ESCAPE '\\'");
        assert_eq!(lite.args, vec![Arg::Text("%50\\%\\_a\\\\b%".into())]);
        let mut pg = Sql::new(Backend::Postgres);
        pg.contains("k.name", "x");
        assert_eq!(pg.text(), "k.name ILIKE $1 ESCAPE '\\'");
    }

    #[test]
    fn backend_clauses_are_methods() {
        let mut lite = Sql::new(Backend::Sqlite);
        lite.push("SELECT 1 FROM calls")
            .indexed_by("calls_active")
            .push(" WHERE ")
            .owned_by("c.", "e1")
            .for_update_skip_locked("k");
        assert_eq!(
            lite.text(),
            "SELECT 1 FROM calls INDEXED BY calls_active WHERE 1 = 1"
        );
        assert!(lite.args.is_empty());
        let mut pg = Sql::new(Backend::Postgres);
        pg.push("SELECT 1 FROM calls")
            .indexed_by("calls_active")
            .push(" WHERE ")
            .owned_by("c.", "e1")
            .for_update_skip_locked("k");
        assert_eq!(
            pg.text(),
            "SELECT 1 FROM calls WHERE c.engine_id = $1 FOR UPDATE OF k SKIP LOCKED"
        );
        assert_eq!(pg.args, vec![Arg::Text("e1".into())]);
    }
}
