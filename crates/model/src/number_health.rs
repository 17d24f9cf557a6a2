//! Caller-number health, pure: people stop answering a number that carriers label as spam,
//! and nothing else shows it. For each pool number (and each area code called) over a span
//! of time: calls ended, the share answered, the share of quick hang-ups among those
//! answered, carrier failures (the phone never rang). A number is judged against its peers
//! (the campaign's other numbers, pooled): flagged when its answer rate is under half
//! theirs and the gap is significant (the two-proportion z-test of `arms`), benched for the
//! cool-down when the campaign asks for it below a share it sets.

use crate::arms::significant;

/// Calls too few to judge: a number is neither flagged nor benched below this.
pub const MIN_CALLS: u64 = 20;

/// A number whose answer rate is below this share of its peers' is flagged.
pub const FLAG_BELOW: f64 = 0.5;

/// Ended calls of one number (or area code) over a span.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Sample {
    pub calls: u64,
    pub answered: u64,
    /// Answered, then hung up within the campaign's quick hang-up time.
    pub quick_hangups: u64,
    /// Never rang: a carrier or provider failure before the call began.
    pub carrier_failures: u64,
}

impl Sample {
    pub fn add(&mut self, other: &Sample) {
        self.calls += other.calls;
        self.answered += other.answered;
        self.quick_hangups += other.quick_hangups;
        self.carrier_failures += other.carrier_failures;
    }

    pub fn answer_rate(&self) -> Option<f64> {
        (self.calls > 0).then(|| self.answered as f64 / self.calls as f64)
    }

    /// Quick hang-ups among the calls answered.
    pub fn quick_share(&self) -> Option<f64> {
        (self.answered > 0).then(|| self.quick_hangups as f64 / self.answered as f64)
    }
}

/// What the numbers' figures say of one of them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// Too few calls (of it or of its peers) to say.
    TooFewCalls,
    Healthy,
    /// Answered far less than its peers: shown to the operator.
    Flagged {
        rate: f64,
        peers: f64,
    },
    /// Flagged, and below the campaign's `rest_numbers_below`: benched for the cool-down.
    Rest {
        rate: f64,
        peers: f64,
    },
}

impl Verdict {
    pub fn flagged(self) -> bool {
        matches!(self, Verdict::Flagged { .. } | Verdict::Rest { .. })
    }

    /// "answers 10 % against 40 % for its peers".
    pub fn describe(self) -> Option<String> {
        match self {
            Verdict::Flagged { rate, peers } | Verdict::Rest { rate, peers } => Some(format!(
                "answered {:.0} % against {:.0} % for its peers",
                rate * 100.0,
                peers * 100.0
            )),
            Verdict::TooFewCalls | Verdict::Healthy => None,
        }
    }
}

/// Judges each of `numbers` (its key and sample) against the others pooled; `rest_below` is
/// the campaign's share (0: never benched).
pub fn judge(numbers: &[(String, Sample)], rest_below: f64) -> Vec<(String, Sample, Verdict)> {
    let mut all = Sample::default();
    for (_, sample) in numbers {
        all.add(sample);
    }
    numbers
        .iter()
        .map(|(key, sample)| {
            let peers = Sample {
                calls: all.calls - sample.calls,
                answered: all.answered - sample.answered,
                quick_hangups: all.quick_hangups - sample.quick_hangups,
                carrier_failures: all.carrier_failures - sample.carrier_failures,
            };
            (key.clone(), *sample, verdict(sample, &peers, rest_below))
        })
        .collect()
}

fn verdict(sample: &Sample, peers: &Sample, rest_below: f64) -> Verdict {
    let (Some(rate), Some(peers_rate)) = (sample.answer_rate(), peers.answer_rate()) else {
        return Verdict::TooFewCalls;
    };
    if sample.calls < MIN_CALLS || peers.calls < MIN_CALLS {
        return Verdict::TooFewCalls;
    }
    let gap = significant(sample.answered, sample.calls, peers.answered, peers.calls);
    if !gap || rate >= FLAG_BELOW * peers_rate {
        return Verdict::Healthy;
    }
    if rest_below > 0.0 && rate < rest_below * peers_rate {
        Verdict::Rest {
            rate,
            peers: peers_rate,
        }
    } else {
        Verdict::Flagged {
            rate,
            peers: peers_rate,
        }
    }
}

/// The area code a contact's number is grouped by: the country code and the next three
/// digits for North America (+1 415), else the first five characters (+44 20…).
pub fn area_code(phone: &str) -> String {
    let len = if phone.starts_with("+1") {
        5
    } else {
        5.min(phone.len())
    };
    phone.chars().take(len).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(calls: u64, answered: u64) -> Sample {
        Sample {
            calls,
            answered,
            ..Sample::default()
        }
    }

    #[test]
    fn a_number_answered_far_less_than_its_peers_is_flagged_and_rested_when_asked() {
        let pool = vec![
            ("pn-bad".to_string(), at(100, 10)),
            ("pn-a".to_string(), at(100, 40)),
            ("pn-b".to_string(), at(100, 40)),
        ];
        let judged = judge(&pool, 0.0);
        assert_eq!(
            judged[0].2,
            Verdict::Flagged {
                rate: 0.1,
                peers: 0.4
            }
        );
        assert_eq!(judged[1].2, Verdict::Healthy);
        assert_eq!(judged[2].2, Verdict::Healthy);
        assert_eq!(
            judged[0].2.describe().as_deref(),
            Some("answered 10 % against 40 % for its peers")
        );
        let rested = judge(&pool, 0.5);
        assert!(matches!(rested[0].2, Verdict::Rest { .. }), "{rested:?}");
        // 10 % against 40 % is a quarter: a campaign resting below a fifth keeps it.
        let kept = judge(&pool, 0.2);
        assert!(matches!(kept[0].2, Verdict::Flagged { .. }), "{kept:?}");
    }

    #[test]
    fn small_samples_and_small_gaps_are_not_flagged() {
        let table: &[(Sample, Sample, Verdict)] = &[
            // Too few calls of the number, or of its peers.
            (at(10, 0), at(200, 80), Verdict::TooFewCalls),
            (at(200, 10), at(10, 5), Verdict::TooFewCalls),
            (at(0, 0), at(200, 80), Verdict::TooFewCalls),
            // Below half, but 20 calls cannot tell 15 % from 40 % apart for sure.
            (at(20, 3), at(20, 8), Verdict::Healthy),
            // Significantly lower, but not below half.
            (at(1_000, 300), at(1_000, 400), Verdict::Healthy),
        ];
        for (sample, peers, want) in table {
            let pool = vec![("n".to_string(), *sample), ("p".to_string(), *peers)];
            assert_eq!(
                judge(&pool, 0.5)[0].2,
                *want,
                "{sample:?} against {peers:?}"
            );
        }
    }

    #[test]
    fn area_codes_group_north_american_numbers_by_their_npa() {
        assert_eq!(area_code("+14155550100"), "+1415");
        assert_eq!(area_code("+442079460000"), "+4420");
        assert_eq!(area_code("+1"), "+1");
    }
}
