//! `switchboard check CAMPAIGN` (and `campaign start` unless `--no-check`): what would go
//! wrong if the campaign dialled now, found before anyone is called. At Vapi: the key, every
//! assistant of the campaign and every number of its pool. In the store: the `{{variables}}`
//! the assistants' prompts use against every waiting contact, contacts without a zone, on
//! the do-not-call list, at a cap or without a required consent, and zones no window
//! reaches. Then when the list will have been called, honouring windows and the schedule.
//! Each finding is one line with a severity; a blocker means calls would fail or go wrong.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::Config;
use crate::model::forecast::{self, Forecast, Pace};
use crate::model::policy::schedule::Schedule;
use crate::model::template::{self, Needed};
use crate::store::launch::{Count, Lacking};
use crate::store::policy::CampaignRules;
use crate::store::{Store, StoreError};
use crate::vapi::{ErrorClass, VapiClient, VapiError};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Calls would fail, or say the wrong thing: `check` exits 1, `campaign start` refuses.
    Blocker,
    /// Some contacts will be skipped, deferred or never reached.
    Warning,
    /// What the operator should know (the estimate, a closed window).
    Note,
}

/// What a finding is about (scripts read this, never the message).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Topic {
    ApiKey,
    Vapi,
    Assistant,
    PhoneNumber,
    Contacts,
    Variable,
    /// A contact's number (not one of the campaign's phone numbers).
    ContactNumber,
    Zone,
    Window,
    DoNotCall,
    Cap,
    Consent,
    Finish,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub topic: Topic,
    pub message: String,
    /// Contacts it concerns, when it is about contacts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contacts: Option<i64>,
    /// One of them: `contact #ID (+NUMBER)`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub example: Option<String>,
}

impl Finding {
    fn new(severity: Severity, topic: Topic, message: impl Into<String>) -> Finding {
        Finding {
            severity,
            topic,
            message: message.into(),
            contacts: None,
            example: None,
        }
    }

    fn about(mut self, count: &Count) -> Finding {
        self.contacts = Some(count.count);
        self.example = count
            .example
            .as_ref()
            .map(|(id, phone)| format!("contact #{id} ({phone})"));
        self
    }

    /// `blocker: …` with the example, on one line.
    pub fn line(&self) -> String {
        let severity = match self.severity {
            Severity::Blocker => "blocker",
            Severity::Warning => "warning",
            Severity::Note => "note",
        };
        match &self.example {
            Some(example) => format!("{severity}: {} (e.g. {example})", self.message),
            None => format!("{severity}: {}", self.message),
        }
    }
}

/// The estimate, for `--json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimate {
    pub waiting: u64,
    pub reached: u64,
    pub first_call: Option<DateTime<Utc>>,
    pub finish: Option<DateTime<Utc>>,
    pub calls_per_second: f64,
    pub call_secs: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub campaign: String,
    /// No blocker.
    pub ok: bool,
    pub findings: Vec<Finding>,
    pub estimate: Option<Estimate>,
}

/// What the check is asked besides the campaign.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// The expected call length (default: the campaign's own calls, else two minutes).
    pub call_secs: Option<f64>,
    /// The schedule about to be set (`campaign start --at --end-by`), else the stored one.
    pub schedule: Option<Schedule>,
}

/// Used when the campaign has no answered call yet to learn the length from.
const DEFAULT_CALL_SECS: f64 = 120.0;

