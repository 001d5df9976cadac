//! How long to wait before the next attempt: exponential backoff with jitter.

use std::time::Duration;

/// The longest wait a server's `Retry-After` gets; a longer one is cut to this.
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(120);

/// Delays that double from `base` up to `max`; each is drawn between half of that
/// and all of it, so clients that failed together do not come back together.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    /// The delay before the first retry (before jitter).
    pub base: Duration,
    /// The longest delay.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(500),
            max: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The delay before retry number `attempt` (1 for the first), at least what the
    /// server asked for (`Retry-After`) up to [`RETRY_AFTER_CAP`].
    pub fn delay_after(&self, attempt: u32, asked: Option<Duration>) -> Duration {
        let own = self.delay(attempt);
        asked.map_or(own, |asked| own.max(asked.min(RETRY_AFTER_CAP)))
    }

    /// The delay before retry number `attempt` (1 for the first).
    pub fn delay(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(30);
        let ceiling = self.base.saturating_mul(1u32 << exponent).min(self.max);
        // Uniform in [ceiling/2, ceiling]; without randomness, the ceiling.
        let fraction = getrandom::u64().map_or(1.0, |r| (r >> 11) as f64 / (1u64 << 53) as f64);
        ceiling.mul_f64(0.5 + fraction / 2.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_within_bounds() {
        let backoff = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(2),
        };
        for attempt in 1..40 {
            let ceiling =
                Duration::from_millis(100 * (1u64 << (attempt - 1).min(20))).min(backoff.max);
            for _ in 0..20 {
                let d = backoff.delay(attempt);
                assert!(d <= ceiling, "attempt {attempt}: {d:?} > {ceiling:?}");
                assert!(
                    d >= ceiling / 2,
                    "attempt {attempt}: {d:?} < half of {ceiling:?}"
                );
            }
        }
        assert!(backoff.delay(u32::MAX) <= backoff.max);
    }

    #[test]
    fn a_retry_after_is_honoured_up_to_the_cap() {
        let backoff = Backoff {
            base: Duration::from_millis(1),
            max: Duration::from_millis(2),
        };
        assert!(backoff.delay_after(1, None) <= Duration::from_millis(2));
        assert_eq!(
            backoff.delay_after(1, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        assert_eq!(
            backoff.delay_after(1, Some(Duration::from_secs(86_400))),
            RETRY_AFTER_CAP
        );
    }

    #[test]
    fn delays_are_jittered() {
        let backoff = Backoff::default();
        let delays: std::collections::HashSet<_> = (0..20).map(|_| backoff.delay(3)).collect();
        assert!(delays.len() > 1);
    }
}
