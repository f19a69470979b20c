//! What the UDP echo will not answer, and how many datagrams it dropped.
//!
//! A UDP source address is whatever the sender wrote into the packet, so
//! an echo server answers whomever a sender names: two echo servers (or
//! echo and chargen) can be made to bounce one datagram between them
//! forever, and a flood with a forged source is reflected at its victim.
//! Every datagram is checked, in this order, before a byte goes back:
//!
//! 1. **Source port**: 0 cannot be answered; 7 (echo), 13 (daytime), 17
//!    (qotd), 19 (chargen) and 37 (time) are services that answer any
//!    datagram, so answering one starts a loop. Dropped.
//! 2. **Size**: a datagram longer than `--max-datagram` arrives cut short
//!    (`MSG_TRUNC`); echoing the part that fit would not be the same
//!    bytes. Dropped, and logged at warn level.
//! 3. **Rate**: each source (an IPv4 address, an IPv6 /64) has a token
//!    bucket of `--udp-rate` datagrams per second, with a burst as large;
//!    over it, datagrams are dropped without an answer, since the answer
//!    is the attack. Only datagrams that would be answered spend tokens.
//!
//! Every drop is counted in [`UdpStats`] (the SIGUSR1 stats line and chat
//! `/stats`); log lines are limited to one a second per reason, each
//! carrying the count so far, so a flood cannot fill the log.

use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::logger::Throttle;
use crate::rate::bucket::Rate;
use crate::rate::table::RateTable;
use crate::rate::MAX_SOURCES;
use crate::source::Source;

/// Why a datagram from `port` is never answered, or `None` if it may be.
pub fn refused_port(port: u16) -> Option<&'static str> {
    Some(match port {
        0 => "port 0 cannot be answered",
        7 => "echo answers every datagram",
        13 => "daytime answers every datagram",
        17 => "qotd answers every datagram",
        19 => "chargen answers every datagram",
        37 => "time answers every datagram",
        _ => return None,
    })
}

/// Counters of the UDP echo, since start.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct UdpStats {
    /// Datagrams sent back (or handed to `sendto`, which may still fail).
    pub echoed: u64,
    /// Dropped for their source port ([`refused_port`]).
    pub bad_port: u64,
    /// Dropped over `--udp-rate`.
    pub over_rate: u64,
    /// Dropped for being longer than `--max-datagram`.
    pub truncated: u64,
}

impl fmt::Display for UdpStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "udp_echoed={} udp_bad_port={} udp_over_rate={} udp_truncated={}",
            self.echoed, self.bad_port, self.over_rate, self.truncated
        )
    }
}

/// The three checks, their state (the rate table) and their counters.
#[derive(Debug)]
pub struct Guard {
    /// `None` with `--udp-rate 0`.
    table: Option<RateTable>,
    rate: u32,
    /// Where the guard's clock starts.
    epoch: Instant,
    pub stats: UdpStats,
    port_log: Throttle,
    rate_log: Throttle,
    trunc_log: Throttle,
}

impl Guard {
    /// A guard allowing `rate` datagrams a second per source (0: no limit).
    pub fn new(rate: u32, epoch: Instant) -> Guard {
        Guard {
            table: Rate::per_second(rate).map(|r| RateTable::new(r, MAX_SOURCES)),
            rate,
            epoch,
            stats: UdpStats::default(),
            port_log: Throttle::new(Duration::from_secs(1)),
            rate_log: Throttle::new(Duration::from_secs(1)),
            trunc_log: Throttle::new(Duration::from_secs(1)),
        }
    }

    /// The guard's clock: nanoseconds from its start to `now`. Read once
    /// per turn, not once per datagram.
    pub fn clock(&self, now: Instant) -> u64 {
        let t = now.saturating_duration_since(self.epoch).as_nanos();
        u64::try_from(t).unwrap_or(u64::MAX)
    }

    /// The instant `now` (on [`Guard::clock`]) stands for; only a drop
    /// that may be logged needs it.
    fn instant(&self, now: u64) -> Instant {
        self.epoch + Duration::from_nanos(now)
    }

