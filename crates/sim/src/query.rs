//! GET /call query parameters (Vapi's list filters).

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

use super::validate::Invalid;

const LIST_KEYS: &[&str] = &[
    "id",
    "assistantId",
    "phoneNumberId",
    "limit",
    "createdAtGt",
    "createdAtLt",
    "createdAtGe",
    "createdAtLe",
    "updatedAtGt",
    "updatedAtLt",
    "updatedAtGe",
    "updatedAtLe",
];
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

/// Open/closed bounds on one timestamp.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Bounds {
    pub gt: Option<DateTime<Utc>>,
    pub lt: Option<DateTime<Utc>>,
    pub ge: Option<DateTime<Utc>>,
    pub le: Option<DateTime<Utc>>,
}

impl Bounds {
    pub fn admits(&self, t: DateTime<Utc>) -> bool {
        self.gt.is_none_or(|b| t > b)
            && self.lt.is_none_or(|b| t < b)
            && self.ge.is_none_or(|b| t >= b)
            && self.le.is_none_or(|b| t <= b)
    }
}

/// A parsed GET /call query.
#[derive(Clone, Debug, PartialEq)]
pub struct ListFilter {
    pub id: Option<String>,
    pub assistant_id: Option<String>,
    pub phone_number_id: Option<String>,
    pub limit: usize,
    pub created: Bounds,
    pub updated: Bounds,
}

impl ListFilter {
    /// Parse like Vapi: unknown keys, bad dates and out-of-range limits are 400s
    /// with an array message; all problems are reported at once.
    pub fn parse(params: &HashMap<String, String>) -> Result<ListFilter, Invalid> {
        let mut errors = Vec::new();
        let mut keys: Vec<&String> = params.keys().collect();
        keys.sort();
        for key in keys
            .into_iter()
            .filter(|k| !LIST_KEYS.contains(&k.as_str()))
        {
            errors.push(format!("property {key} should not exist"));
        }
        let limit = match params.get("limit") {
            None => DEFAULT_LIMIT,
            Some(raw) => match raw.trim().parse::<usize>() {
                Ok(n) if n <= MAX_LIMIT => n,
                Ok(_) => {
                    errors.push(format!("limit must not be greater than {MAX_LIMIT}"));
                    0
                }
                Err(_) => {
                    errors.push(
                        "limit must be a number conforming to the specified constraints".into(),
                    );
                    0
                }
            },
        };
        let mut date = |key: &str| -> Option<DateTime<Utc>> {
            let raw = params.get(key)?;
            let parsed = parse_date(raw);
            if parsed.is_none() {
                errors.push(format!("{key} must be a valid ISO 8601 date string"));
            }
            parsed
        };
        let created = Bounds {
            gt: date("createdAtGt"),
            lt: date("createdAtLt"),
            ge: date("createdAtGe"),
            le: date("createdAtLe"),
        };
        let updated = Bounds {
            gt: date("updatedAtGt"),
            lt: date("updatedAtLt"),
            ge: date("updatedAtGe"),
            le: date("updatedAtLe"),
        };
        if !errors.is_empty() {
            return Err(Invalid::Fields(errors));
        }
        Ok(ListFilter {
            id: params.get("id").cloned(),
            assistant_id: params.get("assistantId").cloned(),
            phone_number_id: params.get("phoneNumberId").cloned(),
            limit,
            created,
            updated,
        })
    }
}

/// ISO 8601: full RFC 3339, or a zone-less date-time / plain date taken as UTC.
pub fn parse_date(raw: &str) -> Option<DateTime<Utc>> {
    let raw = raw.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%.f") {
        return Some(t.and_utc());
    }
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults() {
        let f = ListFilter::parse(&HashMap::new()).unwrap();
        assert_eq!(f.limit, 100);
        assert_eq!(f.created, Bounds::default());
    }

    #[test]
    fn dates_parse_in_several_forms() {
        for raw in [
            "2026-11-24T10:00:00.123Z",
            "2026-11-24T11:00:00.123+01:00",
            "2026-11-24T10:00:00.123",
        ] {
            let t = parse_date(raw).unwrap();
            assert_eq!(t.to_rfc3339(), "2026-11-24T10:00:00.123+00:00", "{raw}");
        }
        assert!(parse_date("2026-11-24T10:00:00").is_some());
        assert!(parse_date("2026-11-24").is_some());
        assert!(parse_date("yesterday").is_none());
    }

    #[test]
    fn errors_are_collected() {
        let err = ListFilter::parse(&params(&[
            ("createdAtGe", "nope"),
            ("limit", "1001"),
            ("sort", "asc"),
        ]))
        .unwrap_err();
        assert_eq!(
            err,
            Invalid::Fields(vec![
                "property sort should not exist".into(),
                "limit must not be greater than 1000".into(),
                "createdAtGe must be a valid ISO 8601 date string".into(),
            ])
        );
    }

    #[test]
    fn bounds_are_strict_or_inclusive() {
        let t = parse_date("2026-11-24T10:00:00.000Z").unwrap();
        let inclusive = Bounds {
            ge: Some(t),
            le: Some(t),
            ..Bounds::default()
        };
        let strict = Bounds {
            gt: Some(t),
            ..Bounds::default()
        };
        assert!(inclusive.admits(t));
        assert!(!strict.admits(t));
    }
}
