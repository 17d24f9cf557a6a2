//! What an end-of-call report says about a call beyond its status: Vapi's analysis
//! (summary, success evaluation, structured data) and the recording. Storage in a
//! `call_analysis` table (migration 0004) is still to come; this module holds the shape and
//! the pure success rule.

use serde::Serialize;

/// A call's analysis, as `calls --json` would print it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct CallAnalysis {
    pub summary: Option<String>,
    /// `analysis.successEvaluation` as text, whatever its JSON type (bool, string, number).
    pub success_evaluation: Option<String>,
    /// `analysis.structuredData` as JSON text.
    pub structured_data: Option<String>,
    pub recording_url: Option<String>,
}

/// Whether a call succeeded. Vapi's evaluation wins when present and readable (rubrics:
/// PassFail true/false, NumericScale 1-10 with 6 and up a pass, PercentageScale 0-100 with 50
/// and up, LikertScale / DescriptiveScale words); otherwise the ended reason decides as
/// before: a conversation that ended normally is a success. `None` when neither tells.
pub fn success_of(ended_reason: Option<&str>, success_evaluation: Option<&str>) -> Option<bool> {
    if let Some(verdict) = success_evaluation.and_then(evaluation_verdict) {
        return Some(verdict);
    }
    let reason = ended_reason?;
    Some(matches!(
        reason,
        "customer-ended-call"
            | "assistant-ended-call"
            | "assistant-said-end-call-phrase"
            | "exceeded-max-duration"
    ))
}

fn evaluation_verdict(text: &str) -> Option<bool> {
    let text = text.trim().trim_matches('"').trim().to_ascii_lowercase();
    match text.as_str() {
        "true" | "pass" | "passed" | "yes" | "success" | "successful" | "excellent" | "good"
        | "agree" | "strongly agree" => return Some(true),
        "false" | "fail" | "failed" | "no" | "failure" | "unsuccessful" | "poor" | "fair"
        | "disagree" | "strongly disagree" | "neutral" => return Some(false),
        _ => {}
    }
    let number: f64 = text.trim_end_matches('%').parse().ok()?;
    if !number.is_finite() {
        return None;
    }
    Some(if number <= 10.0 {
        number >= 6.0
    } else {
        number >= 50.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evaluation_wins_over_the_ended_reason() {
        assert_eq!(
            success_of(Some("customer-ended-call"), Some("false")),
            Some(false)
        );
        assert_eq!(
            success_of(Some("customer-did-not-answer"), Some("true")),
            Some(true)
        );
        assert_eq!(success_of(None, Some("Pass")), Some(true));
        assert_eq!(success_of(None, Some("8")), Some(true));
        assert_eq!(success_of(None, Some("3")), Some(false));
        assert_eq!(success_of(None, Some("75%")), Some(true));
        assert_eq!(success_of(None, Some("40")), Some(false));
    }

    #[test]
    fn without_a_readable_evaluation_the_ended_reason_decides() {
        assert_eq!(success_of(Some("customer-ended-call"), None), Some(true));
        assert_eq!(
            success_of(Some("customer-busy"), Some("maybe?")),
            Some(false)
        );
        assert_eq!(success_of(None, None), None);
    }
}
