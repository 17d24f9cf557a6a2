//! Fault injection for POST /call: which failure (if any) this request gets.

use rand::Rng;

use super::SimConfig;

/// A failure injected into one POST /call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 429 before anything is created.
    RateLimited,
    /// 503 before anything is created.
    Unavailable,
    /// 504 before anything is created.
    GatewayTimeout,
    /// The call IS created, but the answer only comes after `hang_ms` (and carries no id):
    /// the dangerous case where a retrying client dials the same person twice.
    Hang,
    /// The request hangs; the call is created `late_create_ms` after it arrived, whether or
    /// not the client is still there (Vapi behind its proxy goes on after a client gave up).
    LateCreate,
    /// The call is created, then the answer is a 500, 502 or a Cloudflare 52x page.
    ServerErrorAfterCreate,
}

/// Draw this request's fault. Each knob is an independent probability, tried in order
/// 429, 503, 504, hang; the first hit wins. Values <= 0 (or NaN) never fire, >= 1 always.
pub fn draw(rng: &mut impl Rng, config: &SimConfig) -> Option<Fault> {
    [
        (config.fault_429, Fault::RateLimited),
        (config.fault_503, Fault::Unavailable),
        (config.fault_504, Fault::GatewayTimeout),
        (config.fault_timeout, Fault::Hang),
        (config.fault_late_create, Fault::LateCreate),
        (config.fault_5xx_after_create, Fault::ServerErrorAfterCreate),
    ]
    .into_iter()
    .find(|&(p, _)| hit(rng, p))
    .map(|(_, fault)| fault)
}

/// Bernoulli draw that tolerates any f64 (`random_bool` panics outside [0, 1]).
fn hit(rng: &mut impl Rng, p: f64) -> bool {
    rng.random::<f64>() < p
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn no_faults_by_default() {
        let mut rng = StdRng::seed_from_u64(7);
        let config = SimConfig::default();
        assert!((0..1000).all(|_| draw(&mut rng, &config).is_none()));
    }

    #[test]
    fn certain_faults_fire_in_order() {
        let mut rng = StdRng::seed_from_u64(7);
        let config = SimConfig {
            fault_503: 1.0,
            fault_timeout: 1.0,
            ..SimConfig::default()
        };
        assert_eq!(draw(&mut rng, &config), Some(Fault::Unavailable));
        let config = SimConfig {
            fault_timeout: 1.0,
            ..SimConfig::default()
        };
        assert_eq!(draw(&mut rng, &config), Some(Fault::Hang));
    }

    #[test]
    fn odd_probabilities_do_not_panic() {
        let mut rng = StdRng::seed_from_u64(7);
        let config = SimConfig {
            fault_429: f64::NAN,
            fault_503: -3.0,
            fault_504: 7.0,
            ..SimConfig::default()
        };
        assert_eq!(draw(&mut rng, &config), Some(Fault::GatewayTimeout));
    }

    #[test]
    fn rate_is_roughly_respected() {
        let mut rng = StdRng::seed_from_u64(42);
        let config = SimConfig {
            fault_429: 0.3,
            ..SimConfig::default()
        };
        let hits = (0..10_000)
            .filter(|_| draw(&mut rng, &config).is_some())
            .count();
        assert!((2_700..3_300).contains(&hits), "{hits}");
    }
}
