//! Assistants tested side by side: a campaign's arms, the deterministic assignment of a
//! contact to one, and the statistics the report compares them by (Wilson intervals and a
//! two-proportion z-test). Pure functions, table-tested.

use crate::ArmStatus;

/// One arm of a campaign: an assistant and its weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arm {
    /// Its place in the campaign's list (1-based), the id contacts and calls keep.
    pub position: i64,
    pub assistant_id: String,
    pub weight: i64,
    pub status: ArmStatus,
}

/// The arm a contact is assigned: a pure function of the campaign and contact, so every
/// engine and every restart gives the same answer; weighted over the arms taking contacts.
/// `None` when no arm takes contacts.
pub fn assign(campaign_id: i64, contact_id: i64, arms: &[Arm]) -> Option<i64> {
    let open: Vec<&Arm> = arms
        .iter()
        .filter(|a| a.status == ArmStatus::Active && a.weight > 0)
        .collect();
    let total: u64 = open.iter().map(|a| a.weight as u64).sum();
    if total == 0 {
        return None;
    }
    let mut ticket = mix(campaign_id as u64, contact_id as u64) % total;
    for arm in open {
        let w = arm.weight as u64;
        if ticket < w {
            return Some(arm.position);
        }
        ticket -= w;
    }
    None
}

/// An arm's assistant as given, `asst-a` or `asst-a@VERSION`: the assistant id Vapi lists
/// calls by, and the `assistantVersion` to call with (None: the latest).
pub fn assistant_and_version(arm: &str) -> (&str, Option<&str>) {
    match arm.rsplit_once('@') {
        Some((id, version)) if !id.is_empty() && !version.is_empty() => (id, Some(version)),
        _ => (arm, None),
    }
}

/// splitmix64 of the pair: a fixed, well-spread hash (std's hashers may change between
/// releases, and the assignment must not).
fn mix(a: u64, b: u64) -> u64 {
    let mut z = a
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(b)
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The two-sided 95 % normal quantile.
pub const Z95: f64 = 1.959_963_984_540_054;

/// The Wilson score interval of `successes` out of `n` at 95 %; `None` when `n` is 0.
pub fn wilson(successes: u64, n: u64) -> Option<(f64, f64)> {
    if n == 0 {
        return None;
    }
    let n = n as f64;
    let p = successes as f64 / n;
    let z2 = Z95 * Z95;
    let denominator = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denominator;
    let half = Z95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denominator;
    Some(((centre - half).max(0.0), (centre + half).min(1.0)))
}

/// The pooled two-proportion z statistic of `s1/n1` against `s2/n2`; `None` when either is
/// empty or both rates are 0 or 1 (no variance to compare by).
pub fn z_statistic(s1: u64, n1: u64, s2: u64, n2: u64) -> Option<f64> {
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let (n1, n2) = (n1 as f64, n2 as f64);
    let (p1, p2) = (s1 as f64 / n1, s2 as f64 / n2);
    let pooled = (s1 + s2) as f64 / (n1 + n2);
    let se = (pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)).sqrt();
    (se > 0.0).then(|| (p1 - p2) / se)
}

/// Whether two rates differ at the 95 % level (|z| ≥ 1.96).
pub fn significant(s1: u64, n1: u64, s2: u64, n2: u64) -> bool {
    z_statistic(s1, n1, s2, n2).is_some_and(|z| z.abs() >= Z95)
}

