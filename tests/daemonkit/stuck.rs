//! A chat client that reads nothing while the server owes it many lines:
//! most of them wait in the server's output queue, for the shutdown tests
//! to see what a shutdown does with them. Uses `chatkit` and `common`,
//! which the test crate declares beside it.

use std::net::SocketAddr;

use crate::{chatkit, common};

/// Room lines queued for the client [`stuck_reader`] returns.
pub const LINES: usize = 3000;

/// A chat client of the server at `addr` (started with `--sndbuf 4096`)
/// that reads nothing past its `JOIN` line, with a 4 KiB receive buffer,
/// owed [`LINES`] room lines (`line 0` ...) sent by a second client: both
/// returned, the second with its `nick` set. Most of the lines wait in the
/// server's queue: the kernel is shown to hold under half of what is owed.
pub fn stuck_reader(addr: SocketAddr) -> (chatkit::Client, chatkit::Client) {
    let mut stuck = chatkit::Client::over(common::connect_small_rcvbuf(addr, 4096));
    stuck.line();
    let mut writer = chatkit::Client::connect(addr);
    let nick = writer.line().split(' ').nth(1).expect("nick").to_string();
    stuck.expect(&[&format!("JOIN {nick}")]);
    let lines: String = (0..LINES).map(|i| format!("line {i}\n")).collect();
    writer.raw(lines.as_bytes());
    writer.expect_nothing(); // every line has been handled by the server
    let owed: usize = (0..LINES)
        .map(|i| format!("MSG {nick} line {i}\n").len())
        .sum();
    let me = stuck.stream().local_addr().expect("local addr");
    let queues = (common::tcp_queues(addr, me), common::tcp_queues(me, addr));
    let (Some(server), Some(client)) = queues else {
        panic!("no /proc/net/tcp entry for {me}");
    };
    let in_kernel = (server.tx + client.rx) as usize;
    assert!(
        in_kernel < owed / 2,
        "the kernel holds {in_kernel} of {owed} bytes: the server owes too little for the test to mean anything"
    );
    writer.nick = nick;
    (stuck, writer)
}
