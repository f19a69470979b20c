//! Addresses on the command line: `HOST:PORT`, where HOST is an IPv4
//! address (`127.0.0.1`), an IPv6 address in brackets (`[::1]`), or a name
//! (`localhost`) resolved with getaddrinfo(3) (std's `ToSocketAddrs`).
//!
//! Each is checked before anything is resolved, so a mistake is named
//! rather than reported as "invalid socket address syntax": an IPv6
//! address without its brackets, a port out of range, no port at all, a
//! name that does not resolve.
//!
//! What each command does with a name that resolves to several addresses:
//! `serve` listens on every one (`localhost` may be both `127.0.0.1` and
//! `::1`); `client` tries each in turn until one accepts, as `nc` does;
//! `bench` uses the first that accepts a connection.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// An address as given, and what it resolved to (at least one address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The host part as written, brackets removed: a name or an IP.
    pub host: String,
    /// Every address the host resolved to, in getaddrinfo's order, no
    /// duplicates.
    pub addrs: Vec<SocketAddr>,
}

impl Target {
    /// The host if it is a name (not an IP address): what a TLS client
    /// checks the server's certificate against by default.
    pub fn name(&self) -> Option<&str> {
        match self.host.parse::<IpAddr>() {
            Ok(_) => None,
            Err(_) => Some(&self.host),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let port = self.addrs.first().map_or(0, SocketAddr::port);
        match self.host.contains(':') {
            true => write!(f, "[{}]:{port}", self.host),
            false => write!(f, "{}:{port}", self.host),
        }
    }
}

/// An address to listen on: port 0 asks the kernel for a free port.
pub fn listen(s: &str) -> Result<Target, String> {
    resolve(s, 0)
}

/// An address to connect to: port 1 to 65535.
pub fn connect(s: &str) -> Result<Target, String> {
    resolve(s, 1)
}

/// An address to connect to, as one address: for a name with several, the
/// first that accepts a TCP connection within a second (the probe is
/// closed at once), else the first.
pub fn connect_one(s: &str) -> Result<SocketAddr, String> {
    let target = connect(s)?;
    let first = target.addrs[0];
    if target.addrs.len() == 1 {
        return Ok(first);
    }
    let reachable = target
        .addrs
        .iter()
        .find(|a| TcpStream::connect_timeout(a, Duration::from_secs(1)).is_ok());
    Ok(reachable.copied().unwrap_or(first))
}

/// Splits `s` into host and port, checks both, and resolves the host.
fn resolve(s: &str, min_port: u16) -> Result<Target, String> {
    let (host, port) = split(s)?;
    let port = port_number(port, min_port)?;
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(Target {
            host: host.to_string(),
            addrs: vec![SocketAddr::new(ip, port)],
        });
    }
    if !host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
    {
        return Err(format!("{host:?} is neither an IP address nor a host name"));
    }
    let found = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("host name {host:?} not found (getaddrinfo: {e})"))?;
    let mut addrs: Vec<SocketAddr> = Vec::new();
    for a in found {
        if !addrs.contains(&a) {
            addrs.push(a);
        }
    }
    if addrs.is_empty() {
        return Err(format!("host name {host:?} has no address"));
    }
    Ok(Target {
        host: host.to_string(),
        addrs,
    })
}

/// `HOST:PORT` or `[IPV6]:PORT` → (host, port text).
fn split(s: &str) -> Result<(&str, &str), String> {
    const FORM: &str = "write HOST:PORT, e.g. 127.0.0.1:7000, localhost:7000 or [::1]:7000";
    if s.is_empty() {
        return Err(format!("empty address: {FORM}"));
    }
    if let Some(rest) = s.strip_prefix('[') {
        let Some((inside, after)) = rest.split_once(']') else {
            return Err("no ']' after the IPv6 address".to_string());
        };
        if inside.parse::<Ipv6Addr>().is_err() {
            return Err(format!(
                "{inside:?} is not an IPv6 address (brackets are for IPv6 only)"
            ));
        }
        return match after.strip_prefix(':') {
            Some(port) => Ok((inside, port)),
            None => Err(format!("no port after the brackets: [{inside}]:PORT")),
        };
    }
    match s.matches(':').count() {
        0 => Err(format!("no port: {FORM}")),
        1 => match s.split_once(':') {
            Some(("", _)) => Err(format!("no host: {FORM}")),
            Some((host, port)) => Ok((host, port)),
            None => Err(FORM.to_string()),
        },
        _ => {
            // Several colons: an IPv6 address, with or without a port.
            let example = match s.rsplit_once(':') {
                Some((ip, port))
                    if ip.parse::<Ipv6Addr>().is_ok() && port.parse::<u16>().is_ok() =>
                {
                    format!("[{ip}]:{port}")
                }
                _ if s.parse::<Ipv6Addr>().is_ok() => format!("[{s}]:7000"),
                _ => "[::1]:7000".to_string(),
            };
            Err(format!(
                "an IPv6 address needs brackets around it, e.g. {example}"
            ))
        }
    }
}

/// The port's text → a number from `min` to 65535.
fn port_number(port: &str, min: u16) -> Result<u16, String> {
    if port.is_empty() {
        return Err("no port after the ':'".to_string());
    }
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("port {port:?} is not a number"));
    }
    match port.parse::<u32>() {
        Ok(p) if (u32::from(min)..=65535).contains(&p) => Ok(p as u16),
        _ => Err(format!("port {port} is out of range ({min} to 65535)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(r: Result<Target, String>) -> String {
        match r {
            Ok(t) => panic!("resolved: {t:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn ip_addresses_and_brackets() {
        let t = listen("127.0.0.1:7000").unwrap();
        assert_eq!(t.addrs, vec!["127.0.0.1:7000".parse().unwrap()]);
        assert_eq!(t.name(), None);
        let t = connect("[::1]:7000").unwrap();
        assert_eq!(t.addrs, vec!["[::1]:7000".parse().unwrap()]);
        assert_eq!(t.to_string(), "[::1]:7000");
        assert_eq!(listen("0.0.0.0:0").unwrap().addrs[0].port(), 0);
    }

    #[test]
    fn names_resolve() {
        let t = connect("localhost:7000").unwrap();
        assert!(t
            .addrs
            .iter()
            .all(|a| a.ip().is_loopback() && a.port() == 7000));
        assert_eq!(t.name(), Some("localhost"));
        assert_eq!(t.to_string(), "localhost:7000");
    }

    #[test]
    fn mistakes_are_named() {
        let e = err(connect("::1:7000"));
        assert!(
            e.contains("needs brackets") && e.contains("[::1]:7000"),
            "{e}"
        );
        let e = err(connect("::1"));
        assert!(e.contains("needs brackets") && e.contains("[::1]"), "{e}");
        let e = err(connect("127.0.0.1:99999"));
        assert!(e.contains("port 99999 is out of range (1 to 65535)"), "{e}");
        let e = err(connect("127.0.0.1:0"));
        assert!(e.contains("out of range"), "{e}");
        let e = err(connect("127.0.0.1"));
        assert!(e.contains("no port"), "{e}");
        let e = err(connect("[127.0.0.1]:7000"));
        assert!(e.contains("not an IPv6 address"), "{e}");
        let e = err(connect("[::1]7000"));
        assert!(e.contains("no port after the brackets"), "{e}");
        let e = err(connect("localhost:http"));
        assert!(e.contains("is not a number"), "{e}");
        let e = err(connect("no-such-host.invalid:7000"));
        assert!(e.contains("not found") && e.contains("getaddrinfo"), "{e}");
        let e = err(connect(":7000"));
        assert!(e.contains("no host"), "{e}");
    }
}
