//! Supervising live calls against the simulator (realism profile): every control message
//! reaches it with the spec's body, the kill switch ends every live call and dispatches
//! nothing more, the runaway guard ends calls past their campaign's limits, `listen` writes
//! a WAV, and no monitor URL is found in logs, screens, the database, exports or `--json` rows.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use switchboard::dispatch::Command;
use switchboard::model::live::{AfterEnd, Destination, LiveAction, RequestStatus};
use switchboard::model::{CallStatus, ContactStatus};
use switchboard::ops::Actor;
use switchboard::simulator::{SimConfig, Simulator};
use switchboard::store::Store;
use switchboard::store::stats::{CallQuery, CallTab};

/// The realism profile with long calls (they stay live while the test acts on them).
pub(crate) async fn sim(f: impl FnOnce(&mut SimConfig)) -> Simulator {
    let mut c = SimConfig {
        api_key: KEY.into(),
        queue_ms: 5,
        ring_ms: 10,
        talk_min_ms: 60_000,
        talk_max_ms: 90_000,
        concurrency_limit: 0,
        seed: Some(19),
        ..SimConfig::default()
    }
    .with_realism();
    // Short, fast-settling: the realism faults stay on, the waits stay test-sized.
    c.latency_ms = 5;
    c.hang_ms = 500;
    c.late_create_ms = 300;
    f(&mut c);
    Simulator::start(c, ([127, 0, 0, 1], 0).into())
        .await
        .expect("simulator")
}

/// The calls at Vapi now (ids).
async fn live_calls(store: &Store) -> Vec<i64> {
    let query = CallQuery {
        tab: CallTab::Active,
        limit: 1000,
        ..CallQuery::default()
    };
    store
        .call_page(&query)
        .await
        .expect("page")
        .into_iter()
        .filter(|r| r.status.is_at_vapi())
        .map(|r| r.id)
        .collect()
}

async fn wait_live(store: &Store, n: usize) -> Vec<i64> {
    until(Duration::from_secs(20), "calls live at Vapi", || async {
        live_calls(store).await.len() >= n
    })
    .await;
    live_calls(store).await
}

