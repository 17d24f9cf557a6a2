//! Where the screen's geometry meets the app's state: what a click or the wheel hits, and
//! how far a popup may scroll. Kept out of `app` so that the state never depends on how the
//! panes are drawn (the panes read the state; this reads both).

use crossterm::event::{KeyEvent, MouseButton, MouseEvent, MouseEventKind};

use crate::app::{Action, App, Focus, Popup};
use crate::keys::KeyAction;

impl App {
    /// A click on a tab shows it, on a row selects it, on a campaign of the list highlights
    /// it (a second click shows it); the wheel scrolls the pane under the pointer.
    pub fn handle_mouse(&mut self, event: MouseEvent) -> Option<Action> {
        if !self.options.mouse || self.input.is_some() {
            return None;
        }
        let (x, y) = (event.column, event.row);
        let screen = ratatui::layout::Rect::new(0, 0, self.size.0, self.size.1);
        let inside = |r: ratatui::layout::Rect| {
            x >= r.x && x < r.x + r.width && y >= r.y && y < r.y + r.height
        };
        let click = matches!(event.kind, MouseEventKind::Down(MouseButton::Left));
        let wheel = match event.kind {
            MouseEventKind::ScrollDown => Some(KeyAction::Down),
            MouseEventKind::ScrollUp => Some(KeyAction::Up),
            _ => None,
        };
        match &self.popup {
            Some(Popup::Campaigns { selected }) => {
                let selected = *selected;
                let n = self.snapshot.campaigns.len();
                let area = crate::panes::campaigns::popup_area(screen, n);
                if let Some(step) = wheel {
                    return self
                        .campaigns_key(KeyEvent::from(self.keys.keys_for(step).first()?.code));
                }
                if !click || !inside(area) || y < area.y + 2 {
                    return None;
                }
                let row = usize::from(y - area.y - 2);
                if row >= n {
                    return None;
                }
                if row == selected {
                    let enter = self.keys.keys_for(KeyAction::Details).first()?.code;
                    return self.campaigns_key(KeyEvent::from(enter));
                }
                self.popup = Some(Popup::Campaigns { selected: row });
                return None;
            }
            Some(_) => {
                // Other popups: the wheel scrolls them like the movement keys.
                let step = wheel?;
                let code = self.keys.keys_for(step).first()?.code;
                return self.handle_key(KeyEvent::from(code));
            }
            None => {}
        }
        let areas = crate::layout::layout(screen);
        if inside(areas.log) {
            if let Some(step) = wheel {
                self.scroll_log(step);
            } else if click {
                self.focus = Focus::Log;
            }
            return None;
        }
        if !inside(areas.calls) {
            return None;
        }
        if let Some(step) = wheel {
            self.focus = Focus::Calls;
            return self.move_selection(step);
        }
        if !click {
            return None;
        }
        self.focus = Focus::Calls;
        if y == areas.calls.y {
            let dx = x - areas.calls.x;
            let tab = crate::panes::calls::tab_ranges(
                &crate::panes::calls::CallsPane::of(self),
                areas.calls.width,
            )
            .0
            .into_iter()
            .find(|(_, from, to)| dx >= *from && dx < *to)?
            .0;
            return self.set_tab(tab);
        }
        let first = areas.calls.y + crate::panes::calls::FIRST_ROW;
        let bottom = areas.calls.y + areas.calls.height.saturating_sub(1);
        if y < first || y >= bottom {
            return None;
        }
        let index = self.scroll + i64::from(y - first);
        if index >= self.total.unwrap_or(0) {
            return None;
        }
        self.selected = index;
        self.clamp_window();
        self.selected_id = self.row_at(self.selected).map(|r| r.id);
        self.request_window(false)
    }

    /// A details popup never scrolls past its last line.
    pub(crate) fn clamp_details_scroll(&mut self) {
        let Some(Popup::Details(details)) = &self.popup else {
            return;
        };
        let screen = ratatui::layout::Rect::new(0, 0, self.size.0, self.size.1);
        let max = crate::panes::details::max_scroll(
            &crate::panes::details::DetailsPane::of(self, details),
            screen,
        );
        if let Some(Popup::Details(details)) = &mut self.popup {
            details.scroll = details.scroll.min(max);
        }
    }
}