/// Reads `asst-a,asst-b:2` (an assistant id, a weight after a colon; 1 when none).
pub fn parse_arms(spec: &str) -> Result<Vec<(String, i64)>, String> {
    let mut out: Vec<(String, i64)> = Vec::new();
    for item in spec.split(',').map(str::trim) {
        let (id, weight) = match item.rsplit_once(':') {
            Some((id, w)) => match w
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|w| (1..=1000).contains(w))
            {
                Some(w) => (id.trim(), w),
                None => {
                    return Err(format!(
                        "arm weight '{w}' in '{item}' is not a whole number from 1 to 1000"
                    ));
                }
            },
            None => (item, 1),
        };
        if id.is_empty() || id.len() > 200 || id.chars().any(char::is_whitespace) {
            return Err(format!(
                "'{}' is not an assistant id (expected ids separated by commas, e.g. asst-a,asst-b:2)",
                id.chars().take(60).collect::<String>()
            ));
        }
        if out.iter().any(|(o, _)| o == id) {
            return Err(format!("assistant {id} is given twice"));
        }
        out.push((id.to_string(), weight));
    }
    if out.len() > 10 {
        return Err(format!("{} arms: at most 10", out.len()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arms(weights: &[(i64, ArmStatus)]) -> Vec<Arm> {
        weights
            .iter()
            .enumerate()
            .map(|(i, (w, s))| Arm {
                position: i as i64 + 1,
                assistant_id: format!("asst-{i}"),
                weight: *w,
                status: *s,
            })
            .collect()
    }

    #[test]
    fn contacts_split_by_weight_and_keep_their_arm() {
        let even = arms(&[(1, ArmStatus::Active), (1, ArmStatus::Active)]);
        let first = (1..=2000)
            .filter(|c| assign(7, *c, &even) == Some(1))
            .count();
        assert!((950..=1050).contains(&first), "{first} of 2000");
        // The same answer every time: nothing but the ids goes in.
        assert!((1..=200).all(|c| assign(7, c, &even) == assign(7, c, &even.clone())));
        let weighted = arms(&[(1, ArmStatus::Active), (3, ArmStatus::Active)]);
        let second = (1..=4000)
            .filter(|c| assign(3, *c, &weighted) == Some(2))
            .count();
        assert!((2900..=3100).contains(&second), "{second} of 4000");
        // A paused or stopped arm takes none; none open: no arm.
        let paused = arms(&[(1, ArmStatus::Paused), (1, ArmStatus::Active)]);
        assert!((1..=100).all(|c| assign(1, c, &paused) == Some(2)));
        let closed = arms(&[(1, ArmStatus::Stopped), (1, ArmStatus::Paused)]);
        assert_eq!(assign(1, 1, &closed), None);
    }

    #[test]
    fn wilson_intervals_match_a_reference_computation() {
        // Reference values from the closed form (Wilson 1927), computed apart in Python:
        // 50/100 → [0.4038, 0.5962]; 0/10 → [0, 0.2775]; 9/10 → [0.5958, 0.9821].
        let cases = [
            (50, 100, 0.403_831, 0.596_169),
            (0, 10, 0.0, 0.277_533),
            (9, 10, 0.595_850, 0.982_124),
            (1, 1, 0.206_549, 1.0),
        ];
        for (s, n, lo, hi) in cases {
            let (l, h) = wilson(s, n).unwrap();
            assert!(
                (l - lo).abs() < 1e-5 && (h - hi).abs() < 1e-5,
                "{s}/{n}: {l} {h}"
            );
        }
        assert_eq!(wilson(0, 0), None);
    }

    #[test]
    fn two_rates_differ_significantly_only_with_enough_calls() {
        // 60/100 against 40/100: z = 2.83.
        let z = z_statistic(60, 100, 40, 100).unwrap();
        assert!((z - 2.828_427).abs() < 1e-5, "{z}");
        assert!(significant(60, 100, 40, 100));
        assert!(!significant(6, 10, 4, 10));
        assert_eq!(z_statistic(0, 10, 0, 10), None);
        assert_eq!(z_statistic(1, 0, 0, 10), None);
    }

    #[test]
    fn an_arm_may_name_an_assistant_version() {
        assert_eq!(assistant_and_version("asst-a"), ("asst-a", None));
        assert_eq!(assistant_and_version("asst-a@7"), ("asst-a", Some("7")));
        assert_eq!(assistant_and_version("asst-a@"), ("asst-a@", None));
        assert_eq!(assistant_and_version("@7"), ("@7", None));
    }

    #[test]
    fn arm_specs_read_like_a_number_pool() {
        assert_eq!(
            parse_arms("asst-a, asst-b:2").unwrap(),
            vec![("asst-a".into(), 1), ("asst-b".into(), 2)]
        );
        for bad in ["", "a,,b", "a:0", "a:x", "a b", "a,a"] {
            assert!(parse_arms(bad).is_err(), "{bad}");
        }
    }
}
