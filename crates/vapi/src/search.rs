//! Finding a call by its `name` in `GET /call`, completely and whatever the order of the
//! results. Vapi's list has no sort parameter and promises no order, so paging "before the
//! oldest row seen" can skip calls. Instead the search covers a createdAt window: a page that
//! comes back full may hide more, so that window is split in two halves and both are searched,
//! down to a floor. The same walk reads calls changed since a time (`updatedAt`) in bulk.
//! A search that cannot finish (an error, a rate limit, a window still full at
//! the floor, too many requests) is `Incomplete`, never "not created".

use chrono::{DateTime, Duration as TimeDelta, Utc};

use super::{ListCallsFilter, VapiCall, VapiClient, VapiError};
use switchboard_model::text::format_time;

/// What a search found out.
#[derive(Debug, Clone, PartialEq)]
pub enum SearchResult {
    /// The call with that name.
    Found(Box<VapiCall>),
    /// Every call created in the window was listed, and none has that name.
    Absent,
    /// The window could not be listed completely: nothing can be concluded.
    Incomplete(Incomplete),
}

/// Why a walk could not list its window completely.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Incomplete {
    #[error("listing failed: {0}")]
    Listing(VapiError),
    #[error("more than {page} calls share the millisecond {at}")]
    TooDense { page: u32, at: String },
    #[error("stopped after {0} requests with windows left to list")]
    TooManyRequests(usize),
}

impl Incomplete {
    /// Whether Vapi's rate limit stopped the walk (the engine backs off for every request).
    pub fn is_rate_limited(&self) -> bool {
        matches!(self, Incomplete::Listing(e) if e.is_rate_limited())
    }
}

/// A time window of one assistant/phone-number pair's calls, and how to list it.
#[derive(Debug, Clone)]
pub struct Window<'a> {
    pub field: Field,
    pub assistant_id: &'a str,
    pub phone_number_id: &'a str,
    /// field ≥ from
    pub from: DateTime<Utc>,
    /// field ≤ to
    pub to: DateTime<Utc>,
    /// Results per request (Vapi: at most 1000).
    pub page: u32,
    /// Most requests one walk may make before it gives up as incomplete.
    pub max_requests: usize,
}

/// Anything that lists calls (the HTTP client, or a test double).
pub trait CallLister {
    fn list(
        &self,
        filter: &ListCallsFilter,
    ) -> impl Future<Output = Result<Vec<VapiCall>, VapiError>> + Send;
}

impl CallLister for VapiClient {
    async fn list(&self, filter: &ListCallsFilter) -> Result<Vec<VapiCall>, VapiError> {
        self.list_calls(filter).await
    }
}

/// Which timestamp a window is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    CreatedAt,
    UpdatedAt,
}

/// Lists every call of `assistant_id`/`phone_number_id` whose `field` lies in [from, to],
/// splitting the window wherever a page comes back full, and hands each page to `visit`
/// (which may stop the walk by returning true). `Err` when the walk cannot be completed.
pub async fn walk_window(
    lister: &impl CallLister,
    window: &Window<'_>,
    mut visit: impl FnMut(&[VapiCall]) -> bool,
) -> (Result<(), Incomplete>, usize) {
    let (page, max_requests) = (window.page, window.max_requests);
    if window.to < window.from {
        return (Ok(()), 0);
    }
    let mut windows = vec![(window.from, window.to)];
    let mut requests = 0usize;
    while let Some((from, to)) = windows.pop() {
        if requests >= max_requests {
            return (Err(Incomplete::TooManyRequests(requests)), requests);
        }
        requests += 1;
        let mut filter = ListCallsFilter {
            assistant_id: Some(window.assistant_id.to_string()),
            phone_number_id: Some(window.phone_number_id.to_string()),
            limit: Some(page),
            ..ListCallsFilter::default()
        };
        match window.field {
            Field::CreatedAt => {
                filter.created_at_ge = Some(format_time(from));
                filter.created_at_le = Some(format_time(to));
            }
            Field::UpdatedAt => {
                filter.updated_at_ge = Some(format_time(from));
                filter.updated_at_le = Some(format_time(to));
            }
        }
        let calls = match lister.list(&filter).await {
            Ok(calls) => calls,
            Err(e) => return (Err(Incomplete::Listing(e)), requests),
        };
        if visit(&calls) {
            return (Ok(()), requests);
        }
        if calls.len() < page as usize {
            continue; // this window is complete
        }
        // Full: there may be more. Split at the middle millisecond and list both halves.
        let width = (to - from).num_milliseconds();
        if width < 1 {
            let at = format_time(from);
            return (Err(Incomplete::TooDense { page, at }), requests);
        }
        let mid = from + TimeDelta::milliseconds(width / 2);
        windows.push((mid + TimeDelta::milliseconds(1), to));
        windows.push((from, mid));
    }
    (Ok(()), requests)
}

