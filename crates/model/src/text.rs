//! Text that goes to the operator or the database: times as stored, and untrusted text cut
//! to one bounded line.

use std::str::FromStr;

/// A time as stored and sent to Vapi: RFC 3339 in UTC with milliseconds.
pub fn format_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Parses a stored or Vapi timestamp.
pub fn parse_time(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_str(text).ok()
}

/// `text` on one line, cut to `max` characters with an ellipsis: a 10 MB header line must
/// not become a 10 MB error.
pub fn bounded(text: &str, max: usize) -> String {
    let mut out = String::new();
    for (n, c) in text.chars().enumerate() {
        if n == max {
            out.push('…');
            return out;
        }
        out.push(if c.is_control() { ' ' } else { c });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_texts_are_cut_with_an_ellipsis_and_kept_on_one_line() {
        assert_eq!(bounded("short", 10), "short");
        assert_eq!(bounded("abcdef", 3), "abc…");
        assert_eq!(bounded("a\nb", 10), "a b");
        let huge = "x".repeat(10_000_000);
        assert_eq!(bounded(&huge, 200).chars().count(), 201);
    }

    #[test]
    fn stored_times_round_trip() {
        let t = parse_time("2026-11-24T10:00:00.123Z").unwrap();
        assert_eq!(format_time(t), "2026-11-24T10:00:00.123Z");
    }
}
