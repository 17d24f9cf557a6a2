//! Drawing the whole screen from the app's state, each pane where [`crate::layout`] puts it.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::widgets::Widget;

use super::app::{App, Popup};
use super::layout::{Side, layout};
use super::panes;

impl Widget for &App {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let areas = layout(area);
        panes::header::render(&panes::header::HeaderPane::of(self), areas.header, buf);
        panes::calls::render(&panes::calls::CallsPane::of(self), areas.calls, buf);
        match areas.side {
            Side::Panes { campaign, quota } => {
                panes::campaign::render(&panes::campaign::CampaignPane::of(self), campaign, buf);
                panes::quota::render(&panes::quota::QuotaPane::of(self), quota, buf);
            }
            Side::Summary(summary) => {
                let [campaign, quota] =
                    Layout::vertical([Constraint::Length(1), Constraint::Length(1)]).areas(summary);
                panes::campaign::render_line(
                    &panes::campaign::CampaignPane::of(self),
                    campaign,
                    buf,
                );
                panes::quota::render_line(&self.snapshot, quota, buf);
            }
        }
        panes::log::render(&panes::log::LogPane::of(self), areas.log, buf);
        panes::footer::render(&panes::footer::FooterPane::of(self), areas.footer, buf);
        match self.popup() {
            Some(Popup::Help { scroll }) => {
                panes::help::render(&panes::help::HelpPane::of(self, *scroll), area, buf)
            }
            Some(Popup::Campaigns { selected }) => panes::campaigns::render(
                &panes::campaigns::CampaignList::of(self, *selected),
                area,
                buf,
            ),
            Some(Popup::Confirm(confirm)) => panes::confirm::render(confirm, area, buf),
            Some(Popup::Prompt(prompt)) => panes::prompt::render(prompt, area, buf),
            Some(Popup::Details(details)) => {
                panes::details::render(&panes::details::DetailsPane::of(self, details), area, buf)
            }
            Some(Popup::Report { report, .. }) => panes::report::render(
                &panes::report::ReportPane::of(self, report.as_ref()),
                area,
                buf,
            ),
            None => {}
        }
    }
}
