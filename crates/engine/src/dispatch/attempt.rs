//! What a call's attempt sequence does next, decided by one pure function: [`decide`] takes
//! the sequence's [`Tally`] and what just happened (an [`Event`]) and returns a [`Decision`]:
//! what the store records, what the breaker hears, how long to wait, and where the sequence
//! goes. The worker applies decisions and decides nothing; the table test below covers every
//! class of Vapi's errors against the retries left and the settle state.
//!
//! The rules, in the story's words: 429 and 503 are sent again after 1 s, 4 s, 10 s (the
//! schedule of `dispatch.backoff_ms`, its last entry repeating, longer when Vapi's Retry-After
//! or the engine-wide 429 back-off asks); a 429 spends no retry; anything that may have
//! created the call is settled by look-up before it is sent again; 400 and 401 are never
//! sent again. Waits are minimums: an ambiguous attempt is re-sent only once settled.

use std::time::Duration;

use crate::model::backoff::retry_delay;
use crate::model::{AttemptOutcome, Pause, StopCause};
use crate::vapi::{ErrorClass, Subject, VapiError};

/// The configuration a decision reads.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    pub backoff_ms: &'a [u64],
    /// HTTP statuses worth sending again (a connect error or a timeout always is).
    pub retry_on_status: &'a [u16],
}

/// The attempts a call has spent (a rate-limited one spends none) against the most it may
/// make (`1 + dispatch.max_retries`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub spent: i64,
    pub max_attempts: i64,
}

/// What happened to the sequence.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// A new attempt is about to be admitted; `last_error` is the latest attempt's.
    Admitting { last_error: &'a str },
    /// The attempt numbered `number` (1-based) failed with `error`. `engine_wait` is the
    /// engine-wide back-off the gate set for it (a 429's, reported by the caller: it lengthens
    /// every call's wait, so it is the gate's to keep).
    Failed {
        error: &'a VapiError,
        number: i64,
        engine_wait: Option<Duration>,
    },
    /// A complete look-up found no call: the attempt was not created. `resend` is whether its
    /// status was one to send again; `retry_requested` when an operator asked for a retry
    /// while it was being settled.
    NotCreated {
        resend: bool,
        retry_requested: bool,
        last_error: &'a str,
    },
}

/// What the sequence does, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The tally after this event.
    pub tally: Tally,
    pub record: Record,
    pub breaker: Breaker,
    /// How long to wait before `then` (recorded on the attempt as its next step's delay).
    pub wait: Option<Duration>,
    pub then: Then,
}

/// What the store records.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// Nothing to record.
    Nothing,
    /// The attempt closed with `outcome` (REFUSED or RATE_LIMITED); the call stays CREATING.
    Refused { outcome: AttemptOutcome },
    /// The attempt closed AMBIGUOUS; the call is UNKNOWN until found or settled.
    Ambiguous,
    /// The call FAILED with `reason` (the failed attempt, if any, closed with `outcome`).
    Failed {
        outcome: Option<AttemptOutcome>,
        reason: String,
    },
    /// The attempt closed REJECTED; the call is REQUEUED and its contact waits again.
    Requeued,
}

/// What the circuit breaker hears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breaker {
    /// Vapi answered (a refusal is an answer too).
    Answer,
    /// A transient failure: no answer, a 5xx, a 503.
    Failure,
    /// Nothing (a 429 went to the gate's own back-off; no request was made).
    Silent,
}

/// Where the sequence goes next.
#[derive(Debug, Clone, PartialEq)]
pub enum Then {
    /// Wait for the gate, commit a new attempt and send it.
    Admit,
    /// Look the call up until found or settled. `ambiguous`: the attempt is recorded so (a
    /// 503 looked up before its re-send is not); `resend`: it may be sent again once settled.
    LookUp { ambiguous: bool, resend: bool },
    /// The sequence ends FAILED. `rejection`: the refusal counts toward the campaign's streak
    /// of identical refusals (one naming the customer is about this contact alone).
    Failed { rejection: bool },
    /// FAILED, and all dispatch pauses: every call would fail the same way.
    PauseDispatch(Pause),
    /// REQUEUED, and the campaign pauses: its resources or its account are refused.
    PauseCampaign(Pause),
    /// REQUEUED, and the call's phone number is benched (the campaign goes on with others).
    BenchNumber { why: String },
}

