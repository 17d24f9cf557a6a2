//! One file per pane. Each draws from a narrow view struct of its own (`CallsPane`,
//! `DetailsPane`…: exactly what it shows), built from the app in one place (its `of`), into
//! its rectangle; none keeps state of its own. Small formatting helpers shared by the panes
//! live here.

pub mod calls;
pub mod campaign;
pub mod campaigns;
pub mod columns;
pub mod confirm;
pub mod details;
pub mod footer;
pub mod header;
pub mod help;
pub mod log;
pub mod prompt;
pub mod quota;
pub mod report;

use chrono::{DateTime, Utc};
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Block, BorderType, Borders};

use crate::model::{CallStatus, CampaignStatus};
use crate::store::parse_time;

/// A bordered pane; the focused one gets a bright border.
pub fn pane_block<'a>(title: impl Into<ratatui::text::Line<'a>>, focused: bool) -> Block<'a> {
    let border = if focused {
        Style::new().fg(Color::Cyan)
    } else {
        Style::new().fg(Color::DarkGray)
    };
    Block::new()
        .borders(Borders::ALL)
        .border_type(if focused {
            BorderType::Thick
        } else {
            BorderType::Plain
        })
        .border_style(border)
        .title(title)
}

/// A rectangle of at most `width` x `height` in the middle of `area`.
pub fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect::new(
        area.x + (area.width - width) / 2,
        area.y + (area.height - height) / 2,
        width,
        height,
    )
}

/// "5s", "3m", "2h", "4d" since `at` (stored ISO-8601), against the app's clock.
pub fn age(at: &str, now: DateTime<Utc>) -> String {
    let Some(at) = parse_time(at) else {
        return "?".into();
    };
    let secs = (now - at).num_seconds().max(0);
    match secs {
        0..60 => format!("{secs}s"),
        60..3_600 => format!("{}m", secs / 60),
        3_600..86_400 => format!("{}h", secs / 3_600),
        _ => format!("{}d", secs / 86_400),
    }
}

/// Time of day of a stored timestamp (UTC), or the text itself if it does not parse.
pub fn clock(at: &str) -> String {
    match parse_time(at) {
        Some(t) => t.format("%H:%M:%S").to_string(),
        None => at.to_string(),
    }
}

/// Date and time of a stored timestamp (UTC).
pub fn date_time(at: &str) -> String {
    match parse_time(at) {
        Some(t) => t.format("%Y-%m-%d %H:%M").to_string(),
        None => at.to_string(),
    }
}

pub fn money(usd: f64) -> String {
    format!("${usd:.2}")
}

/// 1234567 → "1,234,567": a million-call campaign's counts must stay readable.
pub fn count(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Milliseconds as "250ms", "4.0s", "2m05s".
pub fn duration_ms(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms}ms"),
        1_000..60_000 => format!("{:.1}s", ms as f64 / 1_000.0),
        _ => format!("{}m{:02}s", ms / 60_000, (ms % 60_000) / 1_000),
    }
}

/// Green, yellow, red as a gauge fills up.
pub fn load_color(ratio: f64) -> Color {
    if ratio >= 0.9 {
        Color::Red
    } else if ratio >= 0.7 {
        Color::Yellow
    } else {
        Color::Green
    }
}

/// Status colours: named ANSI colours only (they read in 16-colour terminals), none of them
/// the selected row's colour. The selected row is drawn REVERSED, so a status keeps its
/// colour there as the background of its cell.
pub fn call_status_style(status: CallStatus) -> Style {
    match status {
        CallStatus::Creating => Style::new().fg(Color::Cyan),
        CallStatus::Unknown => Style::new().fg(Color::Magenta).add_modifier(Modifier::BOLD),
        CallStatus::Queued => Style::new().fg(Color::Gray),
        CallStatus::Scheduled => Style::new().fg(Color::Blue),
        CallStatus::Ringing => Style::new().fg(Color::Yellow),
        CallStatus::InProgress | CallStatus::Forwarding => Style::new().fg(Color::Green),
        // The terminal's own foreground: finished, nothing to look at, never invisible.
        CallStatus::Ended => Style::new(),
        CallStatus::Failed => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        CallStatus::Requeued | CallStatus::Retried => Style::new().fg(Color::Gray),
    }
}

pub fn campaign_status_style(status: CampaignStatus) -> Style {
    match status {
        CampaignStatus::Draft => Style::new().fg(Color::Gray),
        CampaignStatus::Dialing => Style::new().fg(Color::Green).add_modifier(Modifier::BOLD),
        CampaignStatus::Paused => Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        CampaignStatus::Completed => Style::new().fg(Color::Blue),
        CampaignStatus::Cancelled => Style::new().fg(Color::Red),
    }
}

/// Dim text for labels.
pub fn label() -> Style {
    Style::new().fg(Color::DarkGray)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_durations_read_well() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(count(-12_345), "-12,345");
        assert_eq!(duration_ms(250), "250ms");
        assert_eq!(duration_ms(4_000), "4.0s");
        assert_eq!(duration_ms(125_000), "2m05s");
        let now = parse_time("2025-05-01T12:00:00.000Z").unwrap();
        assert_eq!(age("2025-05-01T11:59:55.000Z", now), "5s");
        assert_eq!(age("2025-05-01T11:00:00.000Z", now), "1h");
        assert_eq!(age("garbage", now), "?");
    }
}
