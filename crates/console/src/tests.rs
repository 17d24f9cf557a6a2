//! Keys in, screen out: the app is driven with key events and fabricated updates, and the
//! whole screen is rendered on ratatui's TestBackend. Times are fixed (ages are computed
//! against the app's clock), so the snapshots are stable.

use std::collections::VecDeque;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use super::ConsoleOptions;
use super::app::{Action, App, CallNow, Popup, Update};
use super::keys::KeyRegistry;
use crate::dispatch::command::Command;
use crate::dispatch::snapshot::{
    BreakerState, BreakerView, CampaignView, EngineEvent, EventKind, QuotaView, Snapshot,
};
use crate::model::live::{AfterEnd, LiveAction};
use crate::model::{AttemptOutcome, CallStatus, CampaignStatus, Pause, StopCause};
use crate::store::attempts::Attempt;
use crate::store::stats::{CallListRow, CallQuery, CallSort, CallTab};
use crate::store::{format_time, parse_time};

const NOW: &str = "2025-05-01T12:00:00.000Z";

fn at(seconds_before_now: i64) -> String {
    let now = parse_time(NOW).expect("fixed time parses");
    format_time(now - chrono::Duration::seconds(seconds_before_now))
}

fn campaign(id: i64, name: &str, status: CampaignStatus) -> CampaignView {
    CampaignView {
        id,
        name: name.into(),
        status,
        pause_reason: None,
        pause_cause: None,
        started_at: Some(at(3 * 3600 + 120)),
        completed_at: None,
        contacts_total: 1_000,
        contacts_done: 400,
        pending: 580,
        creating: 3,
        active: 9,
        created: 397,
        ended: 370,
        failed: 18,
        cost_usd: 41.2,
        success_rate: Some(0.623),
        estimated_remaining_usd: Some(61.8),
        reasons: vec![
            ("customer-ended-call".into(), 210),
            ("assistant-ended-call".into(), 61),
            ("customer-did-not-answer".into(), 52),
            ("customer-busy".into(), 31),
            ("voicemail".into(), 16),
        ],
        waiting: None,
        rules: None,
        reach: None,
    }
}

fn event(
    secs: i64,
    kind: EventKind,
    call: Option<i64>,
    attempt: Option<i64>,
    message: &str,
    delay: Option<u64>,
) -> EngineEvent {
    EngineEvent {
        at: at(secs),
        kind,
        call_id: call,
        attempt,
        message: message.into(),
        next_delay_ms: delay,
    }
}

fn switchboard_analysis() -> crate::store::analysis::CallAnalysis {
    crate::store::analysis::CallAnalysis {
        summary: Some("The customer agreed to a follow-up call on Tuesday.".into()),
        success_evaluation: Some("true".into()),
        structured_data: Some("{\"follow_up\":\"tuesday\"}".into()),
        recording_url: Some("https://storage.vapi.ai/rec-42.wav".into()),
        tool_calls: None,
    }
}

fn snapshot() -> Snapshot {
    let mut renewals = campaign(2, "renewals-q2", CampaignStatus::Paused);
    renewals.pause_reason = Some("Vapi: insufficient credits".into());
    renewals.pause_cause = Some(StopCause::Credits);
    Snapshot {
        version: 42,
        campaigns: vec![
            campaign(1, "spring-promo", CampaignStatus::Dialing),
            renewals,
        ],
        pending: 580,
        creating: 3,
        active: 9,
        failed: 18,
        dispatch_paused: None,
        rate_per_second: 2.0,
        burst: 1,
        breaker: BreakerView {
            state: BreakerState::Closed,
            consecutive_failures: 1,
            threshold: 5,
            retry_in_ms: 0,
        },
        quota: QuotaView {
            requests_last_minute: 96,
            requests_per_minute_limit: 120,
            concurrency_used: 8,
            concurrency_cap: 10,
            vapi_concurrency_limit: Some(10),
            vapi_remaining: None,
            rate_limited_total: 3,
            calls_today: 397,
            daily_limit: Some(1_000),
            spend_usd: 41.2,
            budget_usd: Some(100.0),
            budget: Default::default(),
        },
        backoff_ms: 0,
        events: VecDeque::from(vec![
            event(
                40,
                EventKind::Attempt,
                Some(1021),
                Some(1),
                "POST /call",
                None,
            ),
            event(
                39,
                EventKind::Retry,
                Some(1021),
                Some(1),
                "HTTP 429 Too Many Requests",
                Some(1_000),
            ),
            event(
                38,
                EventKind::Created,
                Some(1020),
                Some(1),
                "created, ringing",
                None,
            ),
            event(
                30,
                EventKind::Retry,
                Some(1021),
                Some(2),
                "HTTP 503 Service Unavailable",
                Some(4_000),
            ),
            event(
                25,
                EventKind::Breaker,
                None,
                None,
                "breaker closed → open after 5 failures",
                None,
            ),
            event(
                20,
                EventKind::Breaker,
                None,
                None,
                "breaker half-open: probing",
                None,
            ),
            event(
                18,
                EventKind::Created,
                Some(1021),
                Some(3),
                "created after 3 attempts",
                None,
            ),
            event(
                12,
                EventKind::Failed,
                Some(1017),
                Some(1),
                "HTTP 400: phone number invalid",
                None,
            ),
            event(
                5,
                EventKind::Pause,
                None,
                None,
                "campaign renewals-q2 paused: Vapi: insufficient credits",
                None,
            ),
            event(2, EventKind::Command, None, None, "rate 1.5 → 2.0/s", None),
        ]),
        stopped: false,
        attached_to: None,
        webhook_refused: 0,
        awaiting_reports: 0,
        webhook_last_refusal: None,
        numbers: Vec::new(),
        number_health: Default::default(),
    }
}

const NAMES: [&str; 6] = [
    "Ada Lovelace",
    "Grace Hopper",
    "Alan Turing",
    "Edsger Dijkstra",
    "Barbara Liskov",
    "Ken Thompson",
];

fn row(id: i64, status: CallStatus) -> CallListRow {
    let failed = status == CallStatus::Failed;
    let created = !matches!(status, CallStatus::Queued | CallStatus::Failed);
    CallListRow {
        id,
        campaign_id: 1,
        contact_id: id - 1000,
        contact_name: Some(NAMES[(id % 6) as usize].into()),
        phone: format!("+1555{:07}", id * 7919 % 10_000_000),
        status,
        attempt_count: if failed { 3 } else { 1 + id % 2 },
        provider_call_id: created.then(|| format!("vc_{:08x}", id * 2_654_435_761 % 4_294_967_296)),
        ended_reason: match status {
            CallStatus::Failed => Some("HTTP 503 after 3 attempts".into()),
            CallStatus::Ended => Some("customer-ended-call".into()),
            _ => None,
        },
        created_at: at((1100 - id) * 37),
        cost_usd: (status == CallStatus::Ended).then_some(0.11),
        pending_contact: false,
        // Every third contact is on its second dial (a redial).
        sequence: 1 + i64::from(id % 3 == 0),
        redials: i64::from(id % 3 == 0),
        lane: None,
        waiting: None,
    }
}

/// A mixed page of `n` rows, newest first.
fn rows(n: i64) -> Vec<CallListRow> {
    let statuses = [
        CallStatus::Queued,
        CallStatus::Ringing,
        CallStatus::InProgress,
        CallStatus::Ended,
        CallStatus::Failed,
        CallStatus::Ended,
        CallStatus::Scheduled,
    ];
    (0..n)
        .map(|i| row(1100 - i, statuses[(i % 7) as usize]))
        .collect()
}

fn failed_rows(n: i64) -> Vec<CallListRow> {
    (0..n)
        .map(|i| row(1090 - i * 3, CallStatus::Failed))
        .collect()
}

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn ch(c: char) -> KeyEvent {
    key(KeyCode::Char(c))
}

fn demo() -> ConsoleOptions {
    ConsoleOptions {
        demo: true,
        ..ConsoleOptions::default()
    }
}

/// An app at `width` x `height` with the fixed clock, the snapshot and a loaded page.
fn app_with(options: ConsoleOptions, width: u16, height: u16, snap: Snapshot) -> App {
    let keys = KeyRegistry::new(&options.keys).expect("default keys");
    let mut app = App::new(options, keys);
    app.apply(Update::Resize { width, height });
    app.apply(Update::Tick(parse_time(NOW).expect("fixed time")));
    app.apply(Update::Snapshot(Box::new(snap)));
    load_page(&mut app, rows(40), 418);
    app
}

/// Answers the app's current window with the matching slice of `all`.
fn load_page(app: &mut App, all: Vec<CallListRow>, total: i64) -> Option<Action> {
    let query = app.current_query();
    let start = usize::try_from(query.offset).unwrap_or(0).min(all.len());
    let end = (start + usize::try_from(query.limit).unwrap_or(0)).min(all.len());
    app.apply(Update::Page {
        query,
        rows: all[start..end].to_vec(),
        total,
    })
}

fn screen(app: &App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test backend");
    terminal
        .draw(|frame| frame.render_widget(app, frame.area()))
        .expect("draw");
    terminal.backend().to_string()
}

const SIZES: [(u16, u16); 2] = [(80, 24), (160, 48)];