/// Checks a campaign. `vapi` is the client, or why there is none (the key is not set).
pub async fn check_campaign(
    store: &Store,
    vapi: Result<&VapiClient, String>,
    config: &Config,
    name: &str,
    options: &CheckOptions,
    now: DateTime<Utc>,
) -> Result<Report, StoreError> {
    let campaign = store.campaign_by_name(name).await?;
    let rules = store.campaign_rules(campaign.id).await?;
    let mut findings = Vec::new();
    let needed = match vapi {
        Ok(vapi) => {
            at_vapi(
                store,
                vapi,
                config,
                campaign.id,
                &campaign.assistant_id,
                &mut findings,
            )
            .await?
        }
        Err(why) => {
            // The engine may run elsewhere with the key: not checked is not wrong.
            findings.push(Finding::new(
                Severity::Warning,
                Topic::ApiKey,
                format!("{why}: the assistant and numbers were not checked at Vapi"),
            ));
            BTreeMap::new()
        }
    };
    if campaign.contacts_total == 0 {
        findings.push(Finding::new(
            Severity::Blocker,
            Topic::Contacts,
            format!(
                "no contacts: import some first with `switchboard contacts import {} FILE.csv`",
                campaign.name
            ),
        ));
    } else {
        contacts(store, campaign.id, &rules, &needed, now, &mut findings).await?;
    }
    let schedule = options.schedule.unwrap_or_else(|| rules.schedule());
    let estimate = finish(
        store,
        config,
        campaign.id,
        &rules,
        &schedule,
        options,
        now,
        &mut findings,
    )
    .await?;
    findings.sort_by_key(|f| f.severity);
    Ok(Report {
        campaign: campaign.name,
        ok: !findings.iter().any(|f| f.severity == Severity::Blocker),
        findings,
        estimate,
    })
}

/// The assistants and numbers at Vapi; returns the variables each assistant's texts need
/// (by what they need, the assistants that need it).
async fn at_vapi(
    store: &Store,
    vapi: &VapiClient,
    config: &Config,
    campaign_id: i64,
    campaign_assistant: &str,
    findings: &mut Vec<Finding>,
) -> Result<BTreeMap<Needed, Vec<String>>, StoreError> {
    let arms = store.campaign_arms(campaign_id).await?;
    let mut assistants: Vec<String> = arms
        .iter()
        .filter(|a| a.status != crate::model::ArmStatus::Stopped)
        .map(|a| {
            crate::model::arms::assistant_and_version(&a.assistant_id)
                .0
                .to_string()
        })
        .collect();
    if assistants.is_empty() {
        assistants.push(campaign_assistant.to_string());
    }
    assistants.dedup();
    let mut needed: BTreeMap<Needed, Vec<String>> = BTreeMap::new();
    for id in &assistants {
        match read(config, || vapi.get_assistant(id)).await {
            Ok(assistant) => {
                for text in assistant.templates() {
                    for need in template::needed(text) {
                        let users = needed.entry(need).or_default();
                        if !users.contains(id) {
                            users.push(id.clone());
                        }
                    }
                }
            }
            Err(e) => {
                let key_refused = e.class() == ErrorClass::Auth;
                findings.push(refusal(Topic::Assistant, "assistant", id, &e));
                if key_refused {
                    return Ok(needed);
                }
            }
        }
    }
    for number in store.campaign_numbers(campaign_id).await? {
        let id = &number.phone_number_id;
        match read(config, || vapi.get_phone_number(id)).await {
            Ok(found) => {
                use crate::vapi::resources::NumberState;
                let status = found.status.as_deref().unwrap_or("active");
                let (severity, why) = match found.state() {
                    NumberState::Active => continue,
                    NumberState::Blocked => (Severity::Blocker, "its calls are refused"),
                    NumberState::Activating => {
                        (Severity::Warning, "its calls fail until it is active")
                    }
                    NumberState::Other => (Severity::Warning, "a status switchboard does not know"),
                };
                findings.push(Finding::new(
                    severity,
                    Topic::PhoneNumber,
                    format!("phone number {id} is {status} at Vapi: {why}"),
                ));
            }
            Err(e) => {
                let key_refused = e.class() == ErrorClass::Auth;
                findings.push(refusal(Topic::PhoneNumber, "phone number", id, &e));
                if key_refused {
                    break;
                }
            }
        }
    }
    Ok(needed)
}

/// A read of Vapi's, sent again after a refusal (429, 503, no connection) on the dispatch
/// back-off schedule (1 s, 4 s, 10 s by default).
async fn read<T, F, Fut>(config: &Config, request: F) -> Result<T, VapiError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, VapiError>>,
{
    let backoff = &config.dispatch.backoff_ms;
    let mut retry = 0;
    loop {
        match request().await {
            Err(e) if e.class() == ErrorClass::Refused && retry < backoff.len() as u32 => {
                retry += 1;
                let wait =
                    crate::model::backoff::retry_delay(backoff, retry, e.retry_after(), None);
                tokio::time::sleep(wait.min(Duration::from_secs(60))).await;
            }
            other => return other,
        }
    }
}

