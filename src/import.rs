//! Contacts import from CSV: a header row, `phone` required, `name` and `extension`
//! optional, every other column kept as the contact's variables (sent to the assistant as
//! `variableValues`). Bad rows are reported with their line and reason and skipped; good rows
//! are imported in one transaction (all or nothing on an I/O or database error); phone numbers
//! are normalised to E.164; re-importing adds nothing twice.

use std::io::Read;

use crate::store::contacts::NewContact;
use crate::store::{Store, StoreError};

/// Rows buffered before they go to the database.
const BATCH: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the CSV has no `phone` column (columns found: {0})")]
    NoPhoneColumn(String),
    #[error("cannot read the CSV: {0}")]
    Read(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedRow {
    pub line: u64,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub imported: u64,
    pub duplicates: u64,
    pub rejected: Vec<RejectedRow>,
    /// Rows read (good, duplicate or rejected).
    pub rows: u64,
}

/// Normalises a phone number to E.164 (`+` and 8 to 15 digits, no leading 0), or says why
/// it cannot. Spaces, dashes, dots, slashes and parentheses are dropped; `00` means `+`;
/// a number with no country code gets `default_country_code` (its trunk 0 dropped) if set.
pub fn normalize_phone(raw: &str, default_country_code: Option<&str>) -> Result<String, String> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err("phone is empty".into());
    }
    let mut digits = String::with_capacity(trimmed.len());
    let mut plus = false;
    for (i, c) in trimmed.chars().enumerate() {
        match c {
            '0'..='9' => digits.push(c),
            '+' if i == 0 => plus = true,
            ' ' | '-' | '.' | '(' | ')' | '/' | '\u{a0}' => {}
            _ => {
                return Err(format!(
                    "phone {trimmed:?} has a character that is not part of a number: {c:?}"
                ));
            }
        }
    }
    let international = if plus {
        digits
    } else if let Some(rest) = digits.strip_prefix("00") {
        rest.to_string()
    } else if let Some(cc) = default_country_code {
        let national = digits.strip_prefix('0').unwrap_or(&digits);
        format!("{cc}{national}")
    } else {
        return Err(format!(
            "phone {trimmed:?} has no country code: write it as +<country><number>, or set import.default_country_code"
        ));
    };
    if international.starts_with('0') {
        return Err(format!(
            "phone {trimmed:?}: a country code cannot start with 0"
        ));
    }
    if !(8..=15).contains(&international.len()) {
        return Err(format!(
            "phone {trimmed:?} has {} digits with its country code; E.164 allows 8 to 15",
            international.len()
        ));
    }
    Ok(format!("+{international}"))
}

/// Imports contacts from `reader` into a campaign. `progress` is called with the rows read
/// so far every `BATCH` rows, for long imports.
pub async fn import_contacts(
    store: &Store,
    campaign_id: i64,
    reader: impl Read,
    default_country_code: Option<&str>,
    mut progress: impl FnMut(u64),
) -> Result<ImportReport, ImportError> {
    let mut csv = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(reader);
    let headers: Vec<String> = csv
        .headers()
        .map_err(|e| ImportError::Read(e.to_string()))?
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_ascii_lowercase())
        .collect();
    let column = |name: &str| headers.iter().position(|h| h == name);
    let phone_col =
        column("phone").ok_or_else(|| ImportError::NoPhoneColumn(headers.join(", ")))?;
    let name_col = column("name");
    let ext_col = column("extension");

    let mut report = ImportReport::default();
    let mut session = store.import_session(campaign_id).await?;
    let mut batch: Vec<NewContact> = Vec::with_capacity(BATCH);
    let mut record = csv::StringRecord::new();
    loop {
        match csv.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                // A malformed row (bad UTF-8, broken quoting): report it and go on if the
                // reader can; an I/O error ends the import with nothing written.
                let line = e.position().map(|p| p.line()).unwrap_or(report.rows + 2);
                if let csv::ErrorKind::Io(io) = e.kind() {
                    return Err(ImportError::Read(io.to_string()));
                }
                report.rows += 1;
                report.rejected.push(RejectedRow {
                    line,
                    reason: format!("unreadable row: {e}"),
                });
                continue;
            }
        }
        report.rows += 1;
        let line = record
            .position()
            .map(|p| p.line())
            .unwrap_or(report.rows + 1);
        match contact_from_row(
            &record,
            &headers,
            phone_col,
            name_col,
            ext_col,
            default_country_code,
        ) {
            Ok(contact) => batch.push(contact),
            Err(reason) => report.rejected.push(RejectedRow { line, reason }),
        }
        if batch.len() >= BATCH {
            let n = batch.len() as u64;
            let inserted = session.add(&batch).await?;
            report.imported += inserted;
            report.duplicates += n - inserted;
            batch.clear();
            progress(report.rows);
        }
    }
    let n = batch.len() as u64;
    let inserted = session.add(&batch).await?;
    report.imported += inserted;
    report.duplicates += n - inserted;
    session.commit().await?;
    Ok(report)
}