fn snap_both(name: &str, build: impl Fn(u16, u16) -> App) {
    for (width, height) in SIZES {
        let app = build(width, height);
        insta::assert_snapshot!(
            format!("{name}_{width}x{height}"),
            screen(&app, width, height)
        );
    }
}

// ---- screens ------------------------------------------------------------------------------

#[test]
fn screen_demo_running() {
    snap_both("demo_running", |w, h| app_with(demo(), w, h, snapshot()));
}

#[test]
fn screen_paused() {
    snap_both("paused", |w, h| {
        let mut snap = snapshot();
        snap.dispatch_paused = Some(Pause::new(StopCause::Operator, "paused by operator"));
        snap.campaigns[0].status = CampaignStatus::Paused;
        snap.campaigns[0].pause_reason = Some("paused by operator".into());
        snap.campaigns[0].pause_cause = Some(StopCause::Operator);
        snap.breaker.state = BreakerState::Open;
        snap.breaker.retry_in_ms = 12_500;
        snap.backoff_ms = 2_500;
        let mut app = app_with(demo(), w, h, snap);
        app.apply(Update::Reply(Ok("dispatch paused".into())));
        app
    });
}

#[test]
fn screen_help_overlay() {
    snap_both("help", |w, h| {
        let mut app = app_with(demo(), w, h, snapshot());
        assert_eq!(app.handle_key(ch('?')), None);
        app
    });
}

#[test]
fn screen_confirm_retry_failed() {
    snap_both("confirm_retry_failed", |w, h| {
        let mut app = app_with(demo(), w, h, snapshot());
        assert_eq!(app.handle_key(ch('R')), None);
        assert!(matches!(app.popup(), Some(Popup::Confirm(_))));
        app
    });
}

fn failed_tab(w: u16, h: u16) -> App {
    let mut app = app_with(demo(), w, h, snapshot());
    let action = app.handle_key(ch('4'));
    let Some(Action::LoadPage(query)) = action else {
        panic!("tab change reads the list: {action:?}");
    };
    assert_eq!(query.tab, CallTab::Failed);
    assert_eq!(query.offset, 0);
    load_page(&mut app, failed_rows(18), 18);
    app.handle_key(ch('j'));
    app.handle_key(ch('j'));
    app
}

#[test]
fn screen_failed_tab_with_selection() {
    snap_both("failed_tab", failed_tab);
}

#[test]
fn screen_details_popup() {
    snap_both("details", |w, h| {
        let mut app = failed_tab(w, h);
        let call_id = app.selected_row().expect("a selected row").id;
        assert_eq!(
            app.handle_key(key(KeyCode::Enter)),
            Some(Action::LoadAttempts(call_id))
        );
        let attempt = |n: i64, status: Option<i64>, outcome, error: Option<&str>, delay| Attempt {
            id: n,
            call_id,
            attempt: n,
            started_at: at(600 - n * 5),
            finished_at: Some(at(599 - n * 5)),
            http_status: status,
            outcome,
            error: error.map(str::to_string),
            retry_delay_ms: delay,
        };
        app.apply(Update::Attempts {
            call_id,
            transcript: Vec::new(),
            now: None,
            analysis: Some(switchboard_analysis()),
            rows: vec![
                attempt(
                    1,
                    Some(429),
                    AttemptOutcome::RateLimited,
                    Some("Too Many Requests"),
                    Some(1_000),
                ),
                attempt(
                    2,
                    Some(503),
                    AttemptOutcome::Refused,
                    Some("Service Unavailable"),
                    Some(4_000),
                ),
                attempt(
                    3,
                    Some(503),
                    AttemptOutcome::Refused,
                    Some("Service Unavailable; retries used up"),
                    None,
                ),
            ],
        });
        app
    });
}

#[test]
fn screen_million_call_campaign_at_the_bottom() {
    // Only the visible window exists in the app; `G` asks for the last one.
    let mut app = app_with(demo(), 80, 24, snapshot());
    load_page(&mut app, rows(10), 1_000_000);
    let Some(Action::LoadPage(query)) = app.handle_key(ch('G')) else {
        panic!("G reads the last window");
    };
    // The last screen and one before it; nothing held is near, so no anchor (the store
    // reads from the end).
    assert_eq!(query.offset, 1_000_000 - 20);
    assert_eq!(query.limit, 20);
    assert_eq!(query.anchor, None);
    let last: Vec<_> = (0..20)
        .map(|i| row(20 - i + 1000, CallStatus::Ended))
        .collect();
    app.apply(Update::Page {
        query,
        rows: last,
        total: 1_000_000,
    });
    assert_eq!(app.page.len(), 20);
    insta::assert_snapshot!("million_bottom_80x24", screen(&app, 80, 24));
}

// ---- keys in, actions out -----------------------------------------------------------------

#[test]
fn p_pauses_when_running_and_resumes_when_paused() {
    let mut app = app_with(ConsoleOptions::default(), 80, 24, snapshot());
    assert_eq!(
        app.handle_key(ch('p')),
        Some(Action::Send(Command::PauseAll {
            reason: "paused by operator".into()
        }))
    );
    let mut paused = snapshot();
    paused.dispatch_paused = Some(Pause::new(StopCause::Operator, "paused by operator"));
    app.apply(Update::Snapshot(Box::new(paused)));
    assert_eq!(
        app.handle_key(ch('p')),
        Some(Action::Send(Command::ResumeAll))
    );
}

#[test]
fn shift_p_pauses_or_resumes_the_shown_campaign() {
    let mut app = app_with(ConsoleOptions::default(), 80, 24, snapshot());
    assert_eq!(
        app.handle_key(ch('P')),
        Some(Action::Send(Command::PauseCampaign { campaign_id: 1 }))
    );
    // `]` shows the paused one.
    assert!(
        matches!(app.handle_key(ch(']')), Some(Action::LoadPage(q)) if q.campaign_id == Some(2))
    );
    assert_eq!(
        app.handle_key(ch('P')),
        Some(Action::Send(Command::ResumeCampaign { campaign_id: 2 }))
    );
}

#[test]
fn retry_all_asks_and_cancel_is_the_default() {
    let mut app = app_with(ConsoleOptions::default(), 80, 24, snapshot());
    assert_eq!(app.handle_key(ch('R')), None);
    assert!(matches!(app.popup(), Some(Popup::Confirm(_))));
    // Enter on the default button cancels.
    assert_eq!(app.handle_key(key(KeyCode::Enter)), None);
    assert_eq!(app.popup(), None);

    assert_eq!(app.handle_key(ch('R')), None);
    assert_eq!(
        app.handle_key(ch('y')),
        Some(Action::Send(Command::RetryFailed { campaign_id: 1 }))
    );

    // Choosing Confirm then Enter confirms too; Esc cancels.
    app.handle_key(ch('R'));
    app.handle_key(key(KeyCode::Right));
    assert_eq!(
        app.handle_key(key(KeyCode::Enter)),
        Some(Action::Send(Command::RetryFailed { campaign_id: 1 }))
    );
    app.handle_key(ch('c'));
    assert_eq!(app.handle_key(key(KeyCode::Esc)), None);
    assert_eq!(app.popup(), None);
}

#[test]
fn do_not_call_names_the_number_asks_and_keeping_it_is_the_default() {
    let mut app = app_with(ConsoleOptions::default(), 80, 24, snapshot());
    load_page(&mut app, rows(20), 20);
    assert_eq!(app.handle_key(ch('D')), None);
    let Some(Popup::Confirm(confirm)) = app.popup() else {
        panic!("D asks first");
    };
    assert!(!confirm.confirm_selected, "the safe button is the default");
    assert_eq!(confirm.keep_label, "Keep the number");
    assert!(
        confirm
            .message
            .starts_with("Put +15558710900 (Alan Turing) on the do-not-call list?"),
        "{}",
        confirm.message
    );
    assert!(
        confirm
            .message
            .contains("No campaign will dial this number again")
    );
    insta::assert_snapshot!("confirm_do_not_call_80x24", screen(&app, 80, 24));
    // Enter on the default button keeps the number; nothing is sent.
    assert_eq!(app.handle_key(key(KeyCode::Enter)), None);
    assert_eq!(app.popup(), None);
    // y sends the command the operations layer carries out.
    app.handle_key(ch('D'));
    assert_eq!(
        app.handle_key(ch('y')),
        Some(Action::Send(Command::AddToDnc {
            phone: "+15558710900".into(),
            reason: "added by an operator in the console".into(),
        }))
    );
    assert!(
        app.status()
            .is_some_and(|(text, _)| text.contains("putting +15558710900 on the do-not-call")),
        "{:?}",
        app.status()
    );
    // Read-only consoles cannot, and with nothing selected there is nothing to add.
    let mut watching = app_with(
        ConsoleOptions {
            read_only: true,
            ..ConsoleOptions::default()
        },
        80,
        24,
        snapshot(),
    );
    load_page(&mut watching, rows(20), 20);
    assert_eq!(watching.handle_key(ch('D')), None);
    assert_eq!(watching.popup(), None);
    let mut empty = app_with(ConsoleOptions::default(), 80, 24, snapshot());
    load_page(&mut empty, Vec::new(), 0);
    assert_eq!(empty.handle_key(ch('D')), None);
    assert_eq!(empty.popup(), None);
}