/// Vapi refused this request (or a status not to retry): FAILED with Vapi's message.
fn rejected(tally: Tally, last_error: String, about_contact: bool) -> Decision {
    Decision {
        tally,
        record: Record::Failed {
            outcome: Some(AttemptOutcome::Rejected),
            reason: last_error,
        },
        breaker: Breaker::Answer,
        wait: None,
        then: Then::Failed {
            rejection: !about_contact,
        },
    }
}

/// The reason of a call that used up its attempts.
pub fn gave_up(spent: i64, last_error: &str) -> String {
    format!("gave up after {spent} attempts; last error: {last_error}")
}

/// Decides the next step of a sequence.
pub fn decide(tally: Tally, event: Event<'_>, rules: Rules<'_>) -> Decision {
    match event {
        Event::Admitting { last_error } if tally.spent >= tally.max_attempts => {
            let record = Record::Failed {
                outcome: None,
                reason: gave_up(tally.spent, last_error),
            };
            quiet(tally, record, Then::Failed { rejection: false })
        }
        Event::Admitting { .. } => quiet(tally, Record::Nothing, Then::Admit),
        Event::NotCreated {
            resend,
            retry_requested,
            last_error,
        } => {
            let tally = if retry_requested {
                // One more attempt, whatever was spent.
                Tally {
                    spent: tally.spent.min(tally.max_attempts - 1),
                    ..tally
                }
            } else {
                tally
            };
            if resend || retry_requested {
                quiet(tally, Record::Nothing, Then::Admit)
            } else {
                let reason = format!("not created (settled by look-up); not re-sent: {last_error}");
                let record = Record::Failed {
                    outcome: None,
                    reason,
                };
                quiet(tally, record, Then::Failed { rejection: false })
            }
        }
        Event::Failed {
            error,
            number,
            engine_wait,
        } => failed(tally, error, number, engine_wait, rules),
    }
}

fn quiet(tally: Tally, record: Record, then: Then) -> Decision {
    Decision {
        tally,
        record,
        breaker: Breaker::Silent,
        wait: None,
        then,
    }
}