/// Searches a createdAt window for the call named `name`. Returns the result and the number
/// of requests made.
pub async fn find_by_name(
    lister: &impl CallLister,
    name: &str,
    window: &Window<'_>,
) -> (SearchResult, usize) {
    let mut found = None;
    let (walk, requests) = walk_window(lister, window, |calls| {
        found = calls
            .iter()
            .find(|c| c.name.as_deref() == Some(name))
            .cloned();
        found.is_some()
    })
    .await;
    let result = match (found, walk) {
        (Some(call), _) => SearchResult::Found(Box::new(call)),
        (None, Ok(())) => SearchResult::Absent,
        (None, Err(why)) => SearchResult::Incomplete(why),
    };
    (result, requests)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use switchboard_model::text::parse_time;

    /// A list that answers filters like Vapi, in a chosen order, with a page limit.
    struct FakeVapi {
        calls: Vec<VapiCall>,
        order: Order,
        requests: Mutex<usize>,
        fail_after: Option<usize>,
    }

    #[derive(Clone, Copy)]
    enum Order {
        Ascending,
        Descending,
        Shuffled(u64),
    }

    impl CallLister for FakeVapi {
        async fn list(&self, f: &ListCallsFilter) -> Result<Vec<VapiCall>, VapiError> {
            let n = {
                let mut r = self.requests.lock().unwrap();
                *r += 1;
                *r
            };
            if self.fail_after.is_some_and(|limit| n > limit) {
                return Err(VapiError::status(429, "Too Many Requests", None));
            }
            let ge = f.created_at_ge.as_deref().and_then(parse_time);
            let le = f.created_at_le.as_deref().and_then(parse_time);
            assert!(f.updated_at_ge.is_none(), "the look-up is by createdAt");
            let mut hits: Vec<VapiCall> = self
                .calls
                .iter()
                .filter(|c| {
                    let t = c.created_at.as_deref().and_then(parse_time).unwrap();
                    ge.is_none_or(|g| t >= g) && le.is_none_or(|l| t <= l)
                })
                .cloned()
                .collect();
            match self.order {
                Order::Ascending => hits.sort_by(|a, b| a.created_at.cmp(&b.created_at)),
                Order::Descending => hits.sort_by(|a, b| b.created_at.cmp(&a.created_at)),
                Order::Shuffled(seed) => {
                    use rand::SeedableRng;
                    use rand::seq::SliceRandom;
                    hits.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed + n as u64));
                }
            }
            hits.truncate(f.limit.unwrap_or(100) as usize);
            Ok(hits)
        }
    }

    fn call(name: &str, created: DateTime<Utc>) -> VapiCall {
        serde_json::from_value(serde_json::json!({
            "id": format!("id-{name}"),
            "name": name,
            "createdAt": format_time(created),
            "status": "ended",
        }))
        .unwrap()
    }

    fn t0() -> DateTime<Utc> {
        parse_time("2026-11-24T10:00:00.000Z").unwrap()
    }

    /// 5,000 calls over 10 minutes after ours, and `same_ms` of them in our millisecond.
    fn crowd(same_ms: usize) -> Vec<VapiCall> {
        let mut calls: Vec<VapiCall> = (0..5_000)
            .map(|i| {
                call(
                    &format!("other-{i}"),
                    t0() + TimeDelta::milliseconds(i * 120),
                )
            })
            .collect();
        for i in 0..same_ms {
            calls.push(call(&format!("twin-{i}"), t0()));
        }
        calls.push(call("ours", t0()));
        calls
    }

    fn search(from: DateTime<Utc>, to: DateTime<Utc>) -> Window<'static> {
        Window {
            field: Field::CreatedAt,
            assistant_id: "a",
            phone_number_id: "p",
            from,
            to,
            page: 1000,
            max_requests: 200,
        }
    }

    async fn run(calls: Vec<VapiCall>, order: Order, s: &Window<'_>) -> (SearchResult, usize) {
        let fake = FakeVapi {
            calls,
            order,
            requests: Mutex::new(0),
            fail_after: None,
        };
        find_by_name(&fake, "ours", s).await
    }

    #[tokio::test]
    async fn finds_its_call_among_5000_in_any_order() {
        let s = search(t0() - TimeDelta::seconds(5), t0() + TimeDelta::minutes(11));
        for order in [Order::Ascending, Order::Descending, Order::Shuffled(7)] {
            let (result, requests) = run(crowd(0), order, &s).await;
            assert!(matches!(result, SearchResult::Found(ref c) if c.id == "id-ours"));
            assert!(requests < 40, "{requests} requests");
        }
    }

    #[tokio::test]
    async fn finds_its_call_sharing_its_millisecond_with_a_thousand_others() {
        // The old pager skipped rows sharing the boundary millisecond.
        let s = search(t0() - TimeDelta::seconds(5), t0() + TimeDelta::minutes(11));
        for order in [Order::Ascending, Order::Descending, Order::Shuffled(3)] {
            let (result, _) = run(crowd(998), order, &s).await;
            assert!(
                matches!(result, SearchResult::Found(_)),
                "not found: {result:?}"
            );
        }
    }

    #[tokio::test]
    async fn absent_only_when_every_window_was_listed() {
        let mut calls = crowd(0);
        calls.retain(|c| c.name.as_deref() != Some("ours"));
        let s = search(t0() - TimeDelta::seconds(5), t0() + TimeDelta::minutes(11));
        let (result, requests) = run(calls, Order::Shuffled(1), &s).await;
        assert_eq!(result, SearchResult::Absent);
        // 5,000 calls in pages of 1,000: a handful of splits, not a scan.
        assert!((6..40).contains(&requests), "{requests} requests");
    }

    #[tokio::test]
    async fn a_millisecond_fuller_than_a_page_is_incomplete_not_absent() {
        let mut calls: Vec<VapiCall> = (0..1_200)
            .map(|i| call(&format!("twin-{i}"), t0()))
            .collect();
        calls.push(call("elsewhere", t0() + TimeDelta::seconds(1)));
        let s = search(t0() - TimeDelta::seconds(1), t0() + TimeDelta::seconds(2));
        let (result, _) = run(calls, Order::Shuffled(9), &s).await;
        assert!(matches!(
            result,
            SearchResult::Incomplete(Incomplete::TooDense { .. })
        ));
    }

    #[tokio::test]
    async fn an_error_mid_search_is_incomplete() {
        let mut calls = crowd(0);
        calls.retain(|c| c.name.as_deref() != Some("ours"));
        let fake = FakeVapi {
            calls,
            order: Order::Descending,
            requests: Mutex::new(0),
            fail_after: Some(2),
        };
        let s = search(t0() - TimeDelta::seconds(5), t0() + TimeDelta::minutes(11));
        let (result, _) = find_by_name(&fake, "ours", &s).await;
        assert!(matches!(result, SearchResult::Incomplete(ref why) if why.is_rate_limited()));
    }

    #[tokio::test]
    async fn a_call_outside_the_window_is_not_seen() {
        // The window is the caller's promise: created after `to` cannot be ours.
        let calls = vec![call("ours", t0() + TimeDelta::minutes(30))];
        let s = search(t0() - TimeDelta::seconds(5), t0() + TimeDelta::minutes(11));
        let (result, requests) = run(calls, Order::Ascending, &s).await;
        assert_eq!((result, requests), (SearchResult::Absent, 1));
    }
}