#[test]
fn cancel_campaign_is_confirmed() {
    let mut app = app_with(ConsoleOptions::default(), 80, 24, snapshot());
    assert_eq!(app.handle_key(ch('c')), None);
    assert_eq!(
        app.handle_key(ch('y')),
        Some(Action::Send(Command::CancelCampaign { campaign_id: 1 }))
    );
}

#[test]
fn read_only_disables_and_hides_actions_that_change_things() {
    let options = ConsoleOptions {
        read_only: true,
        ..ConsoleOptions::default()
    };
    let mut app = app_with(options, 160, 48, snapshot());
    for c in ['p', 'P', '+', '-', 'r', 'R', 'c'] {
        assert_eq!(app.handle_key(ch(c)), None, "{c}");
        assert_eq!(app.popup(), None, "{c} opens no dialog");
    }
    let hints = super::panes::footer::hint_line(&super::panes::footer::FooterPane::of(&app), 200)
        .to_string();
    assert!(!hints.contains("pause"), "{hints}");
    assert!(!hints.contains("retry"), "{hints}");
    assert!(hints.contains("filter"), "{hints}");
    let text = screen(&app, 160, 48);
    assert!(text.contains("READ-ONLY"));
    // Looking around still works.
    assert!(matches!(app.handle_key(ch('4')), Some(Action::LoadPage(_))));
}

#[test]
fn quit_asks_while_calls_are_in_flight() {
    let mut app = app_with(ConsoleOptions::default(), 80, 24, snapshot());
    assert_eq!(app.handle_key(ch('q')), None);
    assert!(matches!(app.popup(), Some(Popup::Confirm(c)) if c.action == Action::Quit));
    assert_eq!(
        app.handle_key(key(KeyCode::Enter)),
        None,
        "default is Cancel"
    );
    assert!(!app.quitting());

    // Ctrl-C behaves like q, and a second one answers yes.
    let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
    assert_eq!(app.handle_key(ctrl_c), None);
    assert_eq!(app.handle_key(ctrl_c), Some(Action::Quit));
    assert!(app.quitting());
}

#[test]
fn quit_without_calls_in_flight_quits_at_once() {
    let mut snap = snapshot();
    snap.creating = 0;
    snap.active = 0;
    let mut app = app_with(ConsoleOptions::default(), 80, 24, snap);
    assert_eq!(app.handle_key(ch('q')), Some(Action::Quit));
    assert!(app.quitting());
    // Asking again while stopping means "leave now".
    assert_eq!(app.handle_key(ch('q')), Some(Action::Quit));
}

#[test]
fn plus_and_minus_step_the_rate() {
    let mut app = app_with(ConsoleOptions::default(), 80, 24, snapshot());
    assert_eq!(
        app.handle_key(ch('+')),
        Some(Action::Send(Command::SetRate { per_second: 2.5 }))
    );
    // Shown at once, so a second press climbs on.
    assert_eq!(
        app.handle_key(ch('+')),
        Some(Action::Send(Command::SetRate { per_second: 3.0 }))
    );
    let mut slow = snapshot();
    slow.rate_per_second = 0.3;
    app.apply(Update::Snapshot(Box::new(slow)));
    assert_eq!(
        app.handle_key(ch('-')),
        Some(Action::Send(Command::SetRate { per_second: 0.1 }))
    );
    assert_eq!(app.handle_key(ch('-')), None, "already at the minimum");
}

#[test]
fn filter_is_typed_then_applied() {
    let mut app = app_with(ConsoleOptions::default(), 80, 24, snapshot());
    assert_eq!(app.handle_key(ch('/')), None);
    for c in "555".chars() {
        assert_eq!(app.handle_key(ch(c)), None, "typing reads nothing");
    }
    // `p` while typing is text, not pause.
    assert_eq!(app.handle_key(ch('p')), None);
    assert_eq!(app.handle_key(key(KeyCode::Backspace)), None);
    let Some(Action::LoadPage(query)) = app.handle_key(key(KeyCode::Enter)) else {
        panic!("Enter applies the filter");
    };
    assert_eq!(query.text.as_deref(), Some("555"));
    assert_eq!(query.offset, 0);

    // Esc in the input clears it.
    app.handle_key(ch('/'));
    let Some(Action::LoadPage(query)) = app.handle_key(key(KeyCode::Esc)) else {
        panic!("Esc clears the filter");
    };
    assert_eq!(query.text, None);
}

/// A comparison makes what `/` typed an expression: parsed before anything is read, refused
/// in the prompt with the column of its fault, applied as the query's filter (not a search).
#[test]
fn an_expression_filter_is_parsed_refused_where_wrong_and_applied() {
    let mut app = app_with(ConsoleOptions::default(), 100, 24, snapshot());
    app.handle_key(ch('/'));
    for c in "status = FIALED".chars() {
        app.handle_key(ch(c));
    }
    assert_eq!(app.handle_key(key(KeyCode::Enter)), None, "nothing read");
    assert_eq!(
        app.input.as_deref(),
        Some("status = FIALED"),
        "the prompt stays"
    );
    let shown = screen(&app, 100, 24);
    assert!(
        shown.contains("column 10: unknown call status"),
        "the prompt says where: {shown}"
    );
    // Fixing it clears the complaint and applies the expression.
    for _ in 0..6 {
        app.handle_key(key(KeyCode::Backspace));
    }
    assert_eq!(app.input_error, None, "typing clears the complaint");
    for c in "FAILED and attempts >= 2".chars() {
        app.handle_key(ch(c));
    }
    let Some(Action::LoadPage(query)) = app.handle_key(key(KeyCode::Enter)) else {
        panic!("Enter applies the expression");
    };
    assert_eq!(
        query.text, None,
        "an expression is not searched for as text"
    );
    assert_eq!(
        query.filter,
        Some(crate::model::filter::parse("status = FAILED and attempts >= 2").expect("parses"))
    );
    let shown = screen(&app, 100, 24);
    assert!(
        shown.contains("filter \"status = FAILED and attempts >= 2\""),
        "{shown}"
    );
    // Esc clears it.
    let Some(Action::LoadPage(query)) = app.handle_key(key(KeyCode::Esc)) else {
        panic!("Esc clears the filter");
    };
    assert_eq!((query.text, query.filter), (None, None));
}

#[test]
fn moving_inside_the_window_reads_nothing_and_scrolling_reads_one_window() {
    let mut app = app_with(ConsoleOptions::default(), 80, 24, snapshot());
    let rows_on_screen = app.visible_rows();
    assert_eq!(rows_on_screen, 10);
    for _ in 0..rows_on_screen - 1 {
        assert_eq!(app.handle_key(ch('j')), None);
    }
    let Some(Action::LoadPage(query)) = app.handle_key(ch('j')) else {
        panic!("leaving the window reads the next one");
    };
    // The window read is the visible rows and a screenful either side.
    assert_eq!((query.offset, query.limit), (0, 21));
    let Some(Action::LoadPage(query)) = app.handle_key(key(KeyCode::PageDown)) else {
        panic!("a page down reads a window");
    };
    assert_eq!((query.offset, query.limit), (1, 30));
    assert!(matches!(app.handle_key(ch('g')), Some(Action::LoadPage(q)) if q.offset == 0));
}

#[test]
fn sort_cycles_and_rereads_from_the_top() {
    let mut app = app_with(ConsoleOptions::default(), 80, 24, snapshot());
    let Some(Action::LoadPage(query)) = app.handle_key(ch('s')) else {
        panic!("sort reads the list");
    };
    assert_eq!(query.sort, CallSort::Oldest);
}

#[test]
fn frozen_display_ignores_snapshots_until_unfrozen() {
    let mut app = app_with(ConsoleOptions::default(), 160, 48, snapshot());
    app.handle_key(ch('f'));
    assert!(screen(&app, 160, 48).contains("FROZEN"));
    let mut newer = snapshot();
    newer.rate_per_second = 7.5;
    newer.dispatch_paused = Some(Pause::new(StopCause::Operator, "paused by operator"));
    assert_eq!(app.apply(Update::Snapshot(Box::new(newer))), None);
    assert!(screen(&app, 160, 48).contains("rate 2.0/s"));
    // Decisions use the newest snapshot even while frozen.
    assert_eq!(
        app.handle_key(ch('p')),
        Some(Action::Send(Command::ResumeAll))
    );
    assert!(matches!(app.handle_key(ch('f')), Some(Action::LoadPage(_))));
    assert!(screen(&app, 160, 48).contains("rate 7.5/s"));
}

#[test]
fn retry_call_only_for_failed_calls() {
    let mut app = failed_tab(80, 24);
    let id = app.selected_row().expect("selected").id;
    assert_eq!(
        app.handle_key(ch('r')),
        Some(Action::Send(Command::RetryCall { call_id: id }))
    );
    app.handle_key(ch('6'));
    load_page(&mut app, rows(40), 418);
    // The first row of the mixed list is QUEUED.
    assert_eq!(app.handle_key(ch('r')), None);
    let status = app.status().expect("a refusal").0.clone();
    assert!(status.contains("only failed calls"), "{status}");
}