    /// Whether a datagram from `from`, `len` bytes long in truth, received
    /// into a buffer of `cap` bytes at `now` (on [`Guard::clock`]), is
    /// echoed. Every `false` is counted, and logged within the limit.
    #[inline]
    pub fn admit(&mut self, from: SocketAddr, len: usize, cap: usize, now: u64) -> bool {
        if let Some(why) = refused_port(from.port()) {
            self.stats.bad_port += 1;
            if self.port_log.allow(self.instant(now)).is_some() {
                let n = self.stats.bad_port;
                log::debug!("udp {from}: no answer, {why} ({n} dropped for their port so far)");
            }
            return false;
        }
        if len > cap {
            self.stats.truncated += 1;
            if self.trunc_log.allow(self.instant(now)).is_some() {
                let n = self.stats.truncated;
                log::warn!(
                    "udp {from}: {len}-byte datagram over --max-datagram {cap}: not echoed \
                     ({n} dropped for their size so far)"
                );
            }
            return false;
        }
        if let Some(table) = self.table.as_mut() {
            if !table.take(Source::from(from.ip()), now) {
                self.stats.over_rate += 1;
                if self.rate_log.allow(self.instant(now)).is_some() {
                    let (ip, n, rate) = (from.ip(), self.stats.over_rate, self.rate);
                    log::debug!(
                        "udp {ip}: over --udp-rate {rate}/s, no answer ({n} dropped over the rate so far)"
                    );
                }
                return false;
            }
        }
        self.stats.echoed += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;
    const MS: u64 = 1_000_000;

    #[test]
    fn the_clock_counts_nanoseconds_from_the_start() {
        let start = Instant::now();
        let g = Guard::new(1, start);
        assert_eq!(g.clock(start), 0);
        assert_eq!(
            g.clock(start + std::time::Duration::from_millis(1500)),
            1500 * MS
        );
    }

    fn at(port: u16) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, 1], port))
    }

    #[test]
    fn service_ports_and_port_zero_are_refused() {
        for port in [0, 7, 13, 17, 19, 37] {
            assert!(refused_port(port).is_some(), "port {port}");
        }
        for port in [1, 9, 53, 123, 7000, 40_000, 65_535] {
            assert_eq!(refused_port(port), None, "port {port}");
        }
    }

    #[test]
    fn each_drop_is_counted_under_its_reason() {
        let t0 = SECOND;
        let mut g = Guard::new(2, Instant::now());
        assert!(!g.admit(at(7), 10, 512, t0));
        assert!(!g.admit(at(19), 10, 512, t0));
        assert!(!g.admit(at(5000), 513, 512, t0));
        assert!(g.admit(at(5000), 512, 512, t0), "exactly the buffer fits");
        assert!(g.admit(at(5001), 1, 512, t0));
        assert!(!g.admit(at(5002), 1, 512, t0), "same address, 2/s");
        let want = UdpStats {
            echoed: 2,
            bad_port: 2,
            over_rate: 1,
            truncated: 1,
        };
        assert_eq!(g.stats, want);
        assert_eq!(
            want.to_string(),
            "udp_echoed=2 udp_bad_port=2 udp_over_rate=1 udp_truncated=1"
        );
    }

    #[test]
    fn refused_datagrams_spend_no_tokens() {
        let t0 = SECOND;
        let mut g = Guard::new(1, Instant::now());
        for _ in 0..10 {
            assert!(!g.admit(at(7), 1, 512, t0));
            assert!(!g.admit(at(4000), 600, 512, t0));
        }
        assert!(
            g.admit(at(4000), 1, 512, t0),
            "its one token is still there"
        );
        assert!(!g.admit(at(4000), 1, 512, t0));
    }

    #[test]
    fn the_rate_refills_with_time() {
        let t0 = SECOND;
        let mut g = Guard::new(10, Instant::now());
        let admitted = |g: &mut Guard, t| (0..50).filter(|_| g.admit(at(4000), 1, 9, t)).count();
        assert_eq!(admitted(&mut g, t0), 10);
        assert_eq!(admitted(&mut g, t0 + 300 * MS), 3);
    }

    #[test]
    fn rate_zero_admits_everything() {
        let t0 = SECOND;
        let mut g = Guard::new(0, Instant::now());
        assert!((0..100_000).all(|_| g.admit(at(4000), 1, 9, t0)));
        assert!(!g.admit(at(7), 1, 9, t0), "the port rule still holds");
    }
}
