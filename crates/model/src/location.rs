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

/// A database URL fit to print: the password (if any) becomes `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_string();
    };
    let user = userinfo.split(':').next().unwrap_or("");
    let tail = redact_query_password(tail);
    if userinfo.contains(':') {
        format!("{scheme}://{user}:***@{host}{tail}")
    } else {
        format!("{scheme}://{user}@{host}{tail}")
    }
}

fn redact_query_password(tail: &str) -> String {
    let Some((path, query)) = tail.split_once('?') else {
        return tail.to_string();
    };
    let parts: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
            _ => kv.to_string(),
        })
        .collect();
    format!("{path}?{}", parts.join("&"))
}