fn contact_from_row(
    record: &csv::StringRecord,
    headers: &[String],
    phone_col: usize,
    name_col: Option<usize>,
    ext_col: Option<usize>,
    default_country_code: Option<&str>,
) -> Result<NewContact, String> {
    if record.len() != headers.len() {
        return Err(format!(
            "has {} fields, the header has {}",
            record.len(),
            headers.len()
        ));
    }
    let phone = normalize_phone(record.get(phone_col).unwrap_or(""), default_country_code)?;
    let field = |col: Option<usize>| {
        col.and_then(|c| record.get(c))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let name = field(name_col);
    if let Some(n) = &name
        && n.chars().count() > 200
    {
        return Err("name is longer than 200 characters".into());
    }
    let extension = field(ext_col);
    if let Some(ext) = &extension
        && !(ext.len() <= 10 && ext.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!("extension {ext:?} must be up to 10 digits"));
    }
    let mut variables = serde_json::Map::new();
    for (i, header) in headers.iter().enumerate() {
        if Some(i) == name_col || Some(i) == ext_col || i == phone_col || header.is_empty() {
            continue;
        }
        if let Some(value) = record.get(i) {
            variables.insert(header.clone(), serde_json::Value::String(value.to_string()));
        }
    }
    Ok(NewContact {
        name,
        phone,
        extension,
        variables: serde_json::Value::Object(variables).to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_normalise_to_e164() {
        assert_eq!(
            normalize_phone("+1 (415) 555-0100", None).unwrap(),
            "+14155550100"
        );
        assert_eq!(
            normalize_phone("0044 20 7946 0958", None).unwrap(),
            "+442079460958"
        );
        assert_eq!(
            normalize_phone("020 7946 0958", Some("44")).unwrap(),
            "+442079460958"
        );
        assert_eq!(
            normalize_phone("415.555.0100", Some("1")).unwrap(),
            "+14155550100"
        );
    }

    #[test]
    fn bad_phones_say_why() {
        assert!(normalize_phone("", None).unwrap_err().contains("empty"));
        assert!(
            normalize_phone("4155550100", None)
                .unwrap_err()
                .contains("country code")
        );
        assert!(
            normalize_phone("+1 415 CALL NOW", None)
                .unwrap_err()
                .contains("character")
        );
        assert!(
            normalize_phone("+1234", None)
                .unwrap_err()
                .contains("8 to 15")
        );
        assert!(
            normalize_phone("+1234567890123456", None)
                .unwrap_err()
                .contains("8 to 15")
        );
        assert!(
            normalize_phone("+0123456789", None)
                .unwrap_err()
                .contains("start with 0")
        );
        assert!(
            normalize_phone("1+415555", None)
                .unwrap_err()
                .contains("character")
        );
    }

    #[tokio::test]
    async fn import_reports_bad_rows_and_skips_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in(dir.path()).await.unwrap();
        let c = store.create_campaign("c", "a", "p").await.unwrap();
        let csv = "name,phone,extension,city\n\
                   Ada,+14155550100,,Paris\n\
                   Bob,not a number,,Rome\n\
                   Cy,+14155550101,12345678901,Oslo\n\
                   Di,+14155550102,7,Lima,extra\n\
                   Ed,+1 415 555 0100,,Paris\n\
                   Flo,+442079460958,42,London\n";
        let report = import_contacts(&store, c.id, csv.as_bytes(), None, |_| {})
            .await
            .unwrap();
        assert_eq!(report.imported, 2);
        assert_eq!(report.duplicates, 1, "Ed has Ada's number");
        let lines: Vec<u64> = report.rejected.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![3, 4, 5]);
        assert!(report.rejected[1].reason.contains("extension"));
        assert!(report.rejected[2].reason.contains("fields"));
        let again = import_contacts(&store, c.id, csv.as_bytes(), None, |_| {})
            .await
            .unwrap();
        assert_eq!(again.imported, 0, "re-import adds nothing");
        assert_eq!(again.duplicates, 3);
        assert_eq!(store.contact_count(c.id).await.unwrap(), 2);
        let first = store.contact(1).await.unwrap();
        assert_eq!(first.variables, r#"{"city":"Paris"}"#);
    }

    #[tokio::test]
    async fn a_file_without_phone_column_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in(dir.path()).await.unwrap();
        let c = store.create_campaign("c", "a", "p").await.unwrap();
        let err = import_contacts(
            &store,
            c.id,
            "name,tel\nA,+14155550100\n".as_bytes(),
            None,
            |_| {},
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("no `phone` column"), "{err}");
        assert_eq!(store.contact_count(c.id).await.unwrap(), 0);
    }
}