fn failed(
    tally: Tally,
    error: &VapiError,
    number: i64,
    engine_wait: Option<Duration>,
    rules: Rules<'_>,
) -> Decision {
    let last_error = error.to_string();
    let retryable = error
        .http_status()
        .filter(|s| !(200..300).contains(s))
        .is_none_or(|status| rules.retry_on_status.contains(&status));
    // The wait follows this call's own sends (1 s, 4 s, 10 s…), 429s included: sparing a
    // retry does not restart the schedule, and no other call's answer does either.
    let step = u32::try_from(number.max(1)).unwrap_or(u32::MAX);
    let wait = retry_delay(rules.backoff_ms, step, error.retry_after(), engine_wait);
    let answered = |tally, record, then| Decision {
        tally,
        record,
        breaker: Breaker::Answer,
        wait: None,
        then,
    };
    let about_contact = error.subject() == Subject::Customer;
    match error.class() {
        ErrorClass::Auth => {
            let pause = Pause::new(
                StopCause::Credentials,
                format!(
                    "Vapi rejected the API key ({last_error}): every call would fail the same way. Fix the key in the environment, then resume dispatch"
                ),
            );
            let record = Record::Failed {
                outcome: Some(AttemptOutcome::AuthFailed),
                reason: format!("{last_error} (Vapi rejected the API key)"),
            };
            answered(tally, record, Then::PauseDispatch(pause))
        }
        ErrorClass::Rejected if error.subject() == Subject::PhoneNumber => {
            let why = format!("Vapi refused it ({last_error}): fix the phone number, then resume");
            answered(tally, Record::Requeued, Then::BenchNumber { why })
        }
        ErrorClass::Rejected if error.subject().is_the_campaign_s() => {
            let cause = match error.subject() {
                Subject::Credits => StopCause::Credits,
                _ => StopCause::Engine,
            };
            let pause = Pause::new(
                cause,
                format!(
                    "Vapi refused the campaign's settings ({last_error}): fix the campaign, then resume it"
                ),
            );
            answered(tally, Record::Requeued, Then::PauseCampaign(pause))
        }
        ErrorClass::Rejected => rejected(tally, last_error, about_contact),
        ErrorClass::Refused if !retryable => rejected(tally, last_error, about_contact),
        ErrorClass::Refused => {
            let rate_limited = error.is_rate_limited();
            let spent = tally.spent + i64::from(!rate_limited);
            let tally = Tally { spent, ..tally };
            let outcome = if rate_limited {
                AttemptOutcome::RateLimited
            } else {
                AttemptOutcome::Refused
            };
            let breaker = if rate_limited {
                Breaker::Silent
            } else {
                Breaker::Failure
            };
            if !rate_limited && spent >= tally.max_attempts {
                return Decision {
                    tally,
                    record: Record::Failed {
                        outcome: Some(outcome),
                        reason: gave_up(spent, &last_error),
                    },
                    breaker,
                    wait: None,
                    then: Then::Failed { rejection: false },
                };
            }
            // A 503 is a refusal, but a cheap look-up costs less than a person called twice.
            let then = if error.http_status() == Some(503) {
                Then::LookUp {
                    ambiguous: false,
                    resend: true,
                }
            } else {
                Then::Admit
            };
            Decision {
                tally,
                record: Record::Refused { outcome },
                breaker,
                wait: Some(wait),
                then,
            }
        }
        ErrorClass::Ambiguous => Decision {
            tally: Tally {
                spent: tally.spent + 1,
                ..tally
            },
            record: Record::Ambiguous,
            breaker: Breaker::Failure,
            wait: Some(wait),
            then: Then::LookUp {
                ambiguous: true,
                resend: retryable,
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BACKOFF: &[u64] = &[1_000, 4_000, 10_000];
    const RETRY_ON: &[u16] = &[429, 503, 504, 500, 502];
    const RULES: Rules<'static> = Rules {
        backoff_ms: BACKOFF,
        retry_on_status: RETRY_ON,
    };
    const MAX: i64 = 4;

    fn status(code: u16, message: &str) -> VapiError {
        VapiError::status(code, message, None)
    }

    fn tally(spent: i64) -> Tally {
        Tally {
            spent,
            max_attempts: MAX,
        }
    }

    fn fail(error: &VapiError, spent: i64, number: i64) -> Decision {
        let event = Event::Failed {
            error,
            number,
            engine_wait: None,
        };
        decide(tally(spent), event, RULES)
    }

    fn s(secs: u64) -> Option<Duration> {
        Some(Duration::from_secs(secs))
    }

    /// The shape of a decision, for the table: (spent after, record, breaker, wait, then).
    type Shape = (i64, &'static str, Breaker, Option<Duration>, &'static str);

    fn shape(d: &Decision) -> Shape {
        let record = match &d.record {
            Record::Nothing => "nothing",
            Record::Refused {
                outcome: AttemptOutcome::RateLimited,
            } => "rate-limited",
            Record::Refused { .. } => "refused",
            Record::Ambiguous => "ambiguous",
            Record::Failed { outcome: None, .. } => "failed",
            Record::Failed {
                outcome: Some(AttemptOutcome::AuthFailed),
                ..
            } => "failed: auth",
            Record::Failed {
                outcome: Some(AttemptOutcome::Rejected),
                ..
            } => "failed: rejected",
            Record::Failed { .. } => "failed: gave up",
            Record::Requeued => "requeued",
        };
        let then = match &d.then {
            Then::Admit => "admit",
            Then::LookUp {
                ambiguous: false, ..
            } => "look up, then send",
            Then::LookUp { resend: true, .. } => "settle, then send",
            Then::LookUp { resend: false, .. } => "settle, then fail",
            Then::Failed { rejection: true } => "end (counts as a rejection)",
            Then::Failed { rejection: false } => "end",
            Then::PauseDispatch(_) => "pause dispatch",
            Then::PauseCampaign(_) => "pause campaign",
            Then::BenchNumber { .. } => "bench number",
        };
        (d.tally.spent, record, d.breaker, d.wait, then)
    }

    /// Every class of error, on a call's first send (3 retries left) and its last (none
    /// left). `spent` counts the failed attempt when it spends a retry.
    #[test]
    fn every_error_class_against_the_retries_left() {
        use Breaker::{Answer, Failure, Silent};
        let connect = VapiError::Connect("refused".into());
        let timeout = VapiError::Timeout(Duration::from_secs(10));
        let reset = VapiError::Interrupted("connection reset".into());
        let garbled = VapiError::Decode {
            status: 201,
            detail: "EOF".into(),
        };
        let cases: &[(&VapiError, i64, i64, Shape)] = &[
            // Refused: sent again after the schedule's wait; only a 429 spares the retry.
            (
                &status(429, ""),
                0,
                1,
                (0, "rate-limited", Silent, s(1), "admit"),
            ),
            (
                &status(429, ""),
                3,
                4,
                (3, "rate-limited", Silent, s(10), "admit"),
            ),
            (
                &status(503, ""),
                0,
                1,
                (1, "refused", Failure, s(1), "look up, then send"),
            ),
            (
                &status(503, ""),
                3,
                4,
                (4, "failed: gave up", Failure, None, "end"),
            ),
            (&connect, 0, 1, (1, "refused", Failure, s(1), "admit")),
            (&connect, 1, 2, (2, "refused", Failure, s(4), "admit")),
            (&connect, 3, 4, (4, "failed: gave up", Failure, None, "end")),
            // Ambiguous: settled by look-up first, whatever is left (admission gives up).
            (
                &status(500, ""),
                0,
                1,
                (1, "ambiguous", Failure, s(1), "settle, then send"),
            ),
            (
                &status(500, ""),
                3,
                4,
                (4, "ambiguous", Failure, s(10), "settle, then send"),
            ),
            (
                &status(502, "<html>Bad gateway</html>"),
                1,
                2,
                (2, "ambiguous", Failure, s(4), "settle, then send"),
            ),
            (
                &status(504, ""),
                0,
                1,
                (1, "ambiguous", Failure, s(1), "settle, then send"),
            ),
            (
                &status(520, ""),
                0,
                1,
                (1, "ambiguous", Failure, s(1), "settle, then fail"),
            ),
            (
                &timeout,
                2,
                3,
                (3, "ambiguous", Failure, s(10), "settle, then send"),
            ),
            (
                &reset,
                0,
                1,
                (1, "ambiguous", Failure, s(1), "settle, then send"),
            ),
            (
                &garbled,
                0,
                1,
                (1, "ambiguous", Failure, s(1), "settle, then send"),
            ),
            // Rejected: never sent again.
            (
                &status(400, "customer.number must be a valid phone number"),
                0,
                1,
                (0, "failed: rejected", Answer, None, "end"),
            ),
            (
                &status(400, "Bad Request"),
                3,
                4,
                (
                    3,
                    "failed: rejected",
                    Answer,
                    None,
                    "end (counts as a rejection)",
                ),
            ),
            (
                &status(400, "Couldn't Get Phone Number."),
                0,
                1,
                (0, "requeued", Answer, None, "bench number"),
            ),
            (
                &status(400, "phoneNumberId must be a UUID"),
                0,
                1,
                (0, "requeued", Answer, None, "bench number"),
            ),
            (
                &status(400, "Couldn't Get Assistant."),
                0,
                1,
                (0, "requeued", Answer, None, "pause campaign"),
            ),
            (
                &status(400, "Wallet balance is too low"),
                3,
                4,
                (3, "requeued", Answer, None, "pause campaign"),
            ),
            // Auth: never sent again, and nothing else is either.
            (
                &status(401, "Invalid key"),
                0,
                1,
                (0, "failed: auth", Answer, None, "pause dispatch"),
            ),
            (
                &status(403, ""),
                3,
                4,
                (3, "failed: auth", Answer, None, "pause dispatch"),
            ),
        ];
        for (error, spent, number, expected) in cases {
            let d = fail(error, *spent, *number);
            assert_eq!(shape(&d), *expected, "{error} with {spent} spent");
        }
    }

    /// A refusal not in `retry_on_status` is not sent again (nor settled when it cannot have
    /// created a call).
    #[test]
    fn a_status_not_to_retry_fails_at_once() {
        let rules = Rules {
            retry_on_status: &[429],
            ..RULES
        };
        let event = Event::Failed {
            error: &status(503, ""),
            number: 1,
            engine_wait: None,
        };
        let d = decide(tally(0), event, rules);
        assert_eq!(
            shape(&d),
            (
                0,
                "failed: rejected",
                Breaker::Answer,
                None,
                "end (counts as a rejection)"
            )
        );
    }

    /// The settle states: found is adoption (the worker's, no decision); not created is sent
    /// again when the status was one to retry and attempts are left, else it fails.
    #[test]
    fn a_settled_attempt_against_the_retries_left() {
        let cases = [
            // (spent, resend, retry requested) → (spent after, record, then)
            ((1, true, false), (1, "nothing", "admit")),
            ((4, true, false), (4, "nothing", "admit")),
            ((1, false, false), (1, "failed", "end")),
            ((4, false, true), (3, "nothing", "admit")),
            ((4, true, true), (3, "nothing", "admit")),
            ((2, false, true), (2, "nothing", "admit")),
        ];
        for ((spent, resend, retry_requested), (after, record, then)) in cases {
            let event = Event::NotCreated {
                resend,
                retry_requested,
                last_error: "HTTP 500: x",
            };
            let d = decide(tally(spent), event, RULES);
            let (got_spent, got_record, _, wait, got_then) = shape(&d);
            assert_eq!(
                (got_spent, got_record, wait, got_then),
                (after, record, None, then),
                "{spent} spent, resend {resend}, retry {retry_requested}"
            );
        }
    }

    #[test]
    fn admission_gives_up_once_the_attempts_are_spent() {
        let admitting = Event::Admitting {
            last_error: "HTTP 503: busy",
        };
        assert_eq!(decide(tally(3), admitting, RULES).then, Then::Admit);
        let d = decide(tally(4), admitting, RULES);
        assert_eq!(d.then, Then::Failed { rejection: false });
        assert_eq!(
            d.record,
            Record::Failed {
                outcome: None,
                reason: "gave up after 4 attempts; last error: HTTP 503: busy".into()
            }
        );
    }

    #[test]
    fn retry_after_and_the_engine_s_back_off_win_only_when_longer() {
        let with = |retry_after: u64, engine: Option<Duration>, number| {
            let error = VapiError::status(429, "", Some(Duration::from_secs(retry_after)));
            let event = Event::Failed {
                error: &error,
                number,
                engine_wait: engine,
            };
            decide(tally(0), event, RULES).wait
        };
        assert_eq!(with(7, None, 1), s(7));
        assert_eq!(with(7, None, 3), s(10));
        assert_eq!(with(0, s(4), 1), s(4));
        assert_eq!(with(0, s(4), 3), s(10));
    }

    /// What each pause says and why: the cause decides, the text is for the operator.
    #[test]
    fn pauses_carry_their_cause() {
        let cause_of = |d: Decision| match d.then {
            Then::PauseDispatch(p) | Then::PauseCampaign(p) => Some(p.cause),
            _ => None,
        };
        assert_eq!(
            cause_of(fail(&status(401, "x"), 0, 1)),
            Some(StopCause::Credentials)
        );
        assert_eq!(
            cause_of(fail(&status(400, "Insufficient credits"), 0, 1)),
            Some(StopCause::Credits)
        );
        assert_eq!(
            cause_of(fail(&status(400, "Couldn't Get Assistant."), 0, 1)),
            Some(StopCause::Engine)
        );
    }
}
