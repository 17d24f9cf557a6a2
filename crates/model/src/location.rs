//! Where the state lives, and how its address is printed (never with a password).

use std::path::PathBuf;

/// Where the state lives: a SQLite file, or a PostgreSQL server (`postgres://…`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Location {
    /// A `postgres://` or `postgresql://` URL selects PostgreSQL; a `sqlite:` URL or a plain
    /// path keeps SQLite.
    pub fn parse(text: &str) -> Location {
        let t = text.trim();
        if t.starts_with("postgres://") || t.starts_with("postgresql://") {
            return Location::Postgres(t.to_string());
        }
        let path = t
            .strip_prefix("sqlite://")
            .or_else(|| t.strip_prefix("sqlite:"))
            .unwrap_or(t);
        let path = path.split('?').next().unwrap_or(path);
        Location::Sqlite(PathBuf::from(path))
    }

    /// For messages: the path, or the URL with any password replaced by `***`.
    pub fn display(&self) -> String {
        match self {
            Location::Sqlite(p) => p.display().to_string(),
            Location::Postgres(url) => redact_url(url),
        }
    }
}

/// A database URL fit to print: the password (if any) becomes `***`, in the authority and in
/// a `password=` query parameter. Text that is not a URL is cut at its `@`.
pub fn redact_url(text: &str) -> String {
    let Ok(mut url) = url::Url::parse(text) else {
        // Not a URL: whatever precedes an `@` may be credentials.
        return match text.rsplit_once('@') {
            Some((_, host)) => format!("***@{host}"),
            None => text.to_string(),
        };
    };
    if url.password().is_some() {
        // Fails only for URLs that cannot have credentials, which then have none.
        let _ = url.set_password(Some("***"));
    }
    let has_password = url
        .query_pairs()
        .any(|(k, _)| k.eq_ignore_ascii_case("password"));
    if has_password {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if k.eq_ignore_ascii_case("password") {
                    "***".to_string()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    // `***` is percent-encoded in the authority; it is shown as written.
    url.as_str().replace("%2A%2A%2A", "***")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_print() {
        for (url, want) in [
            (
                "postgres://sb:hunter2@db.example:5432/switchboard",
                "postgres://sb:***@db.example:5432/switchboard",
            ),
            (
                "postgres://sb@db/x?sslmode=require&password=hunter2",
                "postgres://sb@db/x?sslmode=require&password=***",
            ),
            ("postgres://db/x", "postgres://db/x"),
            ("postgresql://u:p%40ss@h/d", "postgresql://u:***@h/d"),
            ("not a url u:hunter2@host", "***@host"),
        ] {
            let shown = redact_url(url);
            assert_eq!(shown, want, "{url}");
            assert!(!shown.contains("hunter2") && !shown.contains("p%40ss"));
        }
    }

    #[test]
    fn a_location_prints_without_its_password() {
        let l = Location::parse("postgres://a:secret@h/db");
        assert_eq!(l, Location::Postgres("postgres://a:secret@h/db".into()));
        assert_eq!(l.display(), "postgres://a:***@h/db");
        assert_eq!(
            Location::parse("sqlite:state.db?mode=rwc"),
            Location::Sqlite("state.db".into())
        );
    }
}
