//! Contacts import from CSV: a header row, `phone` required, `name` and `extension`
//! optional, every other column kept as the contact's variables (sent to the assistant as
//! `variableValues`). Bad rows are reported with their line and reason and skipped; good rows
//! are imported in one transaction (all or nothing on an I/O or database error); phone numbers
//! are normalised to E.164; re-importing adds nothing twice.

use std::io::Read;

use crate::config::ImportConfig;
use crate::store::contacts::{ImportSession, NewContact};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("campaign {0:?} is CANCELLED: contacts cannot be added to it (create a new campaign)")]
    Cancelled(String),
    #[error("the CSV has no `phone` column (columns found: {0})")]
    NoPhoneColumn(String),
    #[error("cannot read the CSV: {0}")]
    Read(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Stopped by a signal (its name) before the end: nothing of it was kept.
    #[error("{signal}: import stopped after {rows} rows read; none of its contacts were kept")]
    Interrupted { signal: &'static str, rows: u64 },
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
    /// Imported numbers outside the numbering plan's known ranges (possible, not verified).
    pub unverified: u64,
    /// Imported numbers already in E.164 whose country code and length were checked but not
    /// their range (the fast path; `import.strict` checks every range).
    pub length_checked_only: u64,
    /// The campaign was COMPLETED and is DIALING again for the new contacts.
    pub reopened: bool,
    /// Rows with no `timezone` column whose number does not tell its zone (a country
    /// spanning zones, a toll-free or split area code): they use the campaign's zone.
    pub zone_ambiguous: u64,
}

/// A phone number as imported: E.164, the extension written with it (`x123`, `ext. 123`), and
/// whether the numbering plan knows its range (libphonenumber's "valid": its metadata lags new
/// ranges, and fictional 555 numbers are not valid, so an unknown range is imported and
/// counted as unverified unless `import.strict` is set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneNumber {
    pub e164: String,
    pub extension: Option<String>,
    /// In the plan's known ranges; `None`: not checked (E.164 input on the fast path, whose
    /// country code and length were checked).
    pub verified: Option<bool>,
}

/// Normalises a phone number to E.164 with the numbering plans of libphonenumber (the
/// `phonenumber` crate): trunk prefixes and `(0)` are dropped, `00` means `+`, a number
/// without `+country` takes `default_country_code` (a calling code such as `1` or `44`), and
/// an extension is split off. A number that cannot be one in its country (impossible length,
/// unknown country code, letters) is refused with the reason.
pub fn normalize_phone(
    raw: &str,
    default_country_code: Option<&str>,
) -> Result<PhoneNumber, String> {
    normalize(raw, default_country_code, true)
}

/// `check_ranges: false` lets input already in E.164 take the fast path: its country code and
/// length are checked against the plan, its range is not (the full parse costs ~5 µs a
/// number; imports of millions of rows must stay above 200,000 rows/s).
fn normalize(
    raw: &str,
    default_country_code: Option<&str>,
    check_ranges: bool,
) -> Result<PhoneNumber, String> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err("phone is empty".into());
    }
    if !check_ranges && let Some(fast) = e164_fast_path(trimmed) {
        return fast;
    }
    if let Some(c) = trimmed.chars().find(|c| {
        !(c.is_ascii_digit() || " -.()/+\u{a0}xX#,;".contains(*c) || c.is_ascii_alphabetic())
    }) {
        return Err(format!(
            "phone {trimmed:?} has a character that is not part of a number: {c:?}"
        ));
    }
    // `00` is the international prefix in most of the world: the same as `+`.
    let text = match trimmed.strip_prefix("00") {
        Some(rest) if !trimmed.starts_with('+') => format!("+{rest}"),
        _ => trimmed.to_string(),
    };
    let region = match default_country_code {
        _ if text.starts_with('+') => None,
        Some(code) => Some(region_of(code).ok_or_else(|| {
            format!("import.default_country_code {code:?} is not a country calling code")
        })?),
        None => {
            return Err(format!(
                "phone {trimmed:?} has no country code: write it as +<country><number>, or set import.default_country_code"
            ));
        }
    };
    let number = phonenumber::parse(region, &text)
        .map_err(|e| format!("phone {trimmed:?} is not a phone number: {e}"))?;
    let national = {
        let n = number.national();
        format!("{}{}", "0".repeat(usize::from(n.zeros())), n.value())
    };
    let code = number.code().value();
    let possible = phonenumber::metadata::DATABASE
        .by_code(&code)
        .map(|metas| metas.iter().any(|m| possible_length(m, national.len())))
        .ok_or_else(|| format!("phone {trimmed:?}: +{code} is not a country calling code"))?;
    if !possible {
        return Err(format!(
            "phone {trimmed:?} cannot be a number of +{code}: {} digits after the country code is not a length used there",
            national.len()
        ));
    }
    let e164 = number.format().mode(phonenumber::Mode::E164).to_string();
    if !(9..=16).contains(&e164.len()) {
        return Err(format!(
            "phone {trimmed:?} has {} digits with its country code; E.164 allows 8 to 15",
            e164.len() - 1
        ));
    }
    Ok(PhoneNumber {
        verified: Some(phonenumber::is_valid(&number)),
        extension: number.extension().map(|e| e.to_string()),
        e164,
    })
}

