//! The wait before a retry: the configured schedule (1 s, 4 s, 10 s by default; the last
//! entry repeats), or longer when Vapi's Retry-After or the engine-wide 429 back-off asks.

use std::time::Duration;

/// Delay before retry number `retry` (1-based).
pub fn retry_delay(
    backoff_ms: &[u64],
    retry: u32,
    retry_after: Option<Duration>,
    global_backoff: Option<Duration>,
) -> Duration {
    let index = (retry.max(1) as usize - 1).min(backoff_ms.len().saturating_sub(1));
    let schedule = Duration::from_millis(backoff_ms.get(index).copied().unwrap_or(1_000));
    [retry_after, global_backoff]
        .into_iter()
        .flatten()
        .fold(schedule, Duration::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT: &[u64] = &[1_000, 4_000, 10_000];

    #[test]
    fn schedule_is_1s_4s_10s_then_repeats() {
        let delays: Vec<u64> = (1..=5)
            .map(|r| retry_delay(DEFAULT, r, None, None).as_millis() as u64)
            .collect();
        assert_eq!(delays, vec![1_000, 4_000, 10_000, 10_000, 10_000]);
    }
}
