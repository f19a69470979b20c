//! `--max-per-ip`: how many connections each source address holds, so one
//! host cannot take every slot of `--max-clients`.
//!
//! A source is an IPv4 address, or an IPv6 address cut to its /64 (one
//! host is usually given a whole /64, so counting single IPv6 addresses
//! would limit nothing). An IPv4 client on a dual-stack listener arrives as
//! `::ffff:a.b.c.d` and is counted as `a.b.c.d`. Loopback is not limited
//! unless `--max-per-ip` was given. Only limited connections are tracked,
//! so the hot path of an unlimited server never touches these maps.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

/// Connections per source, and which connection counts against which.
#[derive(Debug, Default)]
pub(super) struct Sources {
    /// Most connections per source (0 = no limit).
    limit: usize,
    /// The limit applies to loopback sources too.
    loopback: bool,
    counts: HashMap<IpAddr, u32>,
    /// Slab key → its source, for the connections counted.
    of: HashMap<usize, IpAddr>,
}

/// Whether a new connection may be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Admit {
    /// Serve it; count it against this source once it has a key.
    Counted(IpAddr),
    /// Serve it; it is not limited.
    Free,
    /// Its source already holds `--max-per-ip` connections.
    Full(IpAddr),
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
        let ip = source(ip);
        match self.counts.get(&ip) {
            Some(&n) if n as usize >= self.limit => Admit::Full(ip),
            _ => Admit::Counted(ip),
        }
    }

    /// Counts connection `key` against `ip`.
    pub(super) fn add(&mut self, key: usize, ip: IpAddr) {
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

/// The address a connection is counted under (`ip` already canonical).
fn source(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(s: &str) -> Option<SocketAddr> {
        Some(s.parse().unwrap())
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
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(s.check(peer("192.0.2.1:1002")), Admit::Full(ip));
        assert_eq!(
            s.check(peer("192.0.2.2:1000")),
            Admit::Counted("192.0.2.2".parse().unwrap())
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

    #[test]
    fn ipv6_counts_by_its_64_and_mapped_ipv4_as_ipv4() {
        let mut s = Sources::new(1, true);
        let Admit::Counted(ip) = s.check(peer("[2001:db8:1:2:aaaa::1]:5")) else {
            panic!("not counted");
        };
        s.add(7, ip);
        let same64 = s.check(peer("[2001:db8:1:2:bbbb::9]:5"));
        assert_eq!(same64, Admit::Full("2001:db8:1:2::".parse().unwrap()));
        let other64 = s.check(peer("[2001:db8:1:3::1]:5"));
        assert!(matches!(other64, Admit::Counted(_)));
        let Admit::Counted(v4) = s.check(peer("[::ffff:192.0.2.7]:5")) else {
            panic!("not counted");
        };
        assert_eq!(v4, "192.0.2.7".parse::<IpAddr>().unwrap());
    }
}