/// `+` and 8-15 digits and nothing else: the country code (1 to 3 digits) and the length of
/// the rest are checked against the plan. `None` when the input is not in that shape.
fn e164_fast_path(text: &str) -> Option<Result<PhoneNumber, String>> {
    let digits = text.strip_prefix('+')?;
    if !(8..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    for split in 1..=3 {
        let Ok(code) = digits[..split].parse::<u16>() else {
            continue;
        };
        if let Some(metas) = phonenumber::metadata::DATABASE.by_code(&code) {
            let national = &digits[split..];
            if national.starts_with('0') && code != 39 {
                // A trunk 0 after the country code: let the full parser drop or refuse it.
                return None;
            }
            return Some(
                if metas.iter().any(|m| possible_length(m, national.len())) {
                    Ok(PhoneNumber {
                        e164: text.to_string(),
                        extension: None,
                        verified: None,
                    })
                } else {
                    Err(format!(
                        "phone {text:?} cannot be a number of +{code}: {} digits after the country code is not a length used there",
                        national.len()
                    ))
                },
            );
        }
    }
    None
}

/// Whether a national number of `len` digits exists in a region's plan (any number type).
fn possible_length(meta: &phonenumber::metadata::Metadata, len: usize) -> bool {
    let d = meta.descriptors();
    let general = d.general().possible_length();
    if !general.is_empty() {
        return general.contains(&(len as u16));
    }
    [
        d.fixed_line(),
        d.mobile(),
        d.toll_free(),
        d.premium_rate(),
        d.shared_cost(),
        d.personal_number(),
        d.voip(),
        d.pager(),
        d.uan(),
        d.voicemail(),
    ]
    .into_iter()
    .flatten()
    .any(|desc| desc.possible_length().contains(&(len as u16)))
}

/// The main region of a calling code (`1` → US, `44` → GB).
fn region_of(calling_code: &str) -> Option<phonenumber::country::Id> {
    let code: u16 = calling_code.trim().trim_start_matches('+').parse().ok()?;
    let metas = phonenumber::metadata::DATABASE.by_code(&code)?;
    let main = metas
        .iter()
        .find(|m| m.is_main_country_for_code())
        .or_else(|| metas.first())?;
    main.id().parse().ok()
}

/// Imports contacts from `reader` into a campaign. `progress` is called with the rows read
/// so far after every batch (25,000 rows at most), for long imports.
pub async fn import_contacts(
    store: &Store,
    campaign_id: i64,
    reader: impl Read,
    rules: &ImportConfig,
    progress: impl FnMut(u64),
) -> Result<ImportReport, ImportError> {
    import_contacts_until(
        store,
        campaign_id,
        reader,
        rules,
        progress,
        std::future::pending(),
    )
    .await
}

/// [`import_contacts`], stopped when `stop` completes (with a signal's name, as
/// [`crate::shutdown::requested`] does): the parser stops at its next yield, the writer
/// finishes the batch it holds, and every row of the import is removed
/// ([`ImportError::Interrupted`]).
pub async fn import_contacts_until(
    store: &Store,
    campaign_id: i64,
    reader: impl Read,
    rules: &ImportConfig,
    mut progress: impl FnMut(u64),
    stop: impl std::future::Future<Output = &'static str>,
) -> Result<ImportReport, ImportError> {
    // Fields are trimmed where they are read (`cell`): csv's own trimming copies every record
    // twice.
    let mut csv = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
    let headers: Vec<String> = csv
        .headers()
        .map_err(|e| ImportError::Read(e.to_string()))?
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_string())
        .collect();
    if !headers.iter().any(|h| h.eq_ignore_ascii_case("phone")) {
        return Err(ImportError::NoPhoneColumn(headers.join(", ")));
    }
    let campaign = store.campaign(campaign_id).await?;
    if campaign.status == crate::model::CampaignStatus::Cancelled {
        return Err(ImportError::Cancelled(campaign.name));
    }
    let mut report = ImportReport::default();
    let mut session = store.import_session(campaign_id).await?;
    session.commit_every(rules.rows_per_commit);
    let (session, result) = read_rows(
        &mut csv,
        &headers,
        rules,
        session,
        &mut report,
        &mut progress,
        stop,
    )
    .await;
    match result {
        Ok(()) => {
            let (_, reopened) = session.commit().await?;
            report.reopened = reopened;
            Ok(report)
        }
        Err(e) => {
            // Nothing of a failed import becomes visible; its rows are removed.
            if let Err(cleanup) = session.abort().await {
                tracing::warn!(
                    "cannot remove the rows of a failed import (removed at the next start): {cleanup}"
                );
            }
            Err(e)
        }
    }
}