#[test]
fn replies_land_on_the_status_line() {
    let mut app = app_with(ConsoleOptions::default(), 80, 24, snapshot());
    app.apply(Update::Reply(Ok("rate 2.0 → 3.0/s".into())));
    assert!(screen(&app, 80, 24).contains("rate 2.0 → 3.0/s"));
    app.apply(Update::Reply(Err(
        "campaign spring-promo is COMPLETED".into()
    )));
    assert!(screen(&app, 80, 24).contains("refused: campaign spring-promo is COMPLETED"));
}

#[test]
fn stale_pages_of_another_list_are_dropped() {
    let mut app = app_with(ConsoleOptions::default(), 80, 24, snapshot());
    app.handle_key(ch('4'));
    let stale = CallQuery {
        tab: CallTab::All,
        ..app.current_query()
    };
    app.apply(Update::Page {
        query: stale,
        rows: rows(10),
        total: 418,
    });
    assert_eq!(app.total, None, "still waiting for the failed list");
}

#[test]
fn remapped_keys_drive_the_app_and_its_hints() {
    let options = ConsoleOptions {
        keys: [("pause_all".to_string(), "F2".to_string())].into(),
        ..ConsoleOptions::default()
    };
    let mut app = app_with(options, 160, 48, snapshot());
    assert_eq!(app.handle_key(ch('p')), None);
    assert!(matches!(
        app.handle_key(key(KeyCode::F(2))),
        Some(Action::Send(Command::PauseAll { .. }))
    ));
    assert!(screen(&app, 160, 48).contains("F2 pause"));
}

#[test]
fn log_pane_switches_to_the_tracing_log() {
    use tracing_subscriber::layer::SubscriberExt;

    tui_logger::set_default_level(tui_logger::LevelFilter::Trace);
    let subscriber = tracing_subscriber::registry().with(super::tracing_layer());
    tracing::subscriber::with_default(subscriber, || {
        tracing::warn!(target: "switchboard::retry", call_id = 7, "retrying after HTTP 429");
    });
    tui_logger::move_events();

    let mut app = app_with(ConsoleOptions::default(), 160, 48, snapshot());
    assert!(screen(&app, 160, 48).contains("Retry log · 10 events"));
    assert_eq!(app.handle_key(ch('l')), None);
    let text = screen(&app, 160, 48);
    assert!(text.contains("Log · tracing"), "{text}");
    assert!(text.contains("retrying after HTTP 429"), "{text}");
}

#[test]
fn tab_moves_focus_and_movement_keys_scroll_the_log() {
    let mut app = app_with(ConsoleOptions::default(), 80, 24, snapshot());
    app.handle_key(key(KeyCode::Tab));
    assert_eq!(app.focus, super::Focus::Log);
    // The newest event is at the bottom; k goes back in time and reads nothing.
    assert!(screen(&app, 80, 24).contains("rate 1.5 → 2.0/s"));
    assert_eq!(app.handle_key(ch('k')), None);
    assert_eq!(app.handle_key(ch('k')), None);
    let text = screen(&app, 80, 24);
    assert!(!text.contains("rate 1.5 → 2.0/s"), "{text}");
    assert!(text.contains("(↑2)"), "{text}");
    app.handle_key(key(KeyCode::BackTab));
    assert_eq!(app.focus, super::Focus::Calls);
}

// ---- issue 11 §2: a screen that tells the truth at a glance --------------------------------

const THREE_SIZES: [(u16, u16); 3] = [(80, 24), (120, 34), (200, 50)];

fn snap_three(name: &str, build: impl Fn(u16, u16) -> App) {
    for (width, height) in THREE_SIZES {
        let app = build(width, height);
        insta::assert_snapshot!(
            format!("{name}_{width}x{height}"),
            screen(&app, width, height)
        );
    }
}

/// `rows(40)` with `n` newer calls on top, as a read after `n` creates returns it.
fn rows_with_newer(n: i64) -> Vec<CallListRow> {
    let mut all: Vec<CallListRow> = (1..=n)
        .rev()
        .map(|i| row(1100 + i, CallStatus::Ringing))
        .collect();
    all.extend(rows(40));
    all
}

/// Selects the fourth row, then lets `arrived` newer calls come in (two reads: the first
/// finds the call moved down, the second reads the window around it).
fn selection_with_arrivals(w: u16, h: u16, arrived: i64) -> App {
    let mut app = app_with(demo(), w, h, snapshot());
    for _ in 0..3 {
        app.handle_key(ch('j'));
    }
    let chosen = app.selected_row().expect("a selected row").id;
    assert_eq!(chosen, 1097);
    let on_screen = app.selected - app.scroll;
    for _ in 0..2 {
        load_page(&mut app, rows_with_newer(arrived), 418 + arrived);
    }
    let row = app.selected_row().expect("still a selected row");
    assert_eq!(
        row.id, chosen,
        "the selection follows the call, not the row"
    );
    assert_eq!(app.selected, 3 + arrived);
    assert_eq!(
        app.selected - app.scroll,
        on_screen,
        "and stays where it was on screen"
    );
    app
}

#[test]
fn screen_selection_held_while_rows_arrive() {
    snap_three("selection_held", |w, h| selection_with_arrivals(w, h, 5));
}

#[test]
fn selection_follows_its_call_through_bursts_and_top_jumps_to_the_newest() {
    let mut app = selection_with_arrivals(80, 24, 8);
    // Acting on the selection acts on that call.
    let Some(Action::LoadAttempts(id)) = app.handle_key(key(KeyCode::Enter)) else {
        panic!("Enter opens the details");
    };
    assert_eq!(id, 1097);
    app.handle_key(key(KeyCode::Esc));
    // `g` goes to the top: the newest call, which the selection then holds.
    app.handle_key(ch('g'));
    load_page(&mut app, rows_with_newer(8), 426);
    assert_eq!(app.selected_row().map(|r| r.id), Some(1108));
    load_page(&mut app, rows_with_newer(9), 427);
    assert_eq!(app.selected_row().map(|r| r.id), Some(1108));
    // Home is the same key.
    app.handle_key(key(KeyCode::Home));
    assert_eq!(app.selected, 0);
}

#[test]
fn a_selected_call_that_leaves_the_list_leaves_the_cursor_on_its_neighbour() {
    let mut app = app_with(demo(), 80, 24, snapshot());
    app.handle_key(ch('j'));
    let mut all = rows(40);
    let gone = all.remove(1);
    load_page(&mut app, all, 417);
    assert_eq!(app.selected, 1);
    let now = app.selected_row().expect("a row").id;
    assert_ne!(now, gone.id);
    assert_eq!(now, 1098);
}

/// Waiting contacts: due now, waiting for a redial (09:05 in Chicago, 14:05Z) or for the
/// calling window (09:00 in Los Angeles, 16:00Z), in turn.
fn pending_rows(n: i64) -> Vec<CallListRow> {
    use crate::policy::{WaitReason, Waiting};
    let now = parse_time(NOW).expect("fixed time parses");
    (0..n)
        .map(|i| CallListRow {
            id: 2000 + i,
            contact_id: 2000 + i,
            status: CallStatus::Requeued,
            // The contact waiting for a redial has had its first call.
            attempt_count: i64::from(i % 3 == 1),
            provider_call_id: None,
            ended_reason: None,
            cost_usd: None,
            pending_contact: true,
            sequence: i64::from(i % 3 == 1),
            redials: i64::from(i % 3 == 1),
            lane: Some(match i % 3 {
                1 => crate::model::Lane::Redial,
                _ => crate::model::Lane::Fresh,
            }),
            waiting: match i % 3 {
                0 => None,
                1 => Some(Waiting {
                    until: now + chrono::Duration::minutes(125),
                    zone: chrono_tz::America::Chicago,
                    why: WaitReason::Deferred("redial 1 of 2 after customer-busy".into()),
                }),
                _ => Some(Waiting {
                    until: now + chrono::Duration::hours(4),
                    zone: chrono_tz::America::Los_Angeles,
                    why: WaitReason::Window,
                }),
            },
            ..row(1000 + i, CallStatus::Requeued)
        })
        .collect()
}

#[test]
fn screen_pending_tab_lists_contacts_waiting() {
    snap_three("pending_tab", |w, h| {
        let mut app = app_with(demo(), w, h, snapshot());
        let Some(Action::LoadPage(query)) = app.handle_key(ch('1')) else {
            panic!("1 reads the Pending tab");
        };
        assert_eq!(query.tab, CallTab::Pending);
        load_page(&mut app, pending_rows(30), 580);
        let text = screen(&app, w, h);
        // The tab counts are the campaign pane's numbers.
        for tab in [
            "Pending 580",
            "Dialing 3",
            "Active 9",
            "Failed 18",
            "Done 370",
            "All 418",
        ] {
            assert!(text.contains(tab), "{tab} in\n{text}");
        }
        assert!(
            text.contains("FRESH") && text.contains("REDIAL") && text.contains("now"),
            "{text}"
        );
        // When each contact will be dialled, in its own zone, and why not sooner.
        assert!(text.contains("09:05") && text.contains("09:00"), "{text}");
        if w >= 200 {
            assert!(
                text.contains("redial 1 of 2 after customer-busy: due 09:05 America/Chicago"),
                "{text}"
            );
            assert!(
                text.contains("window opens 09:00 America/Los_Angeles"),
                "{text}"
            );
        }
        // A contact has no attempts to show nor a call to retry.
        assert_eq!(app.handle_key(key(KeyCode::Enter)), None);
        assert_eq!(app.handle_key(ch('r')), None);
        app.status = None;
        app
    });
}

