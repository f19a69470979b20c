//! The address a client is counted under, for every per-source limit
//! (`--max-per-ip`, `--udp-rate`): an IPv4 address, or the /64 prefix of an
//! IPv6 address (the block one host or one subnet is usually given, so one
//! machine cannot become 2^64 sources by changing its low bits). An IPv4
//! client on a dual-stack socket (`::ffff:a.b.c.d`) counts as `a.b.c.d`.

use std::hash::{Hash, Hasher};
use std::net::IpAddr;

/// One source: an IPv4 address or an IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    V4(u32),
    V6(u64),
}

/// One 8-byte write per key, not a tag and then a value: SipHash is the
/// larger part of a lookup. `Eq` still tells a V4 from a V6 that hash
/// the same.
impl Hash for Source {
    fn hash<H: Hasher>(&self, state: &mut H) {
        match *self {
            Source::V4(a) => state.write_u64(u64::from(a)),
            Source::V6(p) => state.write_u64(p),
        }
    }
}

impl From<IpAddr> for Source {
    fn from(ip: IpAddr) -> Source {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Source::V4(u32::from(v4)),
            IpAddr::V6(v6) => Source::V6((u128::from(v6) >> 64) as u64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(s: &str) -> Source {
        Source::from(s.parse::<IpAddr>().unwrap())
    }

    #[test]
    fn ipv6_counts_by_its_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(src("2001:db8:1:2:aaaa::1"), src("2001:db8:1:2:bbbb::9"));
        assert_ne!(src("2001:db8:1:2::1"), src("2001:db8:1:3::1"));
        assert_eq!(src("::ffff:192.0.2.7"), src("192.0.2.7"));
        assert_eq!(src("192.0.2.7"), Source::V4(0xc000_0207));
        assert_ne!(src("192.0.2.7"), src("192.0.2.8"));
    }
}