/// The writer commits what it holds when no batch came for this long.
const WAIT_BEFORE_FLUSH: std::time::Duration = std::time::Duration::from_millis(200);

/// Rows per batch handed from the parser to the writer.
const ROWS_PER_BATCH: usize = 25_000;

/// Rows parsed between two yields to the runtime: on a single-threaded runtime the writer
/// task runs only when the parser yields.
const ROWS_PER_YIELD: u64 = 256;

/// The writer task of an import: adds each batch it receives to the session, in order, and
/// gives the session back with the rows added and duplicates skipped (or the first error).
async fn write_batches(
    mut session: ImportSession,
    mut batches: tokio::sync::mpsc::Receiver<Vec<NewContact>>,
) -> (ImportSession, u64, u64, Result<(), ImportError>) {
    let (mut imported, mut duplicates) = (0, 0);
    loop {
        // Input that is slow to come (a pipe) does not hold the write lock meanwhile.
        let next = match tokio::time::timeout(WAIT_BEFORE_FLUSH, batches.recv()).await {
            Ok(next) => next,
            Err(_) => {
                if let Err(e) = session.flush().await {
                    return (session, imported, duplicates, Err(e.into()));
                }
                batches.recv().await
            }
        };
        let Some(batch) = next else { break };
        match session.add(&batch).await {
            Ok(inserted) => {
                imported += inserted;
                duplicates += batch.len() as u64 - inserted;
            }
            Err(e) => return (session, imported, duplicates, Err(e.into())),
        }
    }
    (session, imported, duplicates, Ok(()))
}

/// Reads every row; good ones go in batches to a writer task, so that parsing the next batch
/// overlaps the database writing the last one (the parser runs here, SQLite on its own
/// thread). The channel holds one batch: at most three batches are in memory.
async fn read_rows(
    csv: &mut csv::Reader<impl Read>,
    headers: &[String],
    rules: &ImportConfig,
    session: ImportSession,
    report: &mut ImportReport,
    progress: &mut impl FnMut(u64),
    stop: impl std::future::Future<Output = &'static str>,
) -> (ImportSession, Result<(), ImportError>) {
    let (batches, receiver) = tokio::sync::mpsc::channel(1);
    let writer = tokio::spawn(write_batches(session, receiver));
    let finished = {
        let parse = parse_rows(csv, headers, rules, &batches, report, progress);
        tokio::select! {
            parsed = parse => Ok(parsed),
            signal = stop => Err(signal),
        }
    };
    let parsed = finished.unwrap_or_else(|signal| {
        Err(ImportError::Interrupted {
            signal,
            rows: report.rows,
        })
    });
    drop(batches);
    let (session, imported, duplicates, written) = match writer.await {
        Ok(done) => done,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    };
    report.imported = imported;
    report.duplicates = duplicates;
    // A database error stops the writer, and then the parser (its channel closes): the
    // writer's error is the cause. A stop is the cause whatever the writer did meanwhile.
    let result = match parsed {
        Err(e @ ImportError::Interrupted { .. }) => Err(e),
        parsed => written.and(parsed),
    };
    (session, result)
}