#[test]
fn screen_breaker_open_header_rings_once_until_acknowledged() {
    let build = |w, h| {
        let mut snap = snapshot();
        snap.breaker.state = BreakerState::Open;
        snap.breaker.consecutive_failures = 5;
        snap.breaker.retry_in_ms = 12_500;
        let mut app = app_with(demo(), w, h, snap.clone());
        assert!(app.take_bell(), "a new state that needs the operator rings");
        app.apply(Update::Snapshot(Box::new(snap)));
        assert!(!app.take_bell(), "once");
        assert!(app.alert_unacknowledged());
        app
    };
    snap_three("breaker_open", build);
    let mut app = build(120, 34);
    assert!(screen(&app, 120, 34).contains("▶ BREAKER OPEN ◀"));
    app.handle_key(ch('a'));
    assert!(!app.alert_unacknowledged());
    let text = screen(&app, 120, 34);
    assert!(
        !text.contains("▶ BREAKER OPEN ◀") && text.contains("BREAKER OPEN"),
        "{text}"
    );
    // Closing and opening again is a new alert.
    app.apply(Update::Snapshot(Box::new(snapshot())));
    let mut open = snapshot();
    open.breaker.state = BreakerState::Open;
    app.apply(Update::Snapshot(Box::new(open)));
    assert!(app.take_bell() && app.alert_unacknowledged());
}

#[test]
fn screen_credits_blocked_header_says_what_to_do_next() {
    snap_three("credits_blocked", |w, h| {
        let mut snap = snapshot();
        snap.campaigns[0].status = CampaignStatus::Paused;
        snap.campaigns[0].pause_reason =
            Some("Vapi: insufficient credits; add credits, then resume".into());
        snap.campaigns[0].pause_cause = Some(StopCause::Credits);
        let mut app = app_with(demo(), w, h, snap);
        assert!(app.take_bell());
        let text = screen(&app, w, h);
        assert!(text.contains("BLOCKED"), "{text}");
        if w >= 120 {
            assert!(text.contains("add credits"), "{text}");
        }
        app.handle_key(ch('a'));
        app
    });
}

#[test]
fn a_scheduled_campaign_waits_for_its_start_and_ends_without_an_alarm() {
    let (w, h) = (140, 40);
    let mut waiting = snapshot();
    waiting.campaigns[0].waiting = Some("scheduled to start Mon 09:00 America/Chicago".into());
    let app = app_with(demo(), w, h, waiting);
    let text = screen(&app, w, h);
    assert!(text.contains("WAITING"), "{text}");
    assert!(text.contains("scheduled to start Mon 09:00"), "{text}");

    let mut ended = snapshot();
    ended.campaigns[0].status = CampaignStatus::Paused;
    ended.campaigns[0].pause_reason = Some("its end-by time Mon 17:00 America/Chicago came".into());
    ended.campaigns[0].pause_cause = Some(StopCause::Schedule);
    let mut app = app_with(demo(), w, h, ended);
    assert!(!app.take_bell(), "an end as planned rings no bell");
    let text = screen(&app, w, h);
    assert!(
        text.contains("ENDED") && !text.contains("BLOCKED"),
        "{text}"
    );
    assert!(text.contains("end-by time Mon 17:00"), "{text}");
}

fn three_campaigns() -> Snapshot {
    let mut snap = snapshot();
    let mut draft = campaign(3, "winter-follow-up", CampaignStatus::Draft);
    draft.contacts_done = 0;
    draft.started_at = None;
    snap.campaigns.push(draft);
    snap
}

#[test]
fn screen_campaign_list() {
    snap_three("campaign_list", |w, h| {
        let mut app = app_with(demo(), w, h, three_campaigns());
        assert_eq!(app.handle_key(ch('C')), None);
        app.handle_key(ch('j'));
        assert_eq!(app.popup(), Some(&Popup::Campaigns { selected: 1 }));
        let text = screen(&app, w, h);
        for name in ["spring-promo", "renewals-q2", "winter-follow-up", "DRAFT"] {
            assert!(text.contains(name), "{name} in\n{text}");
        }
        app
    });
}

#[test]
fn the_campaign_list_starts_pauses_resumes_and_cancels_what_it_highlights() {
    let mut app = app_with(ConsoleOptions::default(), 120, 34, three_campaigns());
    app.handle_key(ch('C'));
    // The shown campaign (dialling) is highlighted first: P pauses it.
    assert_eq!(
        app.handle_key(ch('P')),
        Some(Action::Send(Command::PauseCampaign { campaign_id: 1 }))
    );
    app.handle_key(ch('j'));
    assert_eq!(
        app.handle_key(ch('P')),
        Some(Action::Send(Command::ResumeCampaign { campaign_id: 2 }))
    );
    app.handle_key(ch('j'));
    // A draft is started, not resumed.
    assert_eq!(app.handle_key(ch('P')), None);
    assert_eq!(
        app.handle_key(ch('S')),
        Some(Action::Send(Command::StartCampaign { campaign_id: 3 }))
    );
    // Cancel asks, saying what it does, and the safe button is the default.
    assert_eq!(app.handle_key(ch('c')), None);
    let Some(Popup::Confirm(confirm)) = app.popup() else {
        panic!("cancel asks first");
    };
    assert!(
        confirm
            .message
            .starts_with("Cancel the campaign \"winter-follow-up\"?"),
        "{}",
        confirm.message
    );
    assert_eq!(
        (confirm.keep_label.as_str(), confirm.act_label.as_str()),
        ("Keep it", "Cancel campaign")
    );
    assert!(screen(&app, 120, 34).contains("[ Keep it ]"));
    assert_eq!(app.handle_key(key(KeyCode::Enter)), None);
    assert_eq!(app.popup(), None);
    // Enter in the list shows the highlighted campaign.
    app.handle_key(ch('C'));
    app.handle_key(ch('j'));
    let Some(Action::LoadPage(query)) = app.handle_key(key(KeyCode::Enter)) else {
        panic!("Enter shows the campaign");
    };
    assert_eq!(query.campaign_id, Some(2));
    assert_eq!(app.popup(), None);
    // Shown dialling campaign: "Keep running".
    app.handle_key(ch('['));
    app.handle_key(ch('c'));
    let Some(Popup::Confirm(confirm)) = app.popup() else {
        panic!("cancel asks first");
    };
    assert_eq!(confirm.keep_label, "Keep running");
    assert!(screen(&app, 120, 34).contains("[ Keep running ]"));
}

fn mouse(
    kind: crossterm::event::MouseEventKind,
    column: u16,
    row: u16,
) -> crossterm::event::MouseEvent {
    crossterm::event::MouseEvent {
        kind,
        column,
        row,
        modifiers: KeyModifiers::NONE,
    }
}

#[test]
fn mouse_clicks_tabs_rows_and_campaigns_and_the_wheel_scrolls() {
    use crossterm::event::{MouseButton, MouseEventKind as M};
    let click = |x, y| mouse(M::Down(MouseButton::Left), x, y);
    let mut app = app_with(demo(), 120, 34, three_campaigns());
    let calls = super::layout::layout(ratatui::layout::Rect::new(0, 0, 120, 34)).calls;
    // A click on "4 Failed" shows that tab.
    let (_, from, _) =
        super::panes::calls::tab_ranges(&super::panes::calls::CallsPane::of(&app), calls.width)
            .0
            .into_iter()
            .find(|(tab, _, _)| *tab == CallTab::Failed)
            .expect("a Failed tab");
    let Some(Action::LoadPage(query)) = app.handle_mouse(click(calls.x + from + 1, calls.y)) else {
        panic!("a click on a tab reads it");
    };
    assert_eq!(query.tab, CallTab::Failed);
    load_page(&mut app, failed_rows(18), 18);
    // A click on the third row selects its call.
    app.handle_mouse(click(
        calls.x + 5,
        calls.y + super::panes::calls::FIRST_ROW + 2,
    ));
    assert_eq!(app.selected, 2);
    assert_eq!(app.selected_row().map(|r| r.id), Some(1084));
    // The wheel moves the selection.
    app.handle_mouse(mouse(M::ScrollDown, calls.x + 5, calls.y + 5));
    assert_eq!(app.selected, 3);
    // In the campaign list: a click highlights, a second click shows.
    app.handle_key(ch('C'));
    let popup = super::panes::campaigns::popup_area(ratatui::layout::Rect::new(0, 0, 120, 34), 3);
    assert_eq!(app.handle_mouse(click(popup.x + 4, popup.y + 3)), None);
    assert_eq!(app.popup(), Some(&Popup::Campaigns { selected: 1 }));
    let Some(Action::LoadPage(query)) = app.handle_mouse(click(popup.x + 4, popup.y + 3)) else {
        panic!("a second click shows the campaign");
    };
    assert_eq!(query.campaign_id, Some(2));

    // --no-mouse: nothing reacts.
    let mut off = app_with(
        ConsoleOptions {
            mouse: false,
            ..demo()
        },
        120,
        34,
        snapshot(),
    );
    assert_eq!(off.handle_mouse(click(calls.x + from + 1, calls.y)), None);
    assert_eq!(off.tab, CallTab::All);
}