/// Files `action` through the operations layer and waits for the engine's answer.
async fn act(store: &Store, call_id: i64, action: LiveAction) -> String {
    let config = switchboard::config::Config::default();
    let line = switchboard::ops::apply(
        store,
        &config,
        &Command::Live {
            call_id,
            action: action.clone(),
            then: AfterEnd::Done,
        },
        Actor::Console,
    )
    .await
    .expect("filed");
    let id: i64 = line
        .rsplit("(request ")
        .next()
        .and_then(|t| t.trim_end_matches(')').parse().ok())
        .expect("the line names the request");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = store.live_request(id).await.expect("request");
        if matches!(r.status, RequestStatus::Done | RequestStatus::Failed) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no answer in 10 s: {r:#?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let r = store.live_request(id).await.expect("request");
    let answer = r.answer.unwrap_or_default();
    assert_eq!(r.status, RequestStatus::Done, "{action:?}: {answer}");
    answer
}

fn bodies_for(sim: &Simulator, provider_id: &str) -> Vec<Value> {
    sim.stats()
        .control_messages
        .into_iter()
        .filter(|m| m["callId"] == provider_id)
        .map(|m| m["body"].clone())
        .collect()
}

#[tokio::test]
async fn say_whisper_mute_transfer_and_end_reach_the_call_with_the_specs_bodies() {
    let sim = sim(|c| c.fault_control = 0.0).await;
    let (store, _dir) = store().await;
    campaign(&store, "c", 3).await;
    let engine = engine(config(&sim.base_url()), &store, KEY).await;
    let calls = wait_live(&store, 3).await;
    let (a, b, c) = (calls[0], calls[1], calls[2]);
    let provider = |id: i64| {
        let store = store.clone();
        async move {
            store
                .call(id)
                .await
                .expect("call")
                .provider_call_id
                .expect("at Vapi")
        }
    };
    let (pa, pb, pc) = (provider(a).await, provider(b).await, provider(c).await);

    let answer = act(
        &store,
        a,
        LiveAction::Say {
            text: "One moment please".into(),
            end_after: false,
        },
    )
    .await;
    assert!(answer.contains("done"), "{answer}");
    act(
        &store,
        a,
        LiveAction::Whisper {
            text: "offer Thursday".into(),
        },
    )
    .await;
    act(&store, a, LiveAction::Mute { mute: true }).await;
    act(&store, a, LiveAction::Mute { mute: false }).await;
    assert_eq!(
        bodies_for(&sim, &pa),
        vec![
            json!({"type": "say", "content": "One moment please", "endCallAfterSpoken": false}),
            json!({"type": "add-message", "message": {"role": "system", "content": "offer Thursday"}, "triggerResponseEnabled": false}),
            json!({"type": "control", "control": "mute-assistant"}),
            json!({"type": "control", "control": "unmute-assistant"}),
        ]
    );
    act(
        &store,
        b,
        LiveAction::Transfer {
            to: Destination::Sip("sip:desk@example.com".into()),
        },
    )
    .await;
    assert_eq!(
        bodies_for(&sim, &pb),
        vec![
            json!({"type": "transfer", "destination": {"type": "sip", "sipUri": "sip:desk@example.com"}})
        ]
    );
    act(&store, c, LiveAction::End).await;
    assert_eq!(bodies_for(&sim, &pc), vec![json!({"type": "end-call"})]);
    // The end is recorded as switchboard's, the contact done, the action in `why`.
    until(
        Duration::from_secs(10),
        "the ended call recorded",
        || async { store.call(c).await.expect("call").status == CallStatus::Ended },
    )
    .await;
    let ended = store.call(c).await.expect("call");
    assert_eq!(ended.ended_reason.as_deref(), Some("ended by operator"));
    let contact = store.contact(ended.contact_id).await.expect("contact");
    assert_eq!(contact.status, ContactStatus::Done);
    let history = store.why(&contact.phone).await.expect("why");
    assert!(
        history
            .iter()
            .any(|d| d.decision == "LIVE" && d.reason.contains("end the call")),
        "{history:#?}"
    );
    // A call that ended meanwhile is said so, not an error.
    let answer = switchboard::ops::apply(
        &store,
        &switchboard::config::Config::default(),
        &Command::Live {
            call_id: c,
            action: LiveAction::Mute { mute: true },
            then: AfterEnd::Done,
        },
        Actor::Cli,
    )
    .await
    .expect_err("refused before anything is sent");
    assert!(answer.contains("not live"), "{answer}");
    engine.shutdown().await;
    assert_invariants(&store).await;
}

#[tokio::test]
async fn the_kill_switch_ends_every_live_call_within_2_s_and_dispatches_nothing_more() {
    let sim = sim(|c| c.concurrency_limit = 12).await;
    let (store, _dir) = store().await;
    campaign(&store, "c", 40).await;
    let mut cfg = config(&sim.base_url());
    cfg.dispatch.max_concurrent_calls = 8;
    let engine = engine(cfg.clone(), &store, KEY).await;
    wait_live(&store, 8).await;
    let line = switchboard::ops::apply(
        &store,
        &cfg,
        &Command::EndLiveCalls {
            campaign_id: None,
            then: AfterEnd::Requeue,
        },
        Actor::Console,
    )
    .await
    .expect("kill switch");
    assert!(line.contains("dispatch paused"), "{line}");
    let started = tokio::time::Instant::now();
    until(
        Duration::from_secs(2),
        "every call ended at Vapi",
        || async { sim.stats().active_now == 0 },
    )
    .await;
    let took = started.elapsed();
    let recorded = tokio::time::timeout(Duration::from_secs(10), async {
        while !(live_calls(&store).await.is_empty()
            && store.live_call_count(None).await.expect("count") == 0)
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    if recorded.is_err() {
        let mut left = Vec::new();
        for id in 1..=sim.stats().calls_created as i64 + 5 {
            if let Ok(c) = store.call(id).await
                && (c.status.is_at_vapi() || CallStatus::IN_CREATION.contains(&c.status))
            {
                left.push((c.id, c.status, c.attempt_count, c.provider_call_id));
            }
        }
        panic!("every end recorded: not seen in 10 s; left: {left:?}");
    }
    let created = sim.stats().calls_created;
    // Paused: a second of ticks and nothing more is created.
    wait_held(&engine, 3).await;
    assert_eq!(
        sim.stats().calls_created,
        created,
        "dialled after the kill switch"
    );
    // Every call it ended is recorded as the kill switch's, its contact back in the queue.
    let ended = store
        .call_page(&CallQuery {
            tab: CallTab::Done,
            limit: 1000,
            ..CallQuery::default()
        })
        .await
        .expect("page");
    let killed: Vec<_> = ended
        .iter()
        .filter(|r| r.ended_reason.as_deref() == Some("ended by operator (kill switch)"))
        .collect();
    assert!(
        killed.len() >= 8,
        "{} calls ended by the kill switch",
        killed.len()
    );
    for row in &killed {
        let contact = store.contact(row.contact_id).await.expect("contact");
        assert_eq!(
            contact.status,
            ContactStatus::Pending,
            "contact {} not re-queued",
            contact.id
        );
    }
    eprintln!(
        "kill switch: {} calls ended at Vapi in {took:?}",
        killed.len()
    );
    engine.shutdown().await;
    assert_invariants(&store).await;
}

/// The CLI's kill switch beside a running engine writes its pause to the store: the claim
/// reads it there, so no contact is claimed between the pause and the engine's next look
/// (a contact the kill switch just put back would otherwise be dialled again at once).
#[tokio::test]
async fn a_pause_in_the_store_stops_the_claim_before_the_engine_reads_it() {
    let (store, _dir) = store().await;
    let id = campaign(&store, "c", 3).await;
    let pause = switchboard::model::Pause::new(switchboard::model::StopCause::Operator, "cli");
    store
        .set_dispatch_paused(Some(&pause))
        .await
        .expect("pause");
    let claim = store.claim_call(id, "i", "e").await.expect("claim");
    assert!(claim.is_none(), "claimed while dispatch is paused");
    store.set_dispatch_paused(None).await.expect("resume");
    assert!(
        store
            .pause_campaign(id, &pause)
            .await
            .expect("pause campaign")
    );
    let claim = store.claim_call(id, "i", "e").await.expect("claim");
    assert!(claim.is_none(), "claimed while the campaign is paused");
    store.resume_campaign(id).await.expect("resume campaign");
    let claim = store.claim_call(id, "i", "e").await.expect("claim");
    assert!(claim.is_some(), "nothing claimed once resumed");
}

#[tokio::test]
async fn the_runaway_guard_ends_a_call_over_its_duration_and_one_over_its_cost() {
    let sim = sim(|_| {}).await;
    let (store, _dir) = store().await;
    let long = campaign(&store, "long", 1).await;
    let costly = campaign(&store, "costly", 1).await;
    let mut rules = store.campaign_rules(long).await.expect("rules");
    rules.max_call_s = 2;
    store.set_campaign_rules(long, &rules).await.expect("set");
    let mut rules = store.campaign_rules(costly).await.expect("rules");
    // $0.01 a call plus $0.10 a minute: past $0.012 after 1.2 s of talk.
    rules.max_call_cost = 0.012;
    store.set_campaign_rules(costly, &rules).await.expect("set");
    let engine = engine(config(&sim.base_url()), &store, KEY).await;
    let page = || async {
        store
            .call_page(&CallQuery {
                tab: CallTab::All,
                limit: 10,
                ..CallQuery::default()
            })
            .await
            .expect("page")
    };
    // Both one-contact campaigns complete (a call still being created or settled under the
    // realism faults is neither live nor ended yet; one that never rang is dialled again).
    until(
        Duration::from_secs(20),
        "both calls ended by the guard",
        || async {
            let mut done = true;
            for id in [long, costly] {
                done &= store.campaign(id).await.expect("campaign").status
                    == switchboard::model::CampaignStatus::Completed;
            }
            done && live_calls(&store).await.is_empty()
        },
    )
    .await;
    let rows = page().await;
    let reason_of = |campaign_id| {
        rows.iter()
            .find(|r| r.campaign_id == campaign_id && r.status == CallStatus::Ended)
            .and_then(|r| r.ended_reason.clone())
    };
    assert_eq!(
        reason_of(long).as_deref(),
        Some("ended by switchboard: longer than the campaign allows")
    );
    assert_eq!(
        reason_of(costly).as_deref(),
        Some("ended by switchboard: cost more than the campaign allows")
    );
    // Each end is in the retry log with its cause and figures.
    let events = store.recent_events(200).await.expect("events");
    assert!(
        events
            .iter()
            .any(|e| e.message.contains("the campaign allows 2 s")),
        "{events:#?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e.message.contains("the campaign allows $0.01")),
        "{events:#?}"
    );
    engine.shutdown().await;
    assert_invariants(&store).await;
}

#[tokio::test]
async fn listen_writes_a_valid_wav_of_the_calls_audio() {
    let sim = sim(|_| {}).await;
    let (store, _dir) = store().await;
    campaign(&store, "c", 1).await;
    let cfg = config(&sim.base_url());
    let engine = engine(cfg.clone(), &store, KEY).await;
    let call = wait_live(&store, 1).await[0];
    let vapi = client(&cfg, KEY);
    let mut wav = Vec::new();
    let format = switchboard::listen::Format::default();
    let heard = switchboard::listen::listen(
        &store,
        &vapi,
        call,
        format,
        &mut wav,
        tokio::time::sleep(Duration::from_millis(400)),
    )
    .await
    .expect("listened");
    assert!(!heard.call_ended);
    assert_eq!(&wav[0..4], b"RIFF");
    assert_eq!(&wav[8..16], b"WAVEfmt ");
    assert_eq!(u16::from_le_bytes([wav[22], wav[23]]), 2, "stereo");
    assert_eq!(
        u32::from_le_bytes([wav[24], wav[25], wav[26], wav[27]]),
        16_000
    );
    assert_eq!(heard.bytes as usize, wav.len() - 44);
    assert!(heard.bytes >= 1280 * 5, "{} bytes of audio", heard.bytes);
    assert_eq!(heard.bytes % 4, 0, "whole stereo frames");
    // Not silence: the simulator plays a tone on the assistant's side.
    assert!(wav[44..].iter().any(|b| *b != 0));
    engine.shutdown().await;
}

/// A `Write` into a shared buffer, for a tracing subscriber.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("not poisoned").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The console's screens as an operator sees them now: the call list, then each call's
/// details popup (with its transcript), rendered from the store and the engine's snapshot.
async fn screens(store: &Store, engine: &switchboard::dispatch::EngineHandle) -> Vec<String> {
    use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    use switchboard::console::{Action, App, CallNow, ConsoleOptions, KeyRegistry, Update};
    let options = ConsoleOptions::default();
    let keys = KeyRegistry::new(&options.keys).expect("default keys");
    let mut app = App::new(options, keys);
    let (width, height) = (160, 48);
    app.apply(Update::Resize { width, height });
    app.apply(Update::Tick(chrono::Utc::now()));
    app.apply(Update::Snapshot(Box::new(engine.client().snapshot())));
    let query = app.current_query();
    let rows = store.call_page(&query).await.expect("page");
    let total = store.call_count(&query).await.expect("count");
    let n = rows.len();
    app.apply(Update::Page { query, rows, total });
    let render = |app: &App| {
        let mut terminal =
            ratatui::Terminal::new(ratatui::backend::TestBackend::new(width, height))
                .expect("test backend");
        terminal
            .draw(|frame| frame.render_widget(app, frame.area()))
            .expect("draw");
        terminal.backend().to_string()
    };
    let key = |code| KeyEvent::new(code, KeyModifiers::NONE);
    let mut out = vec![render(&app)];
    for _ in 0..n {
        if let Some(Action::LoadAttempts(call_id)) = app.handle_key(key(KeyCode::Enter)) {
            let now = store.call(call_id).await.ok().map(|c| CallNow {
                status: c.status,
                ended_reason: c.ended_reason,
                cost_usd: c.cost_usd,
            });
            app.apply(Update::Attempts {
                call_id,
                rows: store.attempts(call_id).await.expect("attempts"),
                analysis: store.call_analysis(call_id).await.expect("analysis"),
                transcript: store.transcript(call_id).await.expect("transcript"),
                now,
            });
            out.push(render(&app));
        }
        app.handle_key(key(KeyCode::Esc));
        app.handle_key(key(KeyCode::Down));
    }
    assert!(out.len() > 1, "details popups rendered");
    out
}

#[tokio::test]
async fn monitor_urls_are_found_nowhere_in_logs_screens_the_database_exports_or_json() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let sim = sim(|c| {
        c.fault_control = 0.0;
        c.talk_min_ms = 1_500;
        c.talk_max_ms = 2_500;
    })
    .await;
    let (store, dir) = store().await;
    let id = campaign(&store, "c", 4).await;
    let cfg = config(&sim.base_url());
    let engine = engine(cfg.clone(), &store, KEY).await;
    let calls = wait_live(&store, 2).await;
    act(&store, calls[0], LiveAction::Mute { mute: true }).await;
    act(&store, calls[1], LiveAction::End).await;
    // The tokens the URLs carry, read as an operator's script could.
    let vapi = client(&cfg, KEY);
    let mut tokens = Vec::new();
    for call in &calls {
        let provider = store
            .call(*call)
            .await
            .expect("call")
            .provider_call_id
            .expect("at Vapi");
        let remote = vapi.get_call(&provider).await.expect("read");
        let monitor = remote.monitor.expect("the simulator gives monitor URLs");
        use switchboard::config::ExposeSecret;
        let url = monitor.control_url.expect("control URL");
        let token = url
            .expose_secret()
            .rsplit('/')
            .nth(1)
            .expect("token")
            .to_string();
        assert!(token.len() >= 16, "{token}");
        tokens.push(token);
    }
    let mut places: Vec<(String, String)> = Vec::new();
    // Screens while the calls are live, and again once they are over.
    for screen in screens(&store, &engine).await {
        places.push(("a live screen".into(), screen));
    }
    wait_for(&engine, Duration::from_secs(30), all_completed).await;
    for screen in screens(&store, &engine).await {
        places.push(("a screen after the end".into(), screen));
    }
    engine.shutdown().await;
    let logs = String::from_utf8_lossy(&logs.0.lock().expect("logs")).to_string();
    assert!(
        logs.contains("TRACE") || logs.contains("DEBUG") || logs.contains("INFO"),
        "logs captured"
    );
    places.push(("logs".into(), logs));
    let mut csv = Vec::new();
    switchboard::export::export(
        &store,
        id,
        switchboard::export::Format::Csv,
        &mut csv,
        None,
        |_| {},
    )
    .await
    .expect("csv");
    places.push(("csv export".into(), String::from_utf8_lossy(&csv).into()));
    let mut jsonl = Vec::new();
    switchboard::export::export(
        &store,
        id,
        switchboard::export::Format::Jsonl,
        &mut jsonl,
        None,
        |_| {},
    )
    .await
    .expect("json");
    places.push(("json export".into(), String::from_utf8_lossy(&jsonl).into()));
    let rows = store
        .call_page(&CallQuery {
            tab: CallTab::All,
            limit: 100,
            ..CallQuery::default()
        })
        .await
        .expect("rows");
    places.push((
        "calls --json".into(),
        serde_json::to_string(&rows).expect("json"),
    ));
    for call in &calls {
        let c = store.call(*call).await.expect("call");
        places.push(("call row".into(), serde_json::to_string(&c).expect("json")));
        let transcript = store.transcript(*call).await.expect("transcript");
        places.push(("transcript".into(), format!("{transcript:?}")));
    }
    if !dir.is_postgres() {
        store.close().await;
        for entry in std::fs::read_dir(dir.path()).expect("dir") {
            let path = entry.expect("entry").path();
            let bytes = std::fs::read(&path).expect("db file");
            places.push((
                path.display().to_string(),
                String::from_utf8_lossy(&bytes).into(),
            ));
        }
    }
    for token in &tokens {
        for (place, text) in &places {
            assert!(
                !text.contains(token.as_str()),
                "a monitor URL's token in {place}"
            );
        }
    }
}
