//! `--max-per-ip`: how many connections each source address holds, so one
//! host cannot take every slot of `--max-clients`.
//!
//! A source is a [`Source`]: an IPv4 address or an IPv6 /64. Loopback is
//! not limited unless `--max-per-ip` was given. Only limited connections are tracked,
//! so the hot path of an unlimited server never touches these maps.

use std::collections::HashMap;
use std::net::SocketAddr;

use crate::source::Source;

/// Connections per source, and which connection counts against which.
#[derive(Debug, Default)]
pub(super) struct Sources {
    /// Most connections per source (0 = no limit).
    limit: usize,
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
    pub(super) fn new(limit: usize, loopback: bool) -> Sources {
        Sources {
            limit,
            loopback,
            ..Sources::default()
        }
    }

    /// Decides for a connection from `peer`, before it gets a slot.
    pub(super) fn check(&self, peer: Option<SocketAddr>) -> Admit {
        let Some(ip) = peer.map(|p| p.ip().to_canonical()) else {
            return Admit::Free;
        };
        if self.limit == 0 || (ip.is_loopback() && !self.loopback) {
            return Admit::Free;
        }
        let ip = Source::from(ip);
        match self.counts.get(&ip) {
            Some(&n) if n as usize >= self.limit => Admit::Full,
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

    fn src(s: &str) -> Source {
        Source::from(s.parse::<std::net::IpAddr>().unwrap())
    }

    #[test]
    fn a_full_source_is_refused_until_one_leaves() {
        let mut s = Sources::new(2, false);
        for key in 0..2 {
            match s.check(peer("192.0.2.1:1000")) {
                Admit::Counted(ip) => s.add(key, ip),
                other => panic!("{other:?}"),
            }
        }
        let ip = src("192.0.2.1");
        assert_eq!(s.check(peer("192.0.2.1:1002")), Admit::Full);
        assert_eq!(
            s.check(peer("192.0.2.2:1000")),
            Admit::Counted(src("192.0.2.2"))
        );
        s.remove(0);
        assert_eq!(s.check(peer("192.0.2.1:1003")), Admit::Counted(ip));
        s.remove(1);
        s.remove(1);
        assert_eq!(s.tracked(), 0);
    }

    #[test]
    fn loopback_is_free_unless_asked_and_zero_means_no_limit() {
        let s = Sources::new(1, false);
        assert_eq!(s.check(peer("127.0.0.1:9")), Admit::Free);
        assert_eq!(s.check(peer("[::1]:9")), Admit::Free);
        assert_eq!(s.check(None), Admit::Free);
        let s = Sources::new(1, true);
        assert!(matches!(s.check(peer("127.0.0.1:9")), Admit::Counted(_)));
        let s = Sources::new(0, true);
        assert_eq!(s.check(peer("192.0.2.1:9")), Admit::Free);
    }
}