/// Parses every row into `batches`. Stops early (Ok) when the writer is gone.
async fn parse_rows(
    csv: &mut csv::Reader<impl Read>,
    headers: &[String],
    rules: &ImportConfig,
    batches: &tokio::sync::mpsc::Sender<Vec<NewContact>>,
    report: &mut ImportReport,
    progress: &mut impl FnMut(u64),
) -> Result<(), ImportError> {
    let parser = RowParser::new(headers, rules)?;
    // Batches to the writer stay small (memory: at most three are held); the writer commits
    // once its transaction holds `rows_per_commit` rows.
    let batch_rows = rules.rows_per_commit.min(ROWS_PER_BATCH);
    let mut batch: Vec<NewContact> = Vec::with_capacity(batch_rows);
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
        match parser.contact(&record) {
            Ok((contact, verified)) => {
                if contact.timezone.is_none() {
                    report.zone_ambiguous += 1;
                }
                match verified {
                    Some(true) => {}
                    Some(false) => report.unverified += 1,
                    None => report.length_checked_only += 1,
                }
                batch.push(contact);
            }
            Err(reason) => report.rejected.push(RejectedRow {
                line,
                reason: crate::model::text::bounded(&reason, 200),
            }),
        }
        if batch.len() >= batch_rows {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(batch_rows));
            if batches.send(full).await.is_err() {
                return Ok(());
            }
            progress(report.rows);
        } else if report.rows.is_multiple_of(ROWS_PER_YIELD) {
            tokio::task::yield_now().await;
        }
    }
    if !batch.is_empty() {
        // An error here means the writer stopped: its own error is reported.
        let _ = batches.send(batch).await;
    }
    Ok(())
}

/// A field as imported: trimmed of surrounding whitespace (Unicode, as csv's `Trim::All`).
fn cell(record: &csv::StringRecord, col: usize) -> Option<&str> {
    record.get(col).map(str::trim)
}

/// A field trimmed, or `None` when it is missing or empty.
fn non_empty(record: &csv::StringRecord, col: Option<usize>) -> Option<&str> {
    col.and_then(|c| cell(record, c)).filter(|v| !v.is_empty())
}

/// What the header says about each column, worked out once for every row: where the phone,
/// name, extension and compliance columns are, and which columns are variables.
struct RowParser<'a> {
    headers: &'a [String],
    rules: &'a ImportConfig,
    phone: usize,
    name: Option<usize>,
    extension: Option<usize>,
    timezone: Option<usize>,
    consent_source: Option<usize>,
    consent_at: Option<usize>,
    /// The other named columns (the contact's variables); empty: every row's is `{}`.
    variables: Vec<(usize, &'a str)>,
}

/// Columns that are the contact's zone and consent, not variables.
const POLICY_COLUMNS: [&str; 3] = ["timezone", "consent_source", "consent_at"];

impl<'a> RowParser<'a> {
    fn new(headers: &'a [String], rules: &'a ImportConfig) -> Result<Self, ImportError> {
        // Known columns are found whatever their case; a variable keeps its header's case,
        // because Vapi's `{{firstName}}` is not `{{firstname}}`.
        let column = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
        let phone =
            column("phone").ok_or_else(|| ImportError::NoPhoneColumn(headers.join(", ")))?;
        let name = column("name");
        let extension = column("extension");
        let variables = headers
            .iter()
            .enumerate()
            .filter(|(i, h)| {
                Some(*i) != name
                    && Some(*i) != extension
                    && *i != phone
                    && !h.is_empty()
                    && !POLICY_COLUMNS.iter().any(|p| h.eq_ignore_ascii_case(p))
            })
            .map(|(i, h)| (i, h.as_str()))
            .collect();
        Ok(RowParser {
            headers,
            rules,
            phone,
            name,
            extension,
            timezone: column("timezone"),
            consent_source: column("consent_source"),
            consent_at: column("consent_at"),
            variables,
        })
    }

