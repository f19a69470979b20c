//! An echo mode pointed at a chat server: the server speaks first
//! (`HELLO guest1 lobby`), which no echo server does, so the first bytes
//! of a connection tell. The run stops at once, naming the mistake,
//! instead of counting mismatched echoes ("echoed more bytes than were
//! sent").

use std::fmt;
use std::io;
use std::net::SocketAddr;

use crate::error::Error;

/// The marker inside the `io::Error` a connection fails with.
#[derive(Debug)]
pub struct ChatGreeting(String);

impl fmt::Display for ChatGreeting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the server greeted with {:?}", self.0)
    }
}

impl std::error::Error for ChatGreeting {}

/// The error to fail a connection with if `first`, the first bytes it
/// received, is a chat server's greeting.
pub fn check(first: &[u8]) -> io::Result<()> {
    if !first.starts_with(b"HELLO ") {
        return Ok(());
    }
    let line = first.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(&line[..line.len().min(80)]).into_owned();
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        ChatGreeting(line),
    ))
}

/// The run's error if `e` is the greeting [`check`] found.
pub fn stop(e: &io::Error, addr: SocketAddr) -> Option<Error> {
    let greeting = e.get_ref()?.downcast_ref::<ChatGreeting>()?;
    Some(Error::Check(format!(
        "{addr}: {greeting}: this is a chat server, and the echo modes (pingpong, \
         stream, handshake) need an echo server: start one with `edgechat serve --mode echo --tcp 127.0.0.1:7001` \
         and bench --addr 127.0.0.1:7001 (or measure chat with --mode chat)"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hello_line_stops_the_run_and_anything_else_does_not() {
        assert!(check(b"abcdef").is_ok());
        assert!(check(b"HELL").is_ok());
        let e = check(b"HELLO guest1 lobby\nJOIN x\n").unwrap_err();
        let addr = "127.0.0.1:7000".parse().unwrap();
        let stop = stop(&e, addr).unwrap().to_string();
        assert!(stop.contains("\"HELLO guest1 lobby\""), "{stop}");
        assert!(stop.contains("chat server") && stop.contains("serve --mode echo"));
        let other = io::Error::new(io::ErrorKind::InvalidData, "x");
        assert!(super::stop(&other, addr).is_none());
    }
}