#[test]
fn screen_sparklines_of_the_last_ten_minutes() {
    snap_three("sparklines", |w, h| {
        let mut app = app_with(demo(), w, h, snapshot());
        let start = parse_time(NOW).expect("fixed time") - chrono::Duration::seconds(600);
        for i in 0..=600i64 {
            let mut snap = snapshot();
            // Creates in bursts, 429s in minute 4, active calls climbing then easing.
            for c in &mut snap.campaigns {
                c.created += i * 2 + (i / 30) % 3;
                c.contacts_done += i / 6;
            }
            snap.quota.rate_limited_total = if i < 240 {
                0
            } else {
                ((i - 240) / 5).min(12) as u64
            };
            snap.active = (i / 20).min(20) - (i / 300) * 4;
            snap.campaigns[0].active = snap.active;
            app.apply(Update::Snapshot(Box::new(snap)));
            app.apply(Update::Tick(start + chrono::Duration::seconds(i)));
        }
        let text = screen(&app, w, h);
        if w >= 120 {
            for name in [
                "creates/s",
                "429s/min",
                "active",
                "finish   in ~",
                "ended reasons",
            ] {
                assert!(text.contains(name), "{name} in\n{text}");
            }
        }
        app
    });
}

#[test]
fn details_wrap_long_errors_and_scroll_within_their_content() {
    let mut app = failed_tab(80, 24);
    let call_id = app.selected_row().expect("a selected row").id;
    app.handle_key(key(KeyCode::Enter));
    let long = "Vapi rejected the request: assistant.model.messages[0].content must be shorter \
                than 10000 characters; the prompt of assistant a-123 has 12817 characters. \
                Shorten the prompt, then retry the call. END-OF-ERROR";
    let attempts = (1..=8)
        .map(|n| Attempt {
            id: n,
            call_id,
            attempt: n,
            started_at: at(600 - n * 5),
            finished_at: Some(at(599 - n * 5)),
            http_status: Some(400),
            outcome: AttemptOutcome::Rejected,
            error: Some(long.to_string()),
            retry_delay_ms: None,
        })
        .collect();
    app.apply(Update::Attempts {
        call_id,
        rows: attempts,
        analysis: None,
        transcript: Vec::new(),
        now: None,
    });
    let text = screen(&app, 80, 24);
    // Wrapped, not cut: the end of the first error is on screen.
    assert!(text.contains("END-OF-ERROR"), "{text}");
    assert!(text.contains("scroll (0/"), "{text}");
    for _ in 0..500 {
        app.handle_key(ch('j'));
    }
    let Some(Popup::Details(details)) = app.popup() else {
        panic!("still open");
    };
    let max = details.scroll;
    assert!(max > 0 && max < 100, "clamped to the content: {max}");
    app.handle_key(ch('k'));
    let Some(Popup::Details(details)) = app.popup() else {
        panic!("still open");
    };
    assert_eq!(details.scroll, max - 1, "one k goes back one line");
}

#[test]
fn the_filter_highlights_its_matches() {
    let mut app = app_with(demo(), 120, 34, snapshot());
    app.handle_key(ch('/'));
    for c in "hopper".chars() {
        app.handle_key(ch(c));
    }
    app.handle_key(key(KeyCode::Enter));
    let hoppers: Vec<_> = rows(40)
        .into_iter()
        .filter(|r| r.contact_name.as_deref() == Some("Grace Hopper"))
        .collect();
    let n = hoppers.len() as i64;
    load_page(&mut app, hoppers, n);
    let mut terminal = Terminal::new(TestBackend::new(120, 34)).expect("test backend");
    terminal
        .draw(|frame| frame.render_widget(&app, frame.area()))
        .expect("draw");
    let buffer = terminal.backend().buffer();
    // Find "Hopper" on the first row and check its cells are marked.
    let area = super::layout::layout(ratatui::layout::Rect::new(0, 0, 120, 34)).calls;
    let y = area.y + super::panes::calls::FIRST_ROW;
    let line: String = (area.x..area.x + area.width)
        .map(|x| buffer[(x, y)].symbol().to_string())
        .collect();
    let at = line.find("Hopper").expect("Hopper on the first row");
    let x = area.x + u16::try_from(line[..at].chars().count()).expect("fits");
    let cell = &buffer[(x, y)];
    assert!(
        cell.modifier.contains(ratatui::style::Modifier::UNDERLINED),
        "{cell:?}"
    );
    let before = &buffer[(x - 2, y)];
    assert!(
        !before
            .modifier
            .contains(ratatui::style::Modifier::UNDERLINED)
    );
}

#[test]
fn help_lists_every_key_the_panes_and_popups_accept() {
    let app = app_with(demo(), 120, 34, snapshot());
    let text: String = super::panes::help::lines(&super::panes::help::HelpPane::of(&app, 0))
        .iter()
        .map(|l| l.to_string() + "\n")
        .collect();
    for spec in super::keys::ACTIONS {
        assert!(text.contains(spec.description), "{} in\n{text}", spec.name);
    }
    for popup in [
        "Campaign list (C)",
        "Details (Enter)",
        "In dialogs: y acts",
        "Mouse:",
    ] {
        assert!(text.contains(popup), "{popup} in\n{text}");
    }
}

#[test]
fn windows_near_the_top_are_read_from_the_top_and_deep_ones_by_key() {
    // Rows arriving above a held row would make its index stale: near the top the window
    // is read by offset, always true.
    let mut app = app_with(demo(), 80, 24, snapshot());
    assert_eq!(app.current_query().anchor, None);
    load_page(&mut app, rows(10), 1_000_000);
    // Deep in the list (a page at a time from the middle), the held rows anchor the read.
    app.scroll = 500_000;
    app.selected = 500_000;
    app.page_offset = 499_995;
    app.page = rows(30);
    let query = app.current_query();
    let anchor = query.anchor.expect("a deep window is read by key");
    assert_eq!(anchor.index, 500_000);
    assert_eq!(anchor.id, 1095);
}

fn report_line<K>(key: K, calls: i64, talked: i64) -> crate::store::stats::ReportLine<K> {
    crate::store::stats::ReportLine {
        key,
        calls,
        talked,
        cost_usd: calls as f64 * 0.11,
    }
}

fn arm_line(
    position: i64,
    assistant: &str,
    calls: u64,
    talked: u64,
    successes: u64,
) -> crate::store::arms::ArmLine {
    let interval = crate::model::arms::wilson(successes, talked);
    crate::store::arms::ArmLine {
        position: Some(position),
        assistant_id: assistant.into(),
        status: Some(crate::model::ArmStatus::Active),
        calls,
        answered: talked,
        conversations: talked,
        successes,
        success_rate: Some(successes as f64 / talked as f64),
        interval,
        cost_usd: calls as f64 * 0.11,
        cost_per_success: Some(calls as f64 * 0.11 / successes as f64),
        voicemail_messages_left: 2,
        differs_from_best: (position != 1)
            .then(|| crate::model::arms::significant(98, 140, successes, talked)),
    }
}

#[test]
fn screen_campaign_report_by_reason_hour_and_dial() {
    use crate::store::stats::CampaignReport;
    let mut app = app_with(demo(), 120, 34, snapshot());
    assert_eq!(app.handle_key(ch('o')), Some(Action::LoadReport(1)));
    assert!(screen(&app, 120, 34).contains("reading the report…"));
    let report = CampaignReport {
        zone: "America/Chicago".into(),
        // 210 + 61 conversations that ended normally, of 370 ended calls.
        success: crate::store::analysis::SuccessTally {
            judged: 370,
            successes: 271,
        },
        by_reason: vec![
            report_line("customer-ended-call".to_string(), 210, 210),
            report_line("assistant-ended-call".to_string(), 61, 61),
            report_line("customer-did-not-answer".to_string(), 52, 0),
            report_line("customer-busy".to_string(), 31, 0),
            report_line("voicemail".to_string(), 16, 0),
        ],
        by_hour: vec![
            report_line(9, 96, 70),
            report_line(10, 121, 88),
            report_line(11, 104, 71),
            report_line(12, 49, 42),
        ],
        by_dial: vec![
            report_line(1, 301, 219),
            report_line(2, 57, 43),
            report_line(3, 12, 9),
        ],
        arms: vec![
            arm_line(1, "asst-warm-intro", 190, 140, 98),
            arm_line(2, "asst-direct", 180, 131, 61),
        ],
        voicemail_messages_left: 4,
    };
    // A report of another campaign (the operator moved on) is dropped.
    app.apply(Update::Report {
        campaign_id: 2,
        report: report.clone(),
    });
    assert!(matches!(
        app.popup(),
        Some(Popup::Report { report: None, .. })
    ));
    app.apply(Update::Report {
        campaign_id: 1,
        report,
    });
    let text = screen(&app, 120, 34);
    assert!(text.contains("370 ended calls"), "{text}");
    assert!(text.contains("271 with a conversation (73%)"), "{text}");
    assert!(text.contains("By hour (America/Chicago)"), "{text}");
    assert!(text.contains("10:00"), "{text}");
    assert!(text.contains("4 voicemail messages left"), "{text}");
    assert!(text.contains("asst-direct"), "{text}");
    assert!(text.contains("significant"), "{text}");
    insta::assert_snapshot!("campaign_report_120x34", text);
    // Esc (or o again) closes it.
    assert_eq!(app.handle_key(key(KeyCode::Esc)), None);
    assert_eq!(app.popup(), None);
}

