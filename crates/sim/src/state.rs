//! The simulator's record: calls, their lazily computed lifecycle, and the counters
//! behind `SimStats`. Pure bookkeeping, no I/O; the caller passes "now" in.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::faults::{self, Fault};
use super::query::ListFilter;
use super::validate::CallRequest;
use super::{SimConfig, SimStats};

/// The one organisation every simulated call belongs to.
pub const ORG_ID: &str = "51a0c0de-0000-4000-8000-000000000001";
pub const CONCURRENCY_REASON: &str = "call.start.error-subscription-concurrency-limit-reached";
pub const CREDITS_REASON: &str = "call.start.error-subscription-insufficient-credits";
pub const NUMBER_LIMIT_REASON: &str = "call.start.error-vapi-number-outbound-daily-limit";
/// Start faults after which the phone never rang (from the spec's endedReason enum).
pub const START_ERRORS: &[&str] = &[
    "call.start.error-vapifault-database-error",
    "call.start.error-vapifault-get-org",
    "call.start.error-vapifault-get-subscription",
    "call.start.error-get-customer",
    "twilio-failed-to-connect-call",
    "phone-call-provider-closed-websocket",
];
/// Errors that end an answered call early (from the spec's endedReason enum).
pub const PIPELINE_ERRORS: &[&str] = &[
    "pipeline-error-openai-llm-failed",
    "pipeline-error-deepgram-transcriber-failed",
    "pipeline-error-eleven-labs-voice-failed",
    "call.in-progress.error-vapifault-openai-llm-failed",
    "call.in-progress.error-providerfault-vapi-500-server-error",
    "assistant-join-timed-out",
];
/// Cap on any one lifecycle phase, so absurd CLI values cannot overflow time arithmetic.
const MAX_PHASE_MS: u64 = 7 * 24 * 3600 * 1000;