    /// The contact of a row and whether its number is in the plan's known ranges, or why
    /// the row is refused.
    fn contact(&self, record: &csv::StringRecord) -> Result<(NewContact, Option<bool>), String> {
        let (headers, rules) = (self.headers, self.rules);
        if record.len() != headers.len() {
            return Err(format!(
                "has {} fields, the header has {}",
                record.len(),
                headers.len()
            ));
        }
        if let Some((i, field)) = record
            .iter()
            .map(str::trim)
            .enumerate()
            .find(|(_, f)| f.len() > rules.max_field_bytes)
        {
            return Err(format!(
                "field {:?} is {} bytes, more than import.max_field_bytes ({})",
                headers.get(i).map(String::as_str).unwrap_or("?"),
                field.len(),
                rules.max_field_bytes
            ));
        }
        // PostgreSQL's text refuses a NUL, and no assistant should be sent one.
        if let Some(i) = record.iter().position(|f| f.contains('\0')) {
            return Err(format!(
                "field {:?} contains a NUL character",
                headers.get(i).map(String::as_str).unwrap_or("?")
            ));
        }
        let number = normalize(
            cell(record, self.phone).unwrap_or(""),
            rules.default_country_code.as_deref(),
            rules.strict,
        )?;
        if rules.strict && number.verified == Some(false) {
            return Err(format!(
                "phone {} is outside the numbering plan's known ranges (import.strict)",
                number.e164
            ));
        }
        let name = non_empty(record, self.name);
        if let Some(n) = name
            && n.chars().count() > 200
        {
            return Err("name is longer than 200 characters".into());
        }
        let extension = non_empty(record, self.extension)
            .map(str::to_string)
            .or(number.extension);
        if let Some(ext) = &extension
            && !(ext.len() <= 10 && ext.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(format!("extension {ext:?} must be up to 10 digits"));
        }
        // The contact's zone: its `timezone` column, else its number's, else none (the
        // campaign's).
        let timezone = match non_empty(record, self.timezone) {
            Some(zone) => Some(
                crate::policy::parse_zone(zone)
                    .map_err(|e| e.to_string())?
                    .name()
                    .to_string(),
            ),
            None => crate::policy::zones::zone_for_number(&number.e164).map(str::to_string),
        };
        let variables = if self.variables.is_empty() {
            "{}".to_string()
        } else {
            let mut vars = serde_json::Map::new();
            for (i, header) in &self.variables {
                if let Some(value) = cell(record, *i) {
                    vars.insert(
                        (*header).to_string(),
                        serde_json::Value::String(value.to_string()),
                    );
                }
            }
            serde_json::Value::Object(vars).to_string()
        };
        Ok((
            NewContact {
                name: name.map(str::to_string),
                phone: number.e164,
                extension,
                variables,
                timezone,
                consent_source: non_empty(record, self.consent_source).map(str::to_string),
                consent_at: non_empty(record, self.consent_at).map(str::to_string),
                unverified: number.verified == Some(false),
            },
            number.verified,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e164(raw: &str, country: Option<&str>) -> String {
        normalize_phone(raw, country)
            .unwrap_or_else(|e| panic!("{raw}: {e}"))
            .e164
    }

    #[test]
    fn phones_normalise_to_e164_by_the_numbering_plan() {
        assert_eq!(e164("+1 (415) 555-0100", None), "+14155550100");
        assert_eq!(e164("0044 20 7946 0958", None), "+442079460958");
        assert_eq!(e164("020 7946 0958", Some("44")), "+442079460958");
        assert_eq!(e164("415.555.0100", Some("1")), "+14155550100");
        // A leading country code with a default country is not doubled.
        assert_eq!(e164("1 (415) 555-0101", Some("1")), "+14155550101");
        // The UK's "(0)" trunk prefix is dropped: both spellings are the same number.
        assert_eq!(e164("+44 (0)20 7946 0958", None), "+442079460958");
        assert_eq!(e164("+44 20 7946 0958", None), "+442079460958");
        assert_eq!(e164("+49 (0)30 901820", None), "+4930901820");
    }

    #[test]
    fn extensions_are_split_off() {
        for raw in ["+1 415 555 0100 x123", "+1 415 555 0100 ext. 123"] {
            let n = normalize_phone(raw, None).unwrap();
            assert_eq!(
                (n.e164.as_str(), n.extension.as_deref()),
                ("+14155550100", Some("123"))
            );
        }
    }

    #[test]
    fn numbers_outside_known_ranges_are_possible_but_unverified() {
        // A NANP exchange cannot start with 0 or 1, and 07700 900xxx is Ofcom's drama range:
        // right length, outside the plan's known ranges.
        for raw in ["+1 415 000 0000", "+1 415 155 0100", "+44 7700 900123"] {
            let n = normalize_phone(raw, None).unwrap();
            assert_eq!(n.verified, Some(false), "{raw}");
        }
        let real = normalize_phone("+44 20 7946 0958", None).unwrap();
        assert_eq!(real.verified, Some(true), "{real:?}");
    }

    #[test]
    fn impossible_numbers_say_why() {
        assert!(normalize_phone("", None).unwrap_err().contains("empty"));
        assert!(
            normalize_phone("4155550100", None)
                .unwrap_err()
                .contains("country code")
        );
        assert!(
            normalize_phone("+1 415 CALL ☎", None)
                .unwrap_err()
                .contains("character")
        );
        for raw in ["+1234", "+1 415 555", "+44 20 79", "+1234567890123456"] {
            let err = normalize_phone(raw, None).unwrap_err();
            assert!(
                err.contains("cannot be a number") || err.contains("not a phone number"),
                "{raw}: {err}"
            );
        }
        assert!(
            normalize_phone("+999 1234 5678", None).is_err(),
            "no such country"
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
        let report = import_contacts(&store, c.id, csv.as_bytes(), &Default::default(), |_| {})
            .await
            .unwrap();
        assert_eq!(report.imported, 2);
        assert_eq!(report.duplicates, 1, "Ed has Ada's number");
        let lines: Vec<u64> = report.rejected.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![3, 4, 5]);
        assert!(report.rejected[1].reason.contains("extension"));
        assert!(report.rejected[2].reason.contains("fields"));
        let again = import_contacts(&store, c.id, csv.as_bytes(), &Default::default(), |_| {})
            .await
            .unwrap();
        assert_eq!(again.imported, 0, "re-import adds nothing");
        assert_eq!(again.duplicates, 3);
        assert_eq!(store.contact_count(c.id).await.unwrap(), 2);
        let first = store.contact(1).await.unwrap();
        assert_eq!(first.variables, r#"{"city":"Paris"}"#);
    }

    /// Fields are trimmed where they are read (not by csv's copying `Trim::All`), and the
    /// zone and consent columns are the contact's, not variables.
    #[tokio::test]
    async fn fields_are_trimmed_and_policy_columns_are_not_variables() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in(dir.path()).await.unwrap();
        let c = store.create_campaign("c", "a", "p").await.unwrap();
        // Known columns in any case; a variable keeps its header's (`{{firstName}}`).
        let csv = " Phone , name,firstName ,TimeZone,consent_source,Consent_At\n\
                   \u{a0}+14155550100 ,  Ada\t, Paris , Europe/Paris ,web , 2026-01-02\n\
                   +14155550101,,,,,\n\
                   +14155550102,Cy,Oslo,Mars/Base,,\n";
        let report = import_contacts(&store, c.id, csv.as_bytes(), &Default::default(), |_| {})
            .await
            .unwrap();
        assert_eq!(report.imported, 2, "{report:?}");
        let lines: Vec<u64> = report.rejected.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![4], "the unknown zone: {report:?}");
        let ada = store.contact(1).await.unwrap();
        assert_eq!(ada.phone, "+14155550100");
        assert_eq!(ada.name.as_deref(), Some("Ada"));
        assert_eq!(ada.variables, r#"{"firstName":"Paris"}"#);
        let (zone, source, at): (Option<String>, Option<String>, Option<String>) =
            sqlx::query_as(crate::store::q(
                "SELECT timezone, consent_source, consent_at FROM contacts WHERE id = 1",
            ))
            .fetch_one(store.reader())
            .await
            .unwrap();
        assert_eq!(
            (zone.as_deref(), source.as_deref(), at.as_deref()),
            (Some("Europe/Paris"), Some("web"), Some("2026-01-02"))
        );
        let empty = store.contact(2).await.unwrap();
        assert_eq!(
            (empty.name, empty.variables.as_str()),
            (None, r#"{"firstName":""}"#)
        );
        assert_eq!(report.zone_ambiguous, 0, "+1 415 is Los Angeles");
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
            &Default::default(),
            |_| {},
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("no `phone` column"), "{err}");
        assert_eq!(store.contact_count(c.id).await.unwrap(), 0);
    }
}