/// The campaign's status line gives its start date where the pane has room, else the age
/// alone; it is never cut mid-word (a COMPLETED campaign 45 minutes old overflowed a
/// 120-column console's pane by two characters).
#[test]
fn the_status_line_keeps_the_age_when_the_date_does_not_fit() {
    let mut snap = snapshot();
    snap.campaigns[0].status = CampaignStatus::Completed;
    snap.campaigns[0].started_at = Some(at(45 * 60));
    let narrow = screen(&app_with(demo(), 120, 34, snap.clone()), 120, 34);
    assert!(
        narrow.contains("status   COMPLETED, started 45m ago"),
        "{narrow}"
    );
    assert!(!narrow.contains("COMPLETED since"), "{narrow}");
    let wide = screen(&app_with(demo(), 200, 50, snap), 200, 50);
    assert!(
        wide.contains("status   COMPLETED since 2025-05-01 11:15 (45m ago)"),
        "{wide}"
    );
}

// ---- live calls -----------------------------------------------------------------------

/// A console on one live call (IN_PROGRESS), its details open.
fn live_details(width: u16, height: u16) -> (App, i64) {
    let mut app = app_with(demo(), width, height, snapshot());
    let live = vec![
        row(1100, CallStatus::InProgress),
        row(1099, CallStatus::Ended),
    ];
    load_page(&mut app, live, 2);
    let call_id = app.selected_row().expect("a selected row").id;
    assert_eq!(
        app.handle_key(key(KeyCode::Enter)),
        Some(Action::LoadAttempts(call_id))
    );
    (app, call_id)
}

fn said(
    lines: &[(crate::model::live::Speaker, f64, &str)],
) -> Vec<crate::model::live::TranscriptLine> {
    lines
        .iter()
        .map(|(s, at, t)| crate::model::live::TranscriptLine::new(*s, *at, t))
        .collect()
}

#[test]
fn screen_live_transcript_follows_the_conversation_and_stays_after_the_end() {
    use crate::model::live::Speaker::{Assistant, Customer};
    let (mut app, call_id) = live_details(120, 34);
    let conversation = [
        (
            Assistant,
            0.5,
            "Hi, this is Ava from Northwind Dental. Am I speaking with the patient?",
        ),
        (Customer, 3.5, "Yes, speaking. What is this about?"),
        (
            Assistant,
            6.5,
            "You are due for your check-up. Would Tuesday at 10 work for you?",
        ),
        (
            Customer,
            9.5,
            "Tuesday is hard. Do you have anything on Thursday?",
        ),
    ];
    let update = |lines, now| Update::Attempts {
        call_id,
        rows: Vec::new(),
        analysis: None,
        transcript: said(lines),
        now,
    };
    app.apply(update(&conversation[..2], None));
    let early = screen(&app, 120, 34);
    assert!(early.contains("transcript (live)"), "{early}");
    assert!(!early.contains("Tuesday is hard"), "{early}");
    // Every other second the open popup reads the call again.
    let tick = app.apply(Update::Tick(
        parse_time("2026-11-24T12:00:02Z").expect("time"),
    ));
    assert_eq!(tick, Some(Action::RefreshLive(call_id)));
    app.apply(update(&conversation, None));
    insta::assert_snapshot!("live_transcript_120x34", screen(&app, 120, 34));
    // The call ended: the transcript stays, no longer live, the header shows how it ended,
    // and nothing more is read.
    let ended = CallNow {
        status: CallStatus::Ended,
        ended_reason: Some("customer-ended-call".into()),
        cost_usd: Some(0.42),
    };
    app.apply(update(&conversation, Some(ended)));
    let after = screen(&app, 120, 34);
    assert!(
        after.contains("Tuesday is hard") && !after.contains("(live)"),
        "{after}"
    );
    assert!(
        after.contains("status ENDED")
            && after.contains("ended reason customer-ended-call")
            && after.contains("$0.42"),
        "{after}"
    );
    let tick = app.apply(Update::Tick(
        parse_time("2026-11-24T12:00:04Z").expect("time"),
    ));
    assert_eq!(tick, None);
}

#[test]
fn live_keys_name_the_call_and_send_through_the_operations_layer() {
    let (mut app, call_id) = live_details(160, 48);
    // Mute from the details popup: sent at once.
    let sent = app.handle_key(ch('m'));
    assert!(
        matches!(&sent, Some(Action::Send(Command::Live { call_id: c, action: LiveAction::Mute { mute: true }, .. })) if *c == call_id),
        "{sent:?}"
    );
    // Say: a prompt naming the call and the person; Tab: then end the call.
    assert_eq!(app.handle_key(ch('e')), None);
    let Some(Popup::Prompt(prompt)) = app.popup() else {
        panic!("say opens a prompt");
    };
    assert!(
        prompt.who.starts_with(&format!("call {call_id} (")),
        "{}",
        prompt.who
    );
    for c in "One moment".chars() {
        app.handle_key(ch(c));
    }
    app.handle_key(key(KeyCode::Tab));
    let sent = app.handle_key(key(KeyCode::Enter));
    assert_eq!(
        sent,
        Some(Action::Send(Command::Live {
            call_id,
            action: LiveAction::Say {
                text: "One moment".into(),
                end_after: true
            },
            then: AfterEnd::Done,
        }))
    );
    // Transfer to something that is no destination: refused, the prompt stays.
    app.handle_key(key(KeyCode::Enter));
    app.handle_key(ch('t'));
    for c in "desk".chars() {
        app.handle_key(ch(c));
    }
    assert_eq!(app.handle_key(key(KeyCode::Enter)), None);
    assert!(matches!(app.popup(), Some(Popup::Prompt(_))));
    app.handle_key(key(KeyCode::Esc));
    // End: asks first; r ends and re-queues the contact.
    app.handle_key(ch('E'));
    let Some(Popup::Confirm(confirm)) = app.popup() else {
        panic!("end asks first");
    };
    assert!(
        confirm.message.contains(&format!("call {call_id} (")),
        "{}",
        confirm.message
    );
    let sent = app.handle_key(ch('r'));
    assert_eq!(
        sent,
        Some(Action::Send(Command::Live {
            call_id,
            action: LiveAction::End,
            then: AfterEnd::Requeue
        }))
    );
    // The kill switch says how many calls it ends; the safe button is the default.
    app.handle_key(ch('K'));
    let Some(Popup::Confirm(confirm)) = app.popup() else {
        panic!("the kill switch asks first");
    };
    assert!(
        confirm.message.contains("live call(s)"),
        "{}",
        confirm.message
    );
    assert!(!confirm.confirm_selected);
    assert_eq!(
        app.handle_key(key(KeyCode::Enter)),
        None,
        "Enter keeps calling"
    );
    app.handle_key(ch('K'));
    assert_eq!(
        app.handle_key(ch('y')),
        Some(Action::Send(Command::EndLiveCalls {
            campaign_id: None,
            then: AfterEnd::Done
        }))
    );
    // On a call that is not live, the keys say why.
    let mut app = app_with(demo(), 160, 48, snapshot());
    load_page(&mut app, vec![row(1099, CallStatus::Ended)], 1);
    assert_eq!(app.handle_key(ch('e')), None);
    assert!(app.popup().is_none());
}

#[test]
fn callback_and_arm_keys_send_through_the_operations_layer() {
    let mut app = app_with(demo(), 120, 34, snapshot());
    // b on the selected row: a prompt naming the person; Enter books it.
    assert_eq!(app.handle_key(ch('b')), None);
    let Some(Popup::Prompt(prompt)) = app.popup() else {
        panic!("b opens a prompt");
    };
    let phone = prompt.phone.clone().expect("the selected contact's number");
    assert!(prompt.who.contains(&phone), "{}", prompt.who);
    for c in "15:00".chars() {
        app.handle_key(ch(c));
    }
    assert_eq!(
        app.handle_key(key(KeyCode::Enter)),
        Some(Action::Send(Command::BookCallback {
            campaign_id: 1,
            phone,
            at: "15:00".into(),
        }))
    );
    // A: an arm and what to do with it; anything else is refused and the prompt stays.
    assert_eq!(app.handle_key(ch('A')), None);
    for c in "asst-b".chars() {
        app.handle_key(ch(c));
    }
    assert_eq!(app.handle_key(key(KeyCode::Enter)), None);
    assert!(matches!(app.popup(), Some(Popup::Prompt(_))));
    for c in " stop".chars() {
        app.handle_key(ch(c));
    }
    assert_eq!(
        app.handle_key(key(KeyCode::Enter)),
        Some(Action::Send(Command::SetArm {
            campaign_id: 1,
            assistant_id: "asst-b".into(),
            status: crate::model::ArmStatus::Stopped,
        }))
    );
    assert_eq!(app.popup(), None);
}

