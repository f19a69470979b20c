//! `--max-per-ip`: how many connections each source address holds, so one
//! host cannot take every slot of `--max-clients`; and `--max-conn-rate`:
//! how fast it may open new ones, so one host cannot make the server
//! announce `JOIN` and `QUIT` to a whole room thousands of times a second
//! by connecting and closing in a loop.
//!
//! A source is a [`Source`]: an IPv4 address or an IPv6 /64. Loopback is
//! not limited unless `--max-per-ip` was given. Only limited connections are tracked,
//! so the hot path of an unlimited server never touches these maps.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use crate::rate::bucket::Rate;
use crate::rate::table::RateTable;
use crate::rate::MAX_SOURCES;
use crate::source::Source;

/// Connections per source, and which connection counts against which.
#[derive(Debug)]
pub(super) struct Sources {
    /// Most connections per source (0 = no limit).
    limit: usize,
    /// New connections per second per source, a burst as large (`None`:
    /// no limit); the same bounded table as the UDP echo's rate limit (`crate::rate`).
    rate: Option<RateTable>,
    /// Where the rate table's clock starts.
    epoch: Instant,
    /// The limit applies to loopback sources too.
    loopback: bool,
    counts: HashMap<Source, u32>,
    /// Slab key → its source, for the connections counted.
    of: HashMap<usize, Source>,
}

/// Whether a new connection may be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Admit {
    /// Serve it; count it against this source once it has a key.
    Counted(Source),
    /// Serve it; it is not limited.
    Free,
    /// Its source already holds `--max-per-ip` connections.
    Full,
}

impl Sources {
    /// `limit` connections at once and `rate` new ones a second per
    /// source (0: no limit), for loopback sources too if `loopback`.
    pub(super) fn new(limit: usize, rate: u32, loopback: bool, epoch: Instant) -> Sources {
        Sources {
            limit,
            rate: Rate::per_second(rate).map(|r| RateTable::new(r, MAX_SOURCES)),
            epoch,
            loopback,
            counts: HashMap::new(),
            of: HashMap::new(),
        }
    }

    /// Decides for a connection from `peer` at `now`, before it gets a
    /// slot. Only a connection that would be served spends from its
    /// source's rate.
    pub(super) fn check(&mut self, peer: Option<SocketAddr>, now: Instant) -> Admit {
        let Some(ip) = peer.map(|p| p.ip().to_canonical()) else {
            return Admit::Free;
        };
        let unlimited = self.limit == 0 && self.rate.is_none();
        if unlimited || (ip.is_loopback() && !self.loopback) {
            return Admit::Free;
        }
        let ip = Source::from(ip);
        if self.limit > 0
            && self
                .counts
                .get(&ip)
                .is_some_and(|&n| n as usize >= self.limit)
        {
            return Admit::Full;
        }
        let clock = now.saturating_duration_since(self.epoch).as_nanos();
        let clock = u64::try_from(clock).unwrap_or(u64::MAX);
        if let Some(table) = self.rate.as_mut() {
            if !table.take(ip, clock) {
                return Admit::Full;
            }
        }
        match self.limit {
            0 => Admit::Free,
            _ => Admit::Counted(ip),
        }
    }

    /// Counts connection `key` against `ip`.
    pub(super) fn add(&mut self, key: usize, ip: Source) {
        *self.counts.entry(ip).or_insert(0) += 1;
        self.of.insert(key, ip);
    }

    /// Connection `key` is gone: its source holds one fewer.
    pub(super) fn remove(&mut self, key: usize) {
        if self.of.is_empty() {
            return;
        }
        let Some(ip) = self.of.remove(&key) else {
            return;
        };
        if let Some(n) = self.counts.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.counts.remove(&ip);
            }
        }
    }

    /// Sources holding connections now.
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.counts.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(s: &str) -> Option<SocketAddr> {
        Some(s.parse().unwrap())
    }

    fn t0() -> Instant {
        static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        *START.get_or_init(Instant::now)
    }

    fn src(s: &str) -> Source {
        Source::from(s.parse::<std::net::IpAddr>().unwrap())
    }

    #[test]
    fn a_full_source_is_refused_until_one_leaves() {
        let mut s = Sources::new(2, 0, false, t0());
        for key in 0..2 {
            match s.check(peer("192.0.2.1:1000"), t0()) {
                Admit::Counted(ip) => s.add(key, ip),
                other => panic!("{other:?}"),
            }
        }
        let ip = src("192.0.2.1");
        assert_eq!(s.check(peer("192.0.2.1:1002"), t0()), Admit::Full);
        assert_eq!(
            s.check(peer("192.0.2.2:1000"), t0()),
            Admit::Counted(src("192.0.2.2"))
        );
        s.remove(0);
        assert_eq!(s.check(peer("192.0.2.1:1003"), t0()), Admit::Counted(ip));
        s.remove(1);
        s.remove(1);
        assert_eq!(s.tracked(), 0);
    }

    #[test]
    fn new_connections_are_held_to_the_rate_per_source() {
        let mut s = Sources::new(0, 3, false, t0());
        let now = t0();
        for _ in 0..3 {
            assert_eq!(s.check(peer("192.0.2.1:9"), now), Admit::Free);
        }
        assert_eq!(s.check(peer("192.0.2.1:9"), now), Admit::Full);
        assert_eq!(s.check(peer("192.0.2.2:9"), now), Admit::Free);
        assert_eq!(s.check(peer("127.0.0.1:9"), now), Admit::Free);
        let later = now + std::time::Duration::from_millis(400);
        assert_eq!(s.check(peer("192.0.2.1:9"), later), Admit::Free);
        // A source at its count spends nothing from its rate.
        let mut s = Sources::new(1, 2, false, t0());
        let Admit::Counted(ip) = s.check(peer("192.0.2.1:9"), now) else {
            panic!("not counted");
        };
        s.add(0, ip);
        for _ in 0..5 {
            assert_eq!(s.check(peer("192.0.2.1:9"), now), Admit::Full);
        }
        s.remove(0);
        assert!(matches!(
            s.check(peer("192.0.2.1:9"), now),
            Admit::Counted(_)
        ));
    }

    #[test]
    fn loopback_is_free_unless_asked_and_zero_means_no_limit() {
        let mut s = Sources::new(1, 0, false, t0());
        assert_eq!(s.check(peer("127.0.0.1:9"), t0()), Admit::Free);
        assert_eq!(s.check(peer("[::1]:9"), t0()), Admit::Free);
        assert_eq!(s.check(None, t0()), Admit::Free);
        let mut s = Sources::new(1, 0, true, t0());
        assert!(matches!(
            s.check(peer("127.0.0.1:9"), t0()),
            Admit::Counted(_)
        ));
        let mut s = Sources::new(0, 0, true, t0());
        assert_eq!(s.check(peer("192.0.2.1:9"), t0()), Admit::Free);
    }
}
