//! A token bucket, kept as one number per source: the time at which the
//! bucket will be full again (the GCRA form of a token bucket). Pure: the
//! time is a parameter, in nanoseconds from any fixed start.

/// A refill rate and a burst: `burst` tokens, one more every `interval`
/// nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Nanoseconds to earn one token.
    interval: u64,
    /// Nanoseconds to refill an empty bucket: `burst × interval`.
    window: u64,
}

const NANOS_PER_SEC: u64 = 1_000_000_000;

impl Rate {
    /// `n` tokens per second with a burst of `n`; `None` for 0 (no limit).
    pub fn per_second(n: u32) -> Option<Rate> {
        if n == 0 {
            return None;
        }
        // At most 1e9 per second, so the interval is at least 1 ns.
        let n = u64::from(n).min(NANOS_PER_SEC);
        let interval = NANOS_PER_SEC / n;
        Some(Rate {
            interval,
            window: interval * n,
        })
    }
}

/// One source's bucket. Instead of a token count and the time of the last
/// refill, it keeps `full_at`, the time at which refilling will have made
/// it full: `tokens = burst − (full_at − now) / interval`. Taking a token
/// moves `full_at` one interval later; time passing refills by itself, so
/// there is nothing to update when no datagram comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TokenBucket {
    full_at: u64,
}

impl TokenBucket {
    /// A full bucket (any `full_at` in the past means full).
    pub const FULL: TokenBucket = TokenBucket { full_at: 0 };

    /// Takes one token at time `now` (nanoseconds); `false` when the bucket
    /// holds less than one, and then nothing changes.
    #[inline]
    pub fn take(&mut self, rate: Rate, now: u64) -> bool {
        // A bucket full since before `now` holds `burst` tokens, no more.
        let next = self.full_at.max(now).saturating_add(rate.interval);
        if next - now > rate.window {
            return false;
        }
        self.full_at = next;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn takes(b: &mut TokenBucket, rate: Rate, now: u64, tries: usize) -> usize {
        (0..tries).filter(|_| b.take(rate, now)).count()
    }

    #[test]
    fn zero_means_no_limit() {
        assert_eq!(Rate::per_second(0), None);
    }

    #[test]
    fn a_full_bucket_gives_its_burst_then_nothing() {
        let rate = Rate::per_second(10).unwrap();
        let mut b = TokenBucket::FULL;
        assert_eq!(takes(&mut b, rate, 5_000 * MS, 100), 10);
        assert!(!b.take(rate, 5_000 * MS));
    }

    #[test]
    fn one_token_comes_back_per_interval() {
        let rate = Rate::per_second(10).unwrap(); // one per 100 ms
        let mut b = TokenBucket::FULL;
        let t0 = 1_000 * MS;
        assert_eq!(takes(&mut b, rate, t0, 10), 10);
        assert!(!b.take(rate, t0 + 99 * MS), "99 ms earn no token");
        assert!(b.take(rate, t0 + 100 * MS), "100 ms earn one");
        assert!(!b.take(rate, t0 + 100 * MS), "and only one");
        assert_eq!(takes(&mut b, rate, t0 + 350 * MS, 10), 2, "250 ms more: 2");
    }

    #[test]
    fn refilling_stops_at_the_burst() {
        let rate = Rate::per_second(4).unwrap();
        let mut b = TokenBucket::FULL;
        assert_eq!(takes(&mut b, rate, 0, 4), 4);
        // An hour idle refills 4 tokens, not 14 400.
        assert_eq!(takes(&mut b, rate, 3_600_000 * MS, 100), 4);
    }

    #[test]
    fn a_refusal_changes_nothing() {
        let rate = Rate::per_second(2).unwrap();
        let mut b = TokenBucket::FULL;
        assert_eq!(takes(&mut b, rate, 0, 2), 2);
        let before = b;
        assert!(!b.take(rate, 10 * MS));
        assert_eq!(b, before);
        // Refused datagrams do not push the refill further out.
        assert!(b.take(rate, 500 * MS));
    }

    #[test]
    fn a_steady_sender_at_the_rate_is_never_refused() {
        let rate = Rate::per_second(1000).unwrap();
        let mut b = TokenBucket::FULL;
        for i in 0..10_000u64 {
            assert!(b.take(rate, i * MS), "refused at {i} ms");
        }
    }

    #[test]
    fn huge_rates_are_capped_not_overflowed() {
        let rate = Rate::per_second(u32::MAX).unwrap();
        let mut b = TokenBucket::FULL;
        assert!(b.take(rate, u64::MAX - 1));
    }
}