fn refusal(topic: Topic, what: &str, id: &str, e: &VapiError) -> Finding {
    let (topic, message) = match (e.class(), e.http_status()) {
        (ErrorClass::Auth, _) => (
            Topic::ApiKey,
            format!("Vapi refused the API key ({e}): no call can be made"),
        ),
        (ErrorClass::Rejected, Some(404)) => {
            (topic, format!("{what} {id} does not exist at Vapi ({e})"))
        }
        (ErrorClass::Rejected, _) => (topic, format!("Vapi refuses {what} {id} ({e})")),
        (ErrorClass::Refused | ErrorClass::Ambiguous, _) => (
            Topic::Vapi,
            format!("cannot check {what} {id} at Vapi: {e}"),
        ),
    };
    Finding::new(Severity::Blocker, topic, message)
}

/// The waiting contacts against the assistants' variables and the campaign's rules.
async fn contacts(
    store: &Store,
    campaign_id: i64,
    rules: &CampaignRules,
    needed: &BTreeMap<Needed, Vec<String>>,
    now: DateTime<Utc>,
    findings: &mut Vec<Finding>,
) -> Result<(), StoreError> {
    let waiting: u64 = store
        .waiting_by_zone(campaign_id, rules.zone())
        .await?
        .iter()
        .map(|z| z.contacts)
        .sum();
    if waiting == 0 {
        findings.push(Finding::new(
            Severity::Note,
            Topic::Contacts,
            "no contact is waiting to be called",
        ));
        return Ok(());
    }
    for (need, users) in needed {
        let lacking = match need {
            Needed::Variable(key) => Lacking::Variable(key),
            Needed::Name => Lacking::Name,
        };
        let count = store.waiting_lacking(campaign_id, lacking).await?;
        if count.count > 0 {
            let message = format!(
                "{} of {waiting} waiting contact(s) have no value for {need}, which assistant {} uses: \
                 Vapi would say it empty",
                count.count,
                users.join(", ")
            );
            findings.push(Finding::new(Severity::Blocker, Topic::Variable, message).about(&count));
        }
    }
    let zoneless = store.waiting_lacking(campaign_id, Lacking::Zone).await?;
    if zoneless.count > 0 {
        let message = format!(
            "{} waiting contact(s) have no zone (none in the CSV, none known for the number): \
             their window is kept in the campaign's zone {}",
            zoneless.count, rules.timezone
        );
        findings.push(Finding::new(Severity::Warning, Topic::Zone, message).about(&zoneless));
    }
    let unverified = store
        .waiting_lacking(campaign_id, Lacking::VerifiedNumber)
        .await?;
    if unverified.count > 0 {
        let message = format!(
            "{} waiting contact(s) have numbers outside their country's known ranges \
             (imported unverified): Vapi may refuse or misroute them",
            unverified.count
        );
        findings.push(
            Finding::new(Severity::Warning, Topic::ContactNumber, message).about(&unverified),
        );
    }
    let mut warn = |count: Count, topic: Topic, what: String| {
        if count.count > 0 {
            let message = format!("{} waiting contact(s) {what}", count.count);
            findings.push(Finding::new(Severity::Warning, topic, message).about(&count));
        }
    };
    let dnc = store.waiting_on_dnc(campaign_id).await?;
    warn(
        dnc,
        Topic::DoNotCall,
        "are on the do-not-call list: they will be skipped".into(),
    );
    let caps = rules.rules().caps;
    let capped = store
        .waiting_at_cap(campaign_id, (caps.per_day, caps.per_week), now)
        .await?;
    warn(
        capped,
        Topic::Cap,
        format!("have numbers at the cap {caps} already: they wait until it frees"),
    );
    if rules.require_consent {
        let unconsented = store.waiting_lacking(campaign_id, Lacking::Consent).await?;
        let what = "have no consent recorded and the campaign requires it: they will be skipped";
        warn(unconsented, Topic::Consent, what.into());
    }
    Ok(())
}

