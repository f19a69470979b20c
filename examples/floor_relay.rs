//! The floor of chat fan-out: the least a relay in edgechat's line protocol
//! can do per delivery on Linux, to measure edgechat against. A reference,
//! not a peer: nobody would deploy it (no limits, no commands, unbounded
//! output buffers, one room).
//!
//! One thread, edge-triggered epoll through libc directly. A readable
//! client is read until `EAGAIN`; the complete lines of those reads are
//! encoded once into one batch (`MSG <nick> <text>\n` each), and the batch
//! is appended to every other client's output buffer. Once every event of
//! the turn is handled, each client with output gets ONE `send`; what the
//! socket does not take waits for `EPOLLOUT`. A client gets `HELLO
//! guest<N> lobby` on connect, which is all `edgechat bench --mode chat`
//! needs; there is no `JOIN` or `QUIT`.
//!
//! ```text
//! cargo run --release --example floor_relay -- 127.0.0.1:7003
//! ```
//!
//! Prints `listening on tcp://ADDR` to stderr.

use std::io;
use std::net::TcpListener;
use std::os::fd::AsRawFd;

/// One connected client, kept at its descriptor's index.
struct Client {
    /// `MSG guest<N> `.
    prefix: Vec<u8>,
    /// The start of a line not yet complete.
    carry: Vec<u8>,
    /// Bytes owed to it.
    out: Vec<u8>,
    /// Listed in `dirty` this turn.
    dirty: bool,
}

/// A libc return value as a result.
fn check(ret: isize) -> io::Result<usize> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}

fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7003".into());
    let listener = TcpListener::bind(&addr)?;
    listener.set_nonblocking(true)?;
    eprintln!("listening on tcp://{}", listener.local_addr()?);
    let lfd = listener.as_raw_fd();
    // SAFETY: no pointer arguments; the result is checked.
    let ep = check(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) } as isize)? as i32;
    add(ep, lfd, libc::EPOLLIN as u32)?;

    let mut clients: Vec<Option<Client>> = Vec::new();
    let mut members: Vec<i32> = Vec::new();
    let mut dirty: Vec<i32> = Vec::new();
    let mut next_guest = 0u64;
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    let mut buf = vec![0u8; 64 * 1024];
    let mut batch = Vec::with_capacity(64 * 1024);
    loop {
        // SAFETY: `events` is a live buffer of `events.len()` entries.
        let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as i32, -1) };
        let n = match check(n as isize) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        for ev in &events[..n] {
            let (fd, what) = (ev.u64 as i32, ev.events);
            if fd == lfd {
                accept_all(
                    ep,
                    lfd,
                    &mut clients,
                    &mut members,
                    &mut dirty,
                    &mut next_guest,
                )?;
                continue;
            }
            let Some(c) = clients.get_mut(fd as usize).and_then(Option::as_mut) else {
                continue;
            };
            if what & libc::EPOLLOUT as u32 != 0 && !c.out.is_empty() && !c.dirty {
                c.dirty = true;
                dirty.push(fd);
            }
            if what & (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32
                == 0
            {
                continue;
            }
            batch.clear();
            let open = read_lines(fd, c, &mut buf, &mut batch);
            if !batch.is_empty() {
                for &m in &members {
                    if m == fd {
                        continue;
                    }
                    if let Some(Some(o)) = clients.get_mut(m as usize) {
                        o.out.extend_from_slice(&batch);
                        if !o.dirty {
                            o.dirty = true;
                            dirty.push(m);
                        }
                    }
                }
            }
            if !open {
                clients[fd as usize] = None;
                members.retain(|&m| m != fd);
                // SAFETY: `fd` is ours, and forgotten above.
                unsafe { libc::close(fd) };
            }
        }
        for fd in dirty.drain(..) {
            let Some(Some(c)) = clients.get_mut(fd as usize) else {
                continue;
            };
            c.dirty = false;
            // SAFETY: `c.out` is live for its length; `fd` is open.
            let sent =
                unsafe { libc::send(fd, c.out.as_ptr().cast(), c.out.len(), libc::MSG_NOSIGNAL) };
            if let Ok(k) = check(sent) {
                c.out.drain(..k); // the rest waits for EPOLLOUT
            }
        }
    }
}

/// Registers `fd` with the epoll set `ep` for `events`, keyed by `fd`.
fn add(ep: i32, fd: i32, events: u32) -> io::Result<()> {
    let mut ev = libc::epoll_event {
        events,
        u64: fd as u64,
    };
    // SAFETY: `ev` is a live epoll_event for the call's duration.
    check(unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev) } as isize)?;
    Ok(())
}

/// Accepts until `EAGAIN`; each newcomer is owed its `HELLO`.
fn accept_all(
    ep: i32,
    lfd: i32,
    clients: &mut Vec<Option<Client>>,
    members: &mut Vec<i32>,
    dirty: &mut Vec<i32>,
    next_guest: &mut u64,
) -> io::Result<()> {
    loop {
        let flags = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
        // SAFETY: null address pointers are allowed; the result is checked.
        let fd = unsafe { libc::accept4(lfd, std::ptr::null_mut(), std::ptr::null_mut(), flags) };
        if fd < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock => Ok(()),
                io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted => continue,
                _ => Err(e),
            };
        }
        let one: libc::c_int = 1;
        // SAFETY: `one` is a live c_int of the size given.
        unsafe {
            libc::setsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_NODELAY,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        let et = libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET;
        add(ep, fd, et as u32)?;
        *next_guest += 1;
        let i = fd as usize;
        if clients.len() <= i {
            clients.resize_with(i + 1, || None);
        }
        clients[i] = Some(Client {
            prefix: format!("MSG guest{} ", next_guest).into_bytes(),
            carry: Vec::new(),
            out: format!("HELLO guest{} lobby\n", next_guest).into_bytes(),
            dirty: true,
        });
        members.push(fd);
        dirty.push(fd);
    }
}

/// Reads `fd` until `EAGAIN`, appending each complete non-empty line to
/// `batch` as `MSG <nick> <text>\n`. False once the client is gone.
fn read_lines(fd: i32, c: &mut Client, buf: &mut [u8], batch: &mut Vec<u8>) -> bool {
    loop {
        // SAFETY: `buf` is a live, writable buffer of `buf.len()` bytes.
        let got = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
        let got = match check(got) {
            Ok(0) => return false,
            Ok(k) => k,
            Err(e) => return e.kind() == io::ErrorKind::WouldBlock,
        };
        let mut rest = &buf[..got];
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            let mut line = &rest[..i];
            if !c.carry.is_empty() {
                c.carry.extend_from_slice(line);
                line = &c.carry;
            }
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if !line.is_empty() {
                batch.extend_from_slice(&c.prefix);
                batch.extend_from_slice(line);
                batch.push(b'\n');
            }
            c.carry.clear();
            rest = &rest[i + 1..];
        }
        c.carry.extend_from_slice(rest);
    }
}