/// How a call will play out, drawn once at creation so that its status at any
/// instant is a pure function of elapsed time (no per-call timers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Refused at start (quota/billing): ended the moment it was created.
    Refused { reason: &'static str },
    /// Dialled: queued for `queue_ms`, ringing for `ring_ms`, then `outcome`.
    Dialled {
        queue_ms: u64,
        ring_ms: u64,
        outcome: Outcome,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Picked up (by a person or a voicemail box), talked for `talk_ms`, then ended.
    Answered { talk_ms: u64, reason: &'static str },
    /// Never reached in-progress; ended when ringing stopped.
    Unanswered { reason: &'static str },
}

/// The kinds of server message the simulator posts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageKind {
    Status,
    EndOfCallReport,
    /// `conversation-update`: the conversation so far (in Vapi's default set).
    Conversation,
    /// A final `transcript` of the newest line (when the call asked for them).
    Transcript,
}

/// Where a call stands at some instant; all offsets are ms since creation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Phase {
    pub status: &'static str,
    pub updated_ms: u64,
    pub started_ms: Option<u64>,
    /// `(endedReason, ended offset, billed talk ms)` once ended.
    pub ended: Option<(&'static str, u64, u64)>,
}

impl crate::NumberScript {
    /// The plan of the `attempt`-th call to the number: a voicemail box, or the person
    /// talking; the drawn plan's queue and ring times are kept.
    fn plan(&self, drawn: Plan, attempt: u32) -> Plan {
        let Plan::Dialled {
            queue_ms, ring_ms, ..
        } = drawn
        else {
            return drawn;
        };
        let outcome = if attempt <= self.voicemail_first {
            Outcome::Answered {
                talk_ms: 2_500,
                reason: "voicemail",
            }
        } else {
            Outcome::Answered {
                talk_ms: self.talk_ms.clamp(1, MAX_PHASE_MS),
                reason: "customer-ended-call",
            }
        };
        Plan::Dialled {
            queue_ms,
            ring_ms,
            outcome,
        }
    }

    /// What the `attempt`-th call's report says (None: a voicemail).
    fn conversation(&self, attempt: u32) -> Option<(Option<bool>, Value)> {
        let n = attempt.checked_sub(self.voicemail_first + 1)? as usize;
        let last = self.conversations.len().checked_sub(1)?;
        self.conversations.get(n.min(last)).cloned()
    }
}

impl Plan {
    /// Draw a realistic outcome mix: ~45% customer hangs up, ~25% assistant hangs up,
    /// ~10% voicemail, ~12% no answer, ~8% busy.
    fn draw(rng: &mut StdRng, config: &SimConfig) -> Plan {
        let lo = config.talk_min_ms.min(config.talk_max_ms).min(MAX_PHASE_MS);
        let hi = config.talk_min_ms.max(config.talk_max_ms).min(MAX_PHASE_MS);
        let roll = rng.random_range(0..100u32);
        let mut answered = |reason| Outcome::Answered {
            talk_ms: rng.random_range(lo..=hi),
            reason,
        };
        let outcome = match roll {
            0..45 => answered("customer-ended-call"),
            45..70 => answered("assistant-ended-call"),
            70..80 => answered("voicemail"),
            80..92 => Outcome::Unanswered {
                reason: "customer-did-not-answer",
            },
            _ => Outcome::Unanswered {
                reason: "customer-busy",
            },
        };
        Plan::Dialled {
            queue_ms: config.queue_ms.min(MAX_PHASE_MS),
            ring_ms: config.ring_ms.min(MAX_PHASE_MS),
            outcome,
        }
    }

    /// The same call, answered, then ended early by `reason` after `talk_ms` (an unanswered
    /// one stays unanswered).
    pub fn failing_early(self, reason: &'static str, talk_ms: u64) -> Plan {
        match self {
            Plan::Dialled {
                queue_ms,
                ring_ms,
                outcome: Outcome::Answered { .. },
            } => Plan::Dialled {
                queue_ms,
                ring_ms,
                outcome: Outcome::Answered { talk_ms, reason },
            },
            other => other,
        }
    }

    /// Offset at which the call ends.
    pub fn end_ms(&self) -> u64 {
        match *self {
            Plan::Refused { .. } => 0,
            Plan::Dialled {
                queue_ms,
                ring_ms,
                outcome,
            } => {
                let talk = match outcome {
                    Outcome::Answered { talk_ms, .. } => talk_ms,
                    Outcome::Unanswered { .. } => 0,
                };
                queue_ms + ring_ms + talk
            }
        }
    }

    /// The call's state `elapsed_ms` after creation.
    pub fn phase_at(&self, elapsed_ms: u64) -> Phase {
        let (queue_ms, ring_ms, outcome) = match *self {
            Plan::Refused { reason } => {
                return Phase {
                    status: "ended",
                    updated_ms: 0,
                    started_ms: None,
                    ended: Some((reason, 0, 0)),
                };
            }
            Plan::Dialled {
                queue_ms,
                ring_ms,
                outcome,
            } => (queue_ms, ring_ms, outcome),
        };
        let answer_ms = queue_ms + ring_ms;
        let open = |status, updated_ms, started_ms| Phase {
            status,
            updated_ms,
            started_ms,
            ended: None,
        };
        if elapsed_ms < queue_ms {
            return open("queued", 0, None);
        }
        if elapsed_ms < answer_ms {
            return open("ringing", queue_ms, None);
        }
        match outcome {
            Outcome::Unanswered { reason } => Phase {
                status: "ended",
                updated_ms: answer_ms,
                started_ms: None,
                ended: Some((reason, answer_ms, 0)),
            },
            Outcome::Answered { talk_ms, .. } if elapsed_ms < answer_ms + talk_ms => {
                open("in-progress", answer_ms, Some(answer_ms))
            }
            Outcome::Answered { talk_ms, reason } => Phase {
                status: "ended",
                updated_ms: answer_ms + talk_ms,
                started_ms: Some(answer_ms),
                ended: Some((reason, answer_ms + talk_ms, talk_ms)),
            },
        }
    }
}

/// $0.01 per connected call plus $0.10 per minute of talk, rounded to 4 decimals;
/// calls that never connected cost nothing.
pub fn cost_usd(talk_ms: u64) -> f64 {
    if talk_ms == 0 {
        return 0.0;
    }
    let raw = 0.01 + talk_ms as f64 / 60_000.0 * 0.10;
    (raw * 10_000.0).round() / 10_000.0
}

struct CallRecord {
    id: String,
    /// Vapi lost it: GET /call/{id} answers 404 and listings leave it out.
    /// When the call disappears from reads, if it vanishes.
    vanishes_at: Option<Instant>,
    /// The final cost appears this long after the end (0: at once).
    cost_final_ms: u64,
    created_instant: Instant,
    /// Wall clock, truncated to ms so it round-trips through the ISO strings we emit.
    created_at: DateTime<Utc>,
    request: CallRequest,
    plan: Plan,
    provider_id: Option<String>,
    /// The capability in the call's monitor URLs.
    token: String,
    /// Ended through its control URL: (offset, endedReason), overriding the plan from then.
    cut: Option<(u64, &'static str)>,
    /// The assistant repeats its first line all call long (a looping prompt).
    loops: bool,
    /// Lines spoken into the call through `say` (offset, text).
    said: Vec<(u64, String)>,
    /// Where its monitor URLs point (the simulator's own address), once it serves.
    monitor_base: Option<String>,
    /// What its end-of-call report says, when scripted or drawn per assistant: the success
    /// evaluation and the structured data (None: by talk time).
    analysis: Option<(Option<bool>, Value)>,
}

impl CallRecord {
    fn phase(&self, now: Instant) -> Phase {
        let elapsed = ms_between(self.created_instant, now);
        match self.cut {
            Some((at, reason)) if elapsed >= at => {
                let before = self.plan.phase_at(at);
                if before.ended.is_some() {
                    return self.plan.phase_at(elapsed);
                }
                let talk = before.started_ms.map_or(0, |s| at.saturating_sub(s));
                Phase {
                    status: "ended",
                    updated_ms: at,
                    started_ms: before.started_ms,
                    ended: Some((reason, at, talk)),
                }
            }
            _ => self.plan.phase_at(elapsed),
        }
    }

    /// Whether the call asked for `transcript` messages (`assistantOverrides.serverMessages`).
    fn asked_for_transcripts(&self) -> bool {
        self.request
            .body
            .get("assistantOverrides")
            .and_then(|o| o.get("serverMessages"))
            .and_then(Value::as_array)
            .is_some_and(|m| {
                m.iter().any(|v| {
                    matches!(
                        v.as_str(),
                        Some("transcript") | Some("transcript[transcriptType=\"final\"]")
                    )
                })
            })
    }

    /// What was said by `now`: the script's turns since the answer, and operators' lines.
    fn messages(&self, now: Instant) -> Vec<Value> {
        let phase = self.phase(now);
        let Some(started) = phase.started_ms else {
            return Vec::new();
        };
        let until = phase
            .ended
            .map_or(ms_between(self.created_instant, now), |(_, at, _)| at);
        let mut lines = super::monitor::script(started, until, self.loops);
        for (at, text) in &self.said {
            lines.push((*at, "bot", text.clone()));
        }
        lines.sort_by_key(|(at, _, _)| *at);
        lines
            .into_iter()
            .map(|(at, role, text)| {
                json!({
                    "role": role,
                    "message": text,
                    "time": self.wall(at).timestamp_millis(),
                    "endTime": self.wall(at + 1_500).timestamp_millis(),
                    "secondsFromStart": (at.saturating_sub(started)) as f64 / 1000.0,
                })
            })
            .collect()
    }

    fn wall(&self, offset_ms: u64) -> DateTime<Utc> {
        let offset = TimeDelta::milliseconds(i64::try_from(offset_ms).unwrap_or(0));
        self.created_at
            .checked_add_signed(offset)
            .unwrap_or(self.created_at)
    }

    fn vanished(&self, now: Instant) -> bool {
        self.vanishes_at.is_some_and(|at| now >= at)
    }

    fn updated_at(&self, now: Instant) -> DateTime<Utc> {
        self.wall(self.updated_ms(now))
    }

    /// The last change: a status change, or the final cost appearing after the end.
    fn updated_ms(&self, now: Instant) -> u64 {
        let phase = self.phase(now);
        match phase.ended {
            Some((_, ended_ms, talk_ms)) if talk_ms > 0 && self.cost_final_ms > 0 => {
                let final_ms = ended_ms + self.cost_final_ms;
                if ms_between(self.created_instant, now) >= final_ms {
                    final_ms
                } else {
                    phase.updated_ms
                }
            }
            _ => phase.updated_ms,
        }
    }

    /// The Vapi `Call` object as of `now`: the accepted request echoed, plus server fields.
    fn to_json(&self, now: Instant) -> Map<String, Value> {
        let phase = self.phase(now);
        let mut call = self.request.body.clone();
        let mut put = |key: &str, value: Value| {
            call.insert(key.to_owned(), value);
        };
        put("id", json!(self.id));
        put("orgId", json!(ORG_ID));
        put("type", json!("outboundPhoneCall"));
        put("createdAt", json!(iso(self.created_at)));
        put("updatedAt", json!(iso(self.wall(self.updated_ms(now)))));
        put("status", json!(phase.status));
        if let Some(provider_id) = &self.provider_id {
            put("phoneCallProvider", json!("twilio"));
            put("phoneCallTransport", json!("pstn"));
            put("phoneCallProviderId", json!(provider_id));
        }
        if let Some(started_ms) = phase.started_ms {
            put("startedAt", json!(iso(self.wall(started_ms))));
            if phase.ended.is_none() {
                // Vapi's cost grows while the call talks.
                let talked = ms_between(self.created_instant, now).saturating_sub(started_ms);
                put("cost", json!(cost_usd(talked)));
            }
            put("messages", Value::Array(self.messages(now)));
        }
        if let Some(base) = &self.monitor_base {
            put(
                "monitor",
                json!({
                    "listenUrl": format!("{}/{}/{}/listen", base.replacen("http", "ws", 1), self.id, self.token),
                    "controlUrl": format!("{base}/{}/{}/control", self.id, self.token),
                }),
            );
        }
        if let Some((reason, ended_ms, talk_ms)) = phase.ended {
            put("endedReason", json!(reason));
            put("endedAt", json!(iso(self.wall(ended_ms))));
            let final_cost = cost_usd(talk_ms);
            let is_final = self.cost_final_ms == 0
                || ms_between(self.created_instant, now) >= ended_ms + self.cost_final_ms;
            let cost = if is_final {
                final_cost
            } else {
                // Before the end-of-call analysis is billed.
                (final_cost * 0.7 * 10_000.0).round() / 10_000.0
            };
            put("cost", json!(cost));
            // Vapi's analysis comes with the final cost (it is what is billed last).
            if is_final && talk_ms > 0 {
                put("analysis", self.analysis_json(reason, talk_ms));
            }
        }
        call
    }

    /// The call's analysis (summary, success evaluation, structured data), as its
    /// end-of-call report and, once final, the Call object carry it.
    fn analysis_json(&self, reason: &str, talk_ms: u64) -> Value {
        let talked = talk_ms > 0;
        let (success, structured) = match &self.analysis {
            Some((success, structured)) => (*success, structured.clone()),
            None => (
                Some(talk_ms >= 10_000),
                json!({"interested": talk_ms >= 10_000, "do_not_call": false}),
            ),
        };
        json!({
            "summary": talked.then(|| format!("The customer talked for {} s ({reason}).", talk_ms / 1000)),
            "successEvaluation": talked.then(|| success.map(|s| s.to_string())).flatten(),
            "structuredData": talked.then_some(structured),
        })
    }
}

/// All mutable simulator state, behind one mutex (never held across an await).
pub struct SimState {
    rng: StdRng,
    seed: Option<u64>,
    calls: HashMap<String, usize>,
    /// Records in creation order (newest last), indexed by `calls`.
    records: Vec<CallRecord>,
    /// Creates of the last second (for `max_creates_per_second`).
    recent_creates: std::collections::VecDeque<Instant>,
    /// End instants of calls that may still be live: a min-heap, so counting the
    /// active calls only pops the ones that ended since the last look.
    active_ends: BinaryHeap<Reverse<Instant>>,
    /// Calls actually dialled (not refused): what `credit_calls` is measured against.
    placed: u64,
    /// Calls placed per phone number (what `number_daily_limit` is measured against).
    placed_by_number: HashMap<String, u64>,
    /// Calls placed per customer number (what `scripts` follow).
    placed_to: HashMap<String, u32>,
    stats: SimStats,
    /// Where created calls are announced for their server messages (when posting them).
    webhooks: Option<tokio::sync::mpsc::UnboundedSender<String>>,
    /// `http://host:port/monitor`: the base of every call's monitor URLs.
    monitor_base: Option<String>,
    /// Planned ends of calls ended early through their control URL, still in the future:
    /// `active_ends` counts them until then, so they are taken off its count.
    cut_ends: BinaryHeap<Reverse<Instant>>,
}

impl SimState {
    /// The customer number of a placed call and which call to it this is (1: the first).
    fn next_attempt_to(&mut self, request: &CallRequest) -> (String, u32) {
        let customer = request
            .body
            .get("customer")
            .and_then(|c| c.get("number"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let n = self.placed_to.entry(customer.clone()).or_insert(0);
        *n += 1;
        (customer, *n)
    }

    /// A planned voicemail: the message left (the request carried one) or hung up on.
    fn count_voicemail(&mut self, plan: &Plan, request: &CallRequest) {
        let Plan::Dialled {
            outcome:
                Outcome::Answered {
                    reason: "voicemail",
                    ..
                },
            ..
        } = plan
        else {
            return;
        };
        let message = request
            .body
            .get("assistantOverrides")
            .and_then(|o| o.get("voicemailMessage"))
            .and_then(Value::as_str);
        if message.is_some_and(|m| !m.is_empty()) {
            self.stats.voicemail_messages_left += 1;
        } else {
            self.stats.voicemail_hang_ups += 1;
        }
    }

    pub fn new(seed: Option<u64>) -> SimState {
        SimState {
            rng: rng_for(seed),
            seed,
            calls: HashMap::new(),
            records: Vec::new(),
            recent_creates: std::collections::VecDeque::new(),
            active_ends: BinaryHeap::new(),
            placed: 0,
            placed_by_number: HashMap::new(),
            placed_to: HashMap::new(),
            webhooks: None,
            stats: SimStats::default(),
            monitor_base: None,
            cut_ends: BinaryHeap::new(),
        }
    }

    /// Re-seed only when the seed actually changed, so a live `set_config` that
    /// only flips a fault knob keeps the random sequence going.
    pub fn reseed(&mut self, seed: Option<u64>) {
        if seed != self.seed {
            self.seed = seed;
            self.rng = rng_for(seed);
        }
    }

    pub fn counters(&mut self) -> &mut SimStats {
        &mut self.stats
    }

    /// A uniform draw in [0, 1) from the (seeded) generator.
    pub fn roll(&mut self) -> f64 {
        self.rng.random::<f64>()
    }

    /// Draw (and count) the fault for one POST /call.
    pub fn draw_fault(&mut self, config: &SimConfig) -> Option<Fault> {
        let fault = faults::draw(&mut self.rng, config);
        let counter = match fault {
            None => return None,
            Some(Fault::RateLimited) => &mut self.stats.faults_429,
            Some(Fault::Unavailable) => &mut self.stats.faults_503,
            Some(Fault::GatewayTimeout) => &mut self.stats.faults_504,
            Some(Fault::Hang) => &mut self.stats.faults_timeout,
            Some(Fault::LateCreate) => &mut self.stats.late_created,
            Some(Fault::ServerErrorAfterCreate) => &mut self.stats.faults_5xx_after_create,
        };
        *counter += 1;
        fault
    }

    /// Create a call and return the 201 body: the Call plus `subscriptionLimits`.
    pub fn create(
        &mut self,
        request: CallRequest,
        config: &SimConfig,
        now: Instant,
        wall: DateTime<Utc>,
    ) -> Value {
        let active = self.active(now);
        let limit = u64::from(config.concurrency_limit);
        let out_of_credit = config.credit_calls > 0 && self.placed >= config.credit_calls;
        let blocked = !out_of_credit && limit > 0 && active >= limit;
        let number_limited = config.number_daily_limit > 0
            && self
                .placed_by_number
                .get(&request.phone_number_id)
                .is_some_and(|n| *n >= config.number_daily_limit);
        // A scripted number's end-of-call report (None inside: a voicemail, nothing said).
        let mut scripted: Option<Option<(Option<bool>, Value)>> = None;
        let plan = if number_limited {
            Plan::Refused {
                reason: NUMBER_LIMIT_REASON,
            }
        } else if out_of_credit {
            Plan::Refused {
                reason: CREDITS_REASON,
            }
        } else if blocked {
            self.stats.concurrency_blocked += 1;
            Plan::Refused {
                reason: CONCURRENCY_REASON,
            }
        } else if self.rng.random::<f64>() < config.fault_start_error {
            self.stats.start_errors += 1;
            let reason = START_ERRORS[self.rng.random_range(0..START_ERRORS.len())];
            Plan::Refused { reason }
        } else {
            self.placed += 1;
            *self
                .placed_by_number
                .entry(request.phone_number_id.clone())
                .or_insert(0) += 1;
            let plan = Plan::draw(&mut self.rng, config);
            let (customer, attempt) = self.next_attempt_to(&request);
            if let Some(script) = config.scripts.get(&customer) {
                scripted = Some(script.conversation(attempt));
                script.plan(plan, attempt)
            } else if self.rng.random::<f64>() < config.fault_pipeline {
                self.stats.pipeline_errors += 1;
                let reason = PIPELINE_ERRORS[self.rng.random_range(0..PIPELINE_ERRORS.len())];
                plan.failing_early(reason, self.rng.random_range(300..2_500))
            } else {
                plan
            }
        };
        let analysis = match scripted {
            Some(said) => said,
            None => config
                .assistant_success
                .get(&request.assistant_id)
                .map(|rate| (Some(self.rng.random::<f64>() < *rate), json!({}))),
        };
        self.count_voicemail(&plan, &request);
        let vanishes_at = (self.rng.random::<f64>() < config.fault_vanish).then(|| {
            self.stats.vanished += 1;
            now + Duration::from_millis(config.vanish_after_ms)
        });
        self.count_create_rate(now);
        let end_ms = plan.end_ms();
        if end_ms > 0 {
            self.active_ends
                .push(Reverse(now + Duration::from_millis(end_ms)));
        }
        let active_after = self.active_ends.len() as u64;
        self.stats.peak_concurrency = self.stats.peak_concurrency.max(active_after);

        let (id, provider_id, token) = self.draw_ids(matches!(plan, Plan::Dialled { .. }));
        self.stats.calls_created += 1;
        if let Some(name) = &request.name {
            *self.stats.created_per_name.entry(name.clone()).or_default() += 1;
        }
        let loops = self.rng.random::<f64>() < config.assistant_loops;
        let record = CallRecord {
            token,
            cut: None,
            loops,
            said: Vec::new(),
            monitor_base: self.monitor_base.clone(),
            id: id.to_string(),
            vanishes_at,
            cost_final_ms: config.cost_final_ms,
            created_instant: now,
            created_at: DateTime::from_timestamp_millis(wall.timestamp_millis()).unwrap_or(wall),
            request,
            plan,
            provider_id,
            analysis,
        };
        let mut body = record.to_json(now);
        if config.webhook_url.is_some()
            && let Some(webhooks) = &self.webhooks
        {
            // The poster may be gone at shutdown: messages are then simply not sent.
            let _ = webhooks.send(record.id.clone());
        }
        self.calls.insert(record.id.clone(), self.records.len());
        self.records.push(record);

        body.insert(
            "subscriptionLimits".into(),
            subscription_limits(blocked, limit, active_after),
        );
        Value::Object(body)
    }

    /// A call's id, its carrier id (when it is dialled) and its monitor token. They come
    /// from the seeded RNG, in this order, so a seeded run is reproducible end to end.
    fn draw_ids(&mut self, dialled: bool) -> (uuid::Uuid, Option<String>, String) {
        let id = uuid::Builder::from_random_bytes(self.rng.random()).into_uuid();
        let provider_id = dialled.then(|| {
            let sid = uuid::Builder::from_random_bytes(self.rng.random()).into_uuid();
            format!("CA{}", sid.simple())
        });
        let token = uuid::Builder::from_random_bytes(self.rng.random())
            .into_uuid()
            .simple()
            .to_string();
        (id, provider_id, token)
    }

    /// The most creates in any one-second window.
    fn count_create_rate(&mut self, now: Instant) {
        self.recent_creates.push_back(now);
        while self
            .recent_creates
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= Duration::from_secs(1))
        {
            self.recent_creates.pop_front();
        }
        self.stats.max_creates_per_second = self
            .stats
            .max_creates_per_second
            .max(self.recent_creates.len() as u64);
    }

    /// Announce created calls on `sender` so their server messages get posted.
    pub fn post_webhooks_to(&mut self, sender: tokio::sync::mpsc::UnboundedSender<String>) {
        self.webhooks = Some(sender);
    }

    /// The server messages Vapi would post for this call, with when each change happens:
    /// a `status-update` per status, then the `end-of-call-report` once the final cost is
    /// known. Vanishing does not stop them (the call existed).
    pub fn message_schedule(&self, id: &str) -> Vec<(Instant, MessageKind)> {
        let Some(record) = self.calls.get(id).and_then(|i| self.records.get(*i)) else {
            return Vec::new();
        };
        let at = |ms: u64| record.created_instant + Duration::from_millis(ms);
        let mut schedule = Vec::new();
        if let Some((cut_ms, _)) = record.cut {
            // Ended through the control URL: what is left to say is the end.
            let talked = record.phase(at(cut_ms)).started_ms.is_some();
            schedule.push((at(cut_ms), MessageKind::Status));
            let report = cut_ms + if talked { record.cost_final_ms } else { 0 };
            schedule.push((at(report), MessageKind::EndOfCallReport));
            return schedule;
        }
        let end_ms = record.plan.end_ms();
        if let Some(started) = record.phase(at(end_ms)).started_ms {
            let transcripts = record.asked_for_transcripts();
            for turn in super::monitor::turns(started, end_ms) {
                schedule.push((at(turn), MessageKind::Conversation));
                if transcripts {
                    schedule.push((at(turn), MessageKind::Transcript));
                }
            }
        }
        if let Plan::Dialled {
            queue_ms,
            ring_ms,
            outcome,
        } = record.plan
        {
            schedule.push((at(0), MessageKind::Status));
            schedule.push((at(queue_ms), MessageKind::Status));
            if matches!(outcome, Outcome::Answered { .. }) {
                schedule.push((at(queue_ms + ring_ms), MessageKind::Status));
            }
        }
        schedule.push((at(end_ms), MessageKind::Status));
        let talked = matches!(
            record.plan,
            Plan::Dialled {
                outcome: Outcome::Answered { .. },
                ..
            }
        );
        let report_ms = if talked {
            end_ms + record.cost_final_ms
        } else {
            end_ms
        };
        schedule.push((at(report_ms), MessageKind::EndOfCallReport));
        schedule
    }

    /// The server message of `kind` for this call as of `at` (Vapi's `ServerMessage*`
    /// shapes: `{"message": {"type", "timestamp", "call", ...}}`).
    pub fn message(&self, id: &str, at: Instant, kind: MessageKind) -> Option<Value> {
        let record = self.records.get(*self.calls.get(id)?)?;
        let call = record.to_json(at);
        let phase = record.phase(at);
        let timestamp = record
            .wall(ms_between(record.created_instant, at))
            .timestamp_millis();
        let mut message = Map::new();
        message.insert("timestamp".into(), json!(timestamp));
        match kind {
            MessageKind::Status => {
                message.insert("type".into(), json!("status-update"));
                message.insert("status".into(), json!(phase.status));
                if let Some((reason, _, _)) = phase.ended {
                    message.insert("endedReason".into(), json!(reason));
                }
            }
            MessageKind::Conversation => {
                message.insert("type".into(), json!("conversation-update"));
                message.insert("messages".into(), Value::Array(record.messages(at)));
            }
            MessageKind::Transcript => {
                let newest = record.messages(at).pop()?;
                let role = match newest.get("role").and_then(Value::as_str) {
                    Some("user") => "user",
                    _ => "assistant",
                };
                message.insert("type".into(), json!("transcript"));
                message.insert("role".into(), json!(role));
                message.insert("transcriptType".into(), json!("final"));
                message.insert(
                    "transcript".into(),
                    newest.get("message").cloned().unwrap_or(Value::Null),
                );
            }
            MessageKind::EndOfCallReport => {
                let (reason, _, talk_ms) = phase.ended?;
                message.insert("type".into(), json!("end-of-call-report"));
                message.insert("endedReason".into(), json!(reason));
                for key in ["cost", "startedAt", "endedAt"] {
                    if let Some(value) = call.get(key) {
                        message.insert(key.into(), value.clone());
                    }
                }
                let talked = talk_ms > 0;
                let recording = talked.then(|| format!("https://storage.vapi.ai/{id}-mono.wav"));
                let messages = record.messages(at);
                message.insert("analysis".into(), record.analysis_json(reason, talk_ms));
                message.insert(
                    "artifact".into(),
                    json!({"recordingUrl": recording, "messages": messages, "transcript": ""}),
                );
            }
        }
        message.insert("call".into(), Value::Object(call));
        Some(json!({ "message": Value::Object(message) }))
    }

    /// The Call with this id as of `now`.
    pub fn get(&self, id: &str, now: Instant) -> Option<Value> {
        let index = *self.calls.get(id)?;
        self.records
            .get(index)
            .filter(|r| !r.vanished(now))
            .map(|r| Value::Object(r.to_json(now)))
    }

    /// GET /call: matching calls as of `now`, at most `limit`, in the configured order
    /// (Vapi documents none: a client must not rely on one).
    pub fn list(
        &mut self,
        filter: &ListFilter,
        now: Instant,
        order: super::ListOrder,
    ) -> Vec<Value> {
        let same = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        let mut hits: Vec<&CallRecord> = self
            .records
            .iter()
            .rev()
            .filter(|r| {
                !r.vanished(now)
                    && same(&filter.id, &r.id)
                    && same(&filter.assistant_id, &r.request.assistant_id)
                    && same(&filter.phone_number_id, &r.request.phone_number_id)
                    && filter.created.admits(r.created_at)
                    && filter.updated.admits(r.updated_at(now))
            })
            .collect();
        match order {
            super::ListOrder::Newest => {}
            super::ListOrder::Oldest => hits.reverse(),
            super::ListOrder::Random => {
                use rand::seq::SliceRandom;
                hits.shuffle(&mut self.rng);
            }
        }
        hits.into_iter()
            .take(filter.limit)
            .map(|r| Value::Object(r.to_json(now)))
            .collect()
    }

    /// A consistent copy of the counters, with `active_now` as of `now`.
    pub fn snapshot(&mut self, now: Instant) -> SimStats {
        let active_now = self.active(now);
        SimStats {
            active_now,
            ..self.stats.clone()
        }
    }

    /// Calls not ended at `now` (drops the ones that ended since the last look).
    fn active(&mut self, now: Instant) -> u64 {
        for heap in [&mut self.active_ends, &mut self.cut_ends] {
            while heap.peek().is_some_and(|Reverse(end)| *end <= now) {
                heap.pop();
            }
        }
        self.active_ends.len().saturating_sub(self.cut_ends.len()) as u64
    }

    /// Where monitor URLs point from now on.
    pub fn set_monitor_base(&mut self, base: String) {
        self.monitor_base = Some(base);
    }

    /// Whether `token` opens call `id`'s monitor, and the call is live at `now`:
    /// None for a wrong id or token (404), Some(false) once it ended.
    pub fn monitor_live(&self, id: &str, token: &str, now: Instant) -> Option<bool> {
        let record = self.records.get(*self.calls.get(id)?)?;
        (record.token == token).then(|| record.phase(now).ended.is_none())
    }

    /// A control message for call `id` (already validated): its effect and the record.
    /// Err(()) when the call has ended.
    pub fn control(&mut self, id: &str, body: &Value, now: Instant) -> Result<(), ()> {
        let Some(index) = self.calls.get(id).copied() else {
            return Err(());
        };
        self.stats
            .control_messages
            .push(json!({"callId": id, "body": body}));
        let record = &mut self.records[index];
        if record.phase(now).ended.is_some() {
            return Err(());
        }
        let elapsed = ms_between(record.created_instant, now);
        let end_at = |delay: u64, reason: &'static str| (elapsed + delay, reason);
        let cut = match body.get("type").and_then(Value::as_str) {
            Some("end-call") => Some(end_at(0, "manually-canceled")),
            Some("say") => {
                let text = body.get("content").and_then(Value::as_str).unwrap_or("");
                record.said.push((elapsed, text.to_string()));
                body.get("endCallAfterSpoken")
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
                    .then(|| end_at(1_500, "assistant-ended-call-after-message-spoken"))
            }
            Some("transfer") => Some(end_at(500, "assistant-forwarded-call")),
            _ => None,
        };
        if let Some(cut) = cut {
            let planned = record.created_instant + Duration::from_millis(record.plan.end_ms());
            let first = record.cut.is_none();
            record.cut = Some(
                record
                    .cut
                    .map_or(cut, |old| if old.0 <= cut.0 { old } else { cut }),
            );
            if first && planned > now {
                self.cut_ends.push(Reverse(planned));
                self.active_ends.push(Reverse(
                    record.created_instant + Duration::from_millis(cut.0),
                ));
            }
            if let Some(webhooks) = &self.webhooks {
                let _ = webhooks.send(id.to_string());
            }
        }
        Ok(())
    }
}

fn rng_for(seed: Option<u64>) -> StdRng {
    match seed {
        Some(seed) => StdRng::seed_from_u64(seed),
        None => StdRng::from_rng(&mut rand::rng()),
    }
}

fn ms_between(from: Instant, to: Instant) -> u64 {
    u64::try_from(to.saturating_duration_since(from).as_millis()).unwrap_or(u64::MAX)
}

/// Vapi's timestamp format: `2026-11-24T10:00:00.123Z`.
pub fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A create's `subscriptionLimits`: Vapi's remainingConcurrentCalls is what is left of the
/// quota counting this call (`active_after`).
fn subscription_limits(blocked: bool, limit: u64, active_after: u64) -> Value {
    let mut limits = Map::new();
    limits.insert("concurrencyBlocked".into(), json!(blocked));
    if limit > 0 {
        limits.insert("concurrencyLimit".into(), json!(limit));
        limits.insert(
            "remainingConcurrentCalls".into(),
            json!(limit.saturating_sub(active_after)),
        );
    }
    Value::Object(limits)
}
#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::validate::parse_create;
    use super::*;

    fn request(name: &str) -> CallRequest {
        let body = json!({
            "assistantId": "a1",
            "phoneNumberId": "p1",
            "name": name,
            "customer": {"number": "+14155550123"}
        });
        parse_create(body.to_string().as_bytes()).unwrap()
    }

    fn config() -> SimConfig {
        SimConfig {
            queue_ms: 100,
            ring_ms: 200,
            talk_min_ms: 1_000,
            talk_max_ms: 1_000,
            seed: Some(3),
            ..SimConfig::default()
        }
    }

    #[test]
    fn answered_lifecycle() {
        let plan = Plan::Dialled {
            queue_ms: 100,
            ring_ms: 200,
            outcome: Outcome::Answered {
                talk_ms: 60_000,
                reason: "customer-ended-call",
            },
        };
        assert_eq!(plan.phase_at(0).status, "queued");
        assert_eq!(plan.phase_at(100).status, "ringing");
        let talking = plan.phase_at(300);
        assert_eq!(talking.status, "in-progress");
        assert_eq!(talking.started_ms, Some(300));
        let ended = plan.phase_at(60_300);
        assert_eq!(ended.status, "ended");
        assert_eq!(ended.ended, Some(("customer-ended-call", 60_300, 60_000)));
        assert_eq!(plan.end_ms(), 60_300);
        assert_eq!(cost_usd(60_000), 0.11);
    }

    #[test]
    fn unanswered_never_starts() {
        let plan = Plan::Dialled {
            queue_ms: 10,
            ring_ms: 10,
            outcome: Outcome::Unanswered {
                reason: "customer-busy",
            },
        };
        let ended = plan.phase_at(25);
        assert_eq!(ended.started_ms, None);
        assert_eq!(ended.ended, Some(("customer-busy", 20, 0)));
        assert_eq!(cost_usd(0), 0.0);
    }

    #[test]
    fn outcome_mix_is_realistic() {
        let mut rng = StdRng::seed_from_u64(9);
        let mut counts: HashMap<&str, u32> = HashMap::new();
        for _ in 0..10_000 {
            let phase = Plan::draw(&mut rng, &config()).phase_at(u64::MAX / 2);
            *counts.entry(phase.ended.unwrap().0).or_default() += 1;
        }
        let share = |reason| counts[reason] as f64 / 10_000.0;
        assert!((share("customer-ended-call") - 0.45).abs() < 0.03);
        assert!((share("assistant-ended-call") - 0.25).abs() < 0.03);
        assert!((share("voicemail") - 0.10).abs() < 0.02);
        assert!((share("customer-did-not-answer") - 0.12).abs() < 0.02);
        assert!((share("customer-busy") - 0.08).abs() < 0.02);
    }

    #[test]
    fn scripted_numbers_and_assistants_say_what_they_are_told() {
        let mut cfg = config();
        cfg.scripts.insert(
            "+14155550123".into(),
            crate::NumberScript {
                voicemail_first: 1,
                talk_ms: 4_000,
                conversations: vec![
                    (Some(false), json!({"callback_at": "15:00"})),
                    (Some(true), json!({"appointment_booked": true})),
                ],
            },
        );
        cfg.assistant_success.insert("a2".into(), 1.0);
        let mut state = SimState::new(Some(5));
        let t0 = Instant::now();
        let wall = Utc::now();
        let report = |state: &SimState, id: &Value| {
            let id = id.as_str().unwrap();
            state
                .message(
                    id,
                    t0 + Duration::from_secs(30),
                    MessageKind::EndOfCallReport,
                )
                .unwrap()["message"]
                .clone()
        };
        // 1: a voicemail box (no message asked for: hung up); 2 and 3: the script's
        // conversations; 4: the last one again.
        let ids: Vec<Value> = (0..4)
            .map(|i| state.create(request(&format!("s{i}")), &cfg, t0, wall)["id"].clone())
            .collect();
        assert_eq!(report(&state, &ids[0])["endedReason"], "voicemail");
        let second = report(&state, &ids[1]);
        assert_eq!(second["endedReason"], "customer-ended-call");
        assert_eq!(second["analysis"]["successEvaluation"], "false");
        assert_eq!(second["analysis"]["structuredData"]["callback_at"], "15:00");
        let third = report(&state, &ids[2]);
        assert_eq!(third["analysis"]["successEvaluation"], "true");
        assert_eq!(
            third["analysis"]["structuredData"]["appointment_booked"],
            true
        );
        assert_eq!(report(&state, &ids[3])["analysis"], third["analysis"]);
        assert_eq!(state.snapshot(t0).voicemail_hang_ups, 1);
        // Another number with assistant a2 (success rate 1): every conversation succeeds.
        let body = json!({
            "assistantId": "a2",
            "phoneNumberId": "p1",
            "name": "x",
            "customer": {"number": "+14155550999"},
            "assistantOverrides": {"voicemailMessage": "hello"}
        });
        let mut judged = 0;
        for i in 0..30 {
            let req = parse_create(body.to_string().as_bytes()).unwrap();
            // One at a time, each after the last ended (the account's concurrency).
            let at = t0 + Duration::from_secs(60 * (i + 1));
            let id = state.create(req, &cfg, at, wall)["id"].clone();
            let r = state
                .message(
                    id.as_str().unwrap(),
                    at + Duration::from_secs(30),
                    MessageKind::EndOfCallReport,
                )
                .unwrap()["message"]
                .clone();
            if r["endedReason"] == "voicemail" || r["analysis"]["summary"].is_null() {
                continue;
            }
            judged += 1;
            assert_eq!(r["analysis"]["successEvaluation"], "true", "{r}");
        }
        assert!(judged > 10, "{judged}");
        assert!(state.snapshot(t0).voicemail_messages_left > 0);
    }

    #[test]
    fn seeded_runs_are_reproducible() {
        let now = Instant::now();
        let wall = Utc::now();
        let run = || {
            let mut state = SimState::new(Some(11));
            (0..5)
                .map(|i| {
                    state.create(request(&format!("r{i}")), &config(), now, wall)["id"].clone()
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(), run());
    }

    #[test]
    fn concurrency_and_active_count_follow_time() {
        let cfg = SimConfig {
            concurrency_limit: 1,
            ..config()
        };
        let mut state = SimState::new(Some(1));
        let t0 = Instant::now();
        let wall = Utc::now();
        let first = state.create(request("a"), &cfg, t0, wall);
        assert_eq!(first["subscriptionLimits"]["remainingConcurrentCalls"], 0);
        let second = state.create(request("b"), &cfg, t0, wall);
        assert_eq!(second["endedReason"], CONCURRENCY_REASON);
        assert_eq!(second["cost"], 0.0);
        assert_eq!(state.snapshot(t0).active_now, 1);
        // Every plan ends by queue + ring + talk = 1.3 s.
        let later = t0 + Duration::from_millis(1_300);
        assert_eq!(state.snapshot(later).active_now, 0);
        let third = state.create(request("c"), &cfg, later, wall);
        assert_eq!(third["subscriptionLimits"]["concurrencyBlocked"], false);
        let stats = state.snapshot(later);
        assert_eq!(stats.peak_concurrency, 1);
        assert_eq!(stats.concurrency_blocked, 1);
        assert_eq!(stats.calls_created, 3);
    }

    #[test]
    fn credits_run_out() {
        let cfg = SimConfig {
            credit_calls: 2,
            concurrency_limit: 0,
            ..config()
        };
        let mut state = SimState::new(Some(1));
        let now = Instant::now();
        let calls: Vec<Value> = (0..3)
            .map(|i| state.create(request(&i.to_string()), &cfg, now, Utc::now()))
            .collect();
        let reasons: Vec<&Value> = calls.iter().map(|c| &c["endedReason"]).collect();
        assert_eq!(
            reasons,
            [&Value::Null, &Value::Null, &json!(CREDITS_REASON)]
        );
        // Unlimited concurrency: no limit fields, never blocked.
        assert_eq!(
            calls[2]["subscriptionLimits"],
            json!({"concurrencyBlocked": false})
        );
        assert_eq!(
            state.get(calls[2]["id"].as_str().unwrap(), now).unwrap()["status"],
            "ended"
        );
    }
}