/// When the waiting contacts will have been called; zones no window reaches.
#[allow(clippy::too_many_arguments)]
async fn finish(
    store: &Store,
    config: &Config,
    campaign_id: i64,
    rules: &CampaignRules,
    schedule: &Schedule,
    options: &CheckOptions,
    now: DateTime<Utc>,
    findings: &mut Vec<Finding>,
) -> Result<Option<Estimate>, StoreError> {
    let zones = store.waiting_by_zone(campaign_id, rules.zone()).await?;
    let waiting: u64 = zones.iter().map(|z| z.contacts).sum();
    if waiting == 0 {
        return Ok(None);
    }
    let call_secs = match options.call_secs {
        Some(secs) => secs,
        None => store
            .mean_call_secs(campaign_id)
            .await?
            .unwrap_or(DEFAULT_CALL_SECS),
    };
    let pace = Pace {
        rate_per_second: config.dispatch.rate_per_second,
        concurrency: config.dispatch.max_concurrent_calls,
        call_secs,
        // What the campaign's contacts took so far (once each before it starts).
        dials_per_contact: {
            let c = store.campaign(campaign_id).await?;
            let redials = u32::try_from(rules.redial_count).unwrap_or(0);
            Pace::dials_seen(c.total_calls_created, c.contacts_done, redials)
        },
    };
    let window = rules.window();
    let f = forecast::forecast(&window, schedule, &zones, pace, now);
    findings.extend(estimate_findings(
        &f,
        &window,
        schedule,
        rules.zone(),
        pace,
        now,
    ));
    Ok(Some(Estimate {
        waiting,
        reached: f.reached,
        first_call: f.first_dial.map(|(at, _)| at),
        finish: f.finish.map(|(at, _)| at),
        calls_per_second: pace.per_second(),
        call_secs,
    }))
}

/// The forecast's lines: unreachable zones, a closed window, the finish or what is left.
fn estimate_findings(
    f: &Forecast,
    window: &crate::model::policy::Window,
    schedule: &Schedule,
    // The campaign's: the schedule is said in it.
    zone: chrono_tz::Tz,
    pace: Pace,
    now: DateTime<Utc>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let end_text = schedule
        .ends_by
        .map(|e| format!("its end-by {}", forecast::finish_text(e, zone, now)))
        .unwrap_or_else(|| "the next 120 days".into());
    let unreachable: u64 = f.unreachable.iter().map(|z| z.contacts).sum();
    for z in &f.unreachable {
        let message = format!(
            "{} waiting contact(s) in {}: no calling window ({} {}) opens there before {end_text}",
            z.contacts,
            z.zone,
            window.hours(),
            window.days
        );
        let severity = if unreachable == f.total {
            Severity::Blocker
        } else {
            Severity::Warning
        };
        let mut finding = Finding::new(severity, Topic::Window, message);
        finding.contacts = Some(z.contacts as i64);
        out.push(finding);
    }
    if let Some((first, in_zone)) = f.first_dial
        && first > now + chrono::Duration::minutes(1)
    {
        let message = format!(
            "nothing is dialled before {} (calling window or scheduled start)",
            forecast::finish_text(first, in_zone, now)
        );
        out.push(Finding::new(Severity::Note, Topic::Window, message));
    }
    let pace_text = format!(
        "{:.2} calls/s (rate {}/s, {} at once, calls of about {:.0} s)",
        pace.per_second(),
        pace.rate_per_second,
        pace.concurrency,
        pace.call_secs
    );
    let finding = match f.finish {
        Some((at, in_zone)) => Finding::new(
            Severity::Note,
            Topic::Finish,
            format!(
                "finishes about {}: {} contact(s) at {pace_text}",
                match forecast::first_day_text(f, now) {
                    Some(today) => format!("{} ({today})", forecast::finish_text(at, in_zone, now)),
                    None => forecast::finish_text(at, in_zone, now),
                },
                f.total
            ),
        ),
        None => Finding::new(
            Severity::Warning,
            Topic::Finish,
            format!(
                "by {end_text}, about {} of {} waiting contact(s) ({:.0} %) are called at {pace_text}; the rest are not",
                f.reached,
                f.total,
                f.reached as f64 * 100.0 / f.total.max(1) as f64
            ),
        ),
    };
    out.push(finding);
    out
}
