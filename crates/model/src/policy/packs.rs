//! State rule packs: stricter calling hours and caps that some jurisdictions set on top of
//! the federal rules, selectable per campaign (`campaign edit NAME --pack us-fl`). A pack
//! never loosens a campaign's own rules: the window in force is the intersection of both,
//! each cap the stricter of both. These are starting points drawn from the statutes named;
//! checking them against the current law for the people called is the operator's duty.

use super::{Caps, Days, Window};

/// One jurisdiction's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RulePack {
    /// What `--pack` takes.
    pub name: &'static str,
    /// The law it follows, for `campaign show` and the README.
    pub law: &'static str,
    pub window: Window,
    pub caps: Caps,
}

const fn pack(
    name: &'static str,
    law: &'static str,
    start_h: u32,
    end_h: u32,
    days: Days,
    per_day: u32,
) -> RulePack {
    RulePack {
        name,
        law,
        window: Window {
            start: start_h * 60,
            end: end_h * 60,
            days,
        },
        caps: Caps {
            per_day,
            per_week: 0,
        },
    }
}

/// Every pack, by name.
pub const PACKS: &[RulePack] = &[
    pack(
        "us-tcpa",
        "US TCPA, 47 CFR 64.1200(c)(1): no calls before 8 a.m. or after 9 p.m. local time",
        8,
        21,
        Days::ALL,
        0,
    ),
    pack(
        "us-fl",
        "Florida Telephone Solicitation Act, Fla. Stat. 501.059(8): 8 a.m.-8 p.m., at most 3 calls in 24 h on the same subject",
        8,
        20,
        Days::ALL,
        3,
    ),
    pack(
        "us-ok",
        "Oklahoma Telephone Solicitation Act of 2022: 8 a.m.-8 p.m., at most 3 calls in 24 h on the same subject",
        8,
        20,
        Days::ALL,
        3,
    ),
    pack(
        "us-md",
        "Maryland Stop the Spam Calls Act of 2023: 8 a.m.-8 p.m., at most 3 calls in 24 h on the same subject",
        8,
        20,
        Days::ALL,
        3,
    ),
    pack(
        "us-tx",
        "Texas Bus. & Com. Code 301.051: 9 a.m.-9 p.m. Monday-Saturday (Sunday noon-9 p.m. is left out: the stricter reading)",
        9,
        21,
        Days::MON_SAT,
        0,
    ),
];

/// The pack named `name` (case-insensitive).
pub fn find(name: &str) -> Option<&'static RulePack> {
    PACKS
        .iter()
        .find(|p| p.name.eq_ignore_ascii_case(name.trim()))
}

/// The names, for error messages.
pub fn names() -> String {
    PACKS.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
}

impl Window {
    /// The hours and days both windows allow (an empty day set or hours leave nothing open:
    /// start = end).
    pub fn intersect(&self, other: &Window) -> Window {
        let start = self.start.max(other.start);
        let end = self.end.min(other.end).max(start);
        Window {
            start,
            end,
            days: self.days.and(other.days),
        }
    }
}

impl Caps {
    /// Each cap the stricter of both (0 is "no cap", the loosest).
    pub fn strictest(self, other: Caps) -> Caps {
        let min = |a: u32, b: u32| match (a, b) {
            (0, b) => b,
            (a, 0) => a,
            (a, b) => a.min(b),
        };
        Caps {
            per_day: min(self.per_day, other.per_day),
            per_week: min(self.per_week, other.per_week),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pack_only_ever_narrows_the_campaign() {
        let fl = find("US-FL").unwrap();
        let campaign = Window::parse("07:00-21:00", "mon-fri").unwrap();
        let w = campaign.intersect(&fl.window);
        assert_eq!(w.hours(), "08:00-20:00");
        assert_eq!(w.days.to_string(), "mon-fri");
        let tighter = Window::parse("09:00-17:00", "all").unwrap();
        assert_eq!(tighter.intersect(&fl.window).hours(), "09:00-17:00");
        assert_eq!(
            Caps {
                per_day: 5,
                per_week: 7
            }
            .strictest(fl.caps),
            Caps {
                per_day: 3,
                per_week: 7
            }
        );
        assert_eq!(Caps::OFF.strictest(fl.caps).per_day, 3);
        assert!(find("us-zz").is_none());
    }

    #[test]
    fn disjoint_windows_leave_nothing_open() {
        let morning = Window::parse("06:00-08:00", "all").unwrap();
        let w = morning.intersect(&find("us-fl").unwrap().window);
        let noon: chrono::DateTime<chrono::Utc> = "2026-06-01T12:00:00Z".parse().unwrap();
        for h in 0..24 {
            assert!(!w.is_open(chrono_tz::UTC, noon + chrono::Duration::hours(h)));
        }
    }
}