#[test]
fn a_bulk_action_counts_first_asks_with_the_count_and_runs_only_when_confirmed() {
    use crate::model::bulk::{BulkAction, Effect, Ineligible};
    let mut app = app_with(ConsoleOptions::default(), 120, 30, snapshot());
    app.handle_key(ch('/'));
    for c in "status = FAILED".chars() {
        app.handle_key(ch(c));
    }
    app.handle_key(key(KeyCode::Enter));
    app.handle_key(ch('B'));
    let shown = screen(&app, 120, 30);
    assert!(shown.contains("Act on every row listed"), "{shown}");
    for c in "reschedule".chars() {
        app.handle_key(ch(c));
    }
    assert_eq!(
        app.handle_key(key(KeyCode::Enter)),
        None,
        "refused: no time"
    );
    assert!(
        screen(&app, 120, 30).contains("`reschedule` needs a time"),
        "the prompt says what is missing"
    );
    for _ in 0.."reschedule".len() {
        app.handle_key(key(KeyCode::Backspace));
    }
    for c in "retry".chars() {
        app.handle_key(ch(c));
    }
    let Some(Action::BulkPreview(request)) = app.handle_key(key(KeyCode::Enter)) else {
        panic!("Enter asks for the dry run");
    };
    assert_eq!(request.action, BulkAction::Retry);
    assert_eq!(request.selection.scope, crate::model::filter::Scope::Calls);
    assert_eq!(
        request.selection.query.filter,
        Some(crate::model::filter::parse("status = FAILED").expect("parses")),
        "the list's filter is what it acts on"
    );
    assert!(
        request.described.contains("`status = FAILED`"),
        "{}",
        request.described
    );
    let mut preview = switchboard_engine::bulk::Preview {
        matched: 5_002,
        ..Default::default()
    };
    preview.tally.insert(Ok(Effect::Retry), 5_000);
    preview.tally.insert(Err(Ineligible::Superseded), 2);
    let update = Update::BulkPreview {
        request: request.clone(),
        preview: Ok(preview),
    };
    assert_eq!(app.apply(update), None, "nothing runs before the answer");
    let shown = screen(&app, 120, 30);
    assert!(shown.contains("Retry 5,000 of the 5,002 calls"), "{shown}");
    assert!(
        shown.contains("retry 5,000"),
        "the button names count and action: {shown}"
    );
    assert_eq!(
        app.handle_key(ch('y')),
        Some(Action::Bulk(request)),
        "confirmed: it runs"
    );
    app.apply(Update::BulkProgress(2_500));
    assert!(screen(&app, 120, 30).contains("bulk action: 2,500 rows done"));
}

/// On the Pending tab an expression lists waiting contacts by themselves and their latest
/// call, and `B` acts on those same contacts.
#[test]
fn on_the_pending_tab_an_expression_filters_the_contacts_and_b_acts_on_them() {
    let mut app = app_with(ConsoleOptions::default(), 120, 30, snapshot());
    app.handle_key(ch('1'));
    app.handle_key(ch('/'));
    for c in "zone = America/Chicago".chars() {
        app.handle_key(ch(c));
    }
    let Some(Action::LoadPage(query)) = app.handle_key(key(KeyCode::Enter)) else {
        panic!("Enter applies the expression");
    };
    let expected = crate::model::filter::parse("zone = America/Chicago").expect("parses");
    assert_eq!(query.tab, CallTab::Pending);
    assert_eq!(query.filter.as_ref(), Some(&expected), "the list reads it");
    let shown = screen(&app, 120, 30);
    assert!(
        shown.contains("filter \"zone = America/Chicago\""),
        "{shown}"
    );
    assert!(!shown.contains("calls only"), "{shown}");
    app.handle_key(ch('B'));
    for c in "skip".chars() {
        app.handle_key(ch(c));
    }
    let Some(Action::BulkPreview(request)) = app.handle_key(key(KeyCode::Enter)) else {
        panic!("Enter asks for the dry run");
    };
    assert_eq!(
        request.selection.scope,
        crate::model::filter::Scope::Contacts
    );
    assert_eq!(
        request.selection.query.filter,
        Some(expected),
        "the same rows"
    );
}

#[test]
fn saved_filters_are_tabs_that_f_steps_through_and_w_saves() {
    use crate::store::saved_filters::SavedFilter;
    let mut app = app_with(ConsoleOptions::default(), 160, 40, snapshot());
    // Read at the first tick, then every ten seconds: what another console saved appears.
    assert!(app.saved_loaded);
    let at = |s: i64| chrono::DateTime::from_timestamp(1_796_000_000 + s, 0).expect("time");
    assert_eq!(
        app.apply(Update::Tick(at(1))),
        Some(Action::LoadSavedFilters)
    );
    assert_eq!(app.apply(Update::Tick(at(2))), None);
    assert_eq!(
        app.apply(Update::Tick(at(11))),
        Some(Action::LoadSavedFilters)
    );
    let saved = |name: &str, expression: &str| SavedFilter {
        name: name.into(),
        expression: expression.into(),
        saved_by: "cli".into(),
        saved_at: "2026-12-06T00:00:00Z".into(),
    };
    app.apply(Update::SavedFilters(vec![
        saved("busy", "reason ~ busy"),
        saved("failed-twice", "status = FAILED and attempts >= 2"),
    ]));
    assert!(screen(&app, 160, 40).contains("F busy·failed-twice"));
    let Some(Action::LoadPage(query)) = app.handle_key(ch('F')) else {
        panic!("F applies the first saved filter");
    };
    assert_eq!(
        query.filter,
        crate::model::filter::parse("reason ~ busy").ok()
    );
    let Some(Action::LoadPage(query)) = app.handle_key(ch('F')) else {
        panic!("F again: the next one");
    };
    assert_eq!(
        query.filter,
        crate::model::filter::parse("status = FAILED and attempts >= 2").ok()
    );
    let Some(Action::LoadPage(query)) = app.handle_key(ch('F')) else {
        panic!("after the last: none");
    };
    assert_eq!(query.filter, None);
    // W saves the filter in force under a typed name; a bad name is refused in the prompt.
    assert_eq!(app.handle_key(ch('W')), None);
    assert!(screen(&app, 160, 40).contains("no filter to save"));
    app.handle_key(ch('/'));
    for c in "zone = America/Chicago".chars() {
        app.handle_key(ch(c));
    }
    app.handle_key(key(KeyCode::Enter));
    app.handle_key(ch('W'));
    for c in "chi cago".chars() {
        app.handle_key(ch(c));
    }
    assert_eq!(app.handle_key(key(KeyCode::Enter)), None);
    assert!(screen(&app, 160, 40).contains("` ` in a filter's name"));
    for _ in 0..5 {
        app.handle_key(key(KeyCode::Backspace));
    }
    for c in "cago".chars() {
        app.handle_key(ch(c));
    }
    assert_eq!(
        app.handle_key(key(KeyCode::Enter)),
        Some(Action::SaveFilter {
            name: "chicago".into(),
            expression: "zone = America/Chicago".into()
        })
    );
}

#[test]
fn export_in_the_bulk_prompt_writes_the_shown_campaigns_matches() {
    let mut app = app_with(ConsoleOptions::default(), 120, 30, snapshot());
    app.handle_key(ch('/'));
    for c in "status = PENDING".chars() {
        app.handle_key(ch(c));
    }
    app.handle_key(key(KeyCode::Enter));
    app.handle_key(ch('B'));
    for c in "export".chars() {
        app.handle_key(ch(c));
    }
    assert_eq!(app.handle_key(key(KeyCode::Enter)), None);
    assert!(screen(&app, 120, 30).contains("`export` needs a file"));
    for c in " waiting.csv".chars() {
        app.handle_key(ch(c));
    }
    let Some(Action::Export {
        campaign_id,
        filter,
        path,
    }) = app.handle_key(key(KeyCode::Enter))
    else {
        panic!("Enter exports");
    };
    assert_eq!(Some(campaign_id), app.campaign_id);
    assert_eq!(filter, crate::model::filter::parse("status = PENDING").ok());
    assert_eq!(path, std::path::PathBuf::from("waiting.csv"));
}

#[tokio::test]
async fn an_export_from_the_console_writes_only_the_matches_and_no_partial_file() {
    let dir = tempfile::tempdir().expect("dir");
    let store = crate::store::Store::open_in(dir.path())
        .await
        .expect("store");
    let c = store
        .create_campaign("c", "a", "p")
        .await
        .expect("campaign");
    let contacts: Vec<crate::store::contacts::NewContact> = ["Ada", "Grace", "Alan"]
        .iter()
        .enumerate()
        .map(|(i, name)| crate::store::contacts::NewContact {
            name: Some((*name).into()),
            phone: format!("+1415555010{i}"),
            variables: "{}".into(),
            ..Default::default()
        })
        .collect();
    store
        .insert_contacts(c.id, &contacts)
        .await
        .expect("contacts");
    let path = dir.path().join("a.csv");
    let filter = crate::model::filter::parse("name ~ a and not name ~ grace").ok();
    let line = crate::export_to(&store, c.id, filter, &path)
        .await
        .expect("export");
    assert_eq!(line, format!("exported 2 contacts to {}", path.display()));
    let csv = std::fs::read_to_string(&path).expect("file");
    assert!(
        csv.contains("Ada") && csv.contains("Alan") && !csv.contains("Grace"),
        "{csv}"
    );
    assert!(!dir.path().join("a.csv.partial").exists());
    let nowhere = dir.path().join("no/such/dir/b.csv");
    let refused = crate::export_to(&store, c.id, None, &nowhere).await;
    assert!(refused.is_err_and(|e| e.starts_with("cannot write")));
}
