//! `edgechat client ADDR`: the other half of the socket tutorial, a line
//! client in the spirit of `nc -N`.
//!
//! The syscalls, in order:
//!
//! 1. `socket(SOCK_STREAM | SOCK_CLOEXEC)` → `connect(addr)` (blocking)
//! 2. `fcntl(F_SETFL, O_NONBLOCK)` on the socket
//! 3. `epoll_create1` → `epoll_ctl(ADD)` for the socket (edge-triggered,
//!    both directions) and for stdin (level-triggered: stdin stays
//!    blocking, because a terminal's flags are shared with the shell)
//! 4. loop: `epoll_wait` → `recv` from the socket → `write` to stdout;
//!    `read` from stdin → `send` to the socket
//! 5. stdin at end of file: `shutdown(SHUT_WR)` once every byte is sent,
//!    then keep printing until the server closes (`recv` = 0) and exit 0.
//!
//! With `--tls` the same loop drives a rustls client session over the
//! nonblocking socket (the one the server uses, `crate::transport`): the
//! ClientHello goes out on the first flush, and at the end of input
//! `close_notify` goes before the FIN.
//!
//! A regular file on stdin cannot be watched by epoll (`epoll_ctl` fails
//! with `EPERM`: a file is always readable), so it is read with plain
//! blocking reads whenever the socket has taken everything read before.
//! Bytes the socket does not take at once wait in one buffer until
//! `EPOLLOUT`; meanwhile stdin is not read (and not watched), so the client
//! neither drops bytes nor spins.
//!
//! When stdin and stdout are both terminals, the client is a chat client
//! instead of a pipe (`tty.rs`): the terminal goes into raw mode
//! (`tcgetattr` → `tcsetattr`, put back on every way out), the client keeps
//! the line being typed (`editor.rs`), and lines that arrive are printed
//! above it, scrubbed of control characters, with the typed line drawn
//! again below. Ctrl-D on an empty line is the end of input, as above.
//! A signalfd for the terminal's signals joins the epoll set. Otherwise
//! (pipes, files, tests) the bytes pass through unchanged both ways.
//!
//! The address may be a host name: each address it resolves to is tried in
//! turn until one accepts. A wrong port is named rather than shown: a plain
//! connection whose first bytes are a TLS record (an alert or a handshake,
//! `15`/`16 03 0X`) stops with "this looks like a TLS port: add --tls",
//! and a TLS handshake answered with bytes that are not TLS stops with
//! "not a TLS port?"; both exit 1.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;

use crate::addr::Target;
use crate::error::{Context, Error, Result};
use crate::queue::{Flushed, OutQueue, Turn};
use crate::sys::epoll::{self, Epoll, Event};
use crate::sys::{socket, stdio};
use crate::transport::{self, Input as Received, Transport};

mod editor;
mod tty;

use editor::Typed;
use nix::sys::signal::Signal;
use tty::Tty;

/// Bytes moved per `read`/`recv`.
const BUF: usize = 64 * 1024;
/// `recv` calls per turn, so a flood from the server cannot starve stdin.
const RECV_BUDGET: usize = 16;
const STDIN_TOKEN: u64 = 0;
const SOCKET_TOKEN: u64 = 1;
const SIGNAL_TOKEN: u64 = 2;

/// `edgechat client` flags. Every TLS flag needs `--tls`: without it the
/// client would connect in plain text and ignore them.
#[derive(Debug, Clone, clap::Args)]
#[command(
    mut_arg("ca", |a| a.requires("tls")),
    mut_arg("servername", |a| a.requires("tls"))
)]
pub struct ClientArgs {
    /// Server address: 127.0.0.1:7000, [::1]:7000, or a host name such as
    /// localhost:7000 (each of its addresses tried in turn).
    #[arg(value_name = "ADDR", value_parser = crate::addr::connect)]
    pub addr: Target,
    #[command(flatten)]
    pub tls: transport::client::TlsArgs,
    /// With --tls: present this client certificate (mTLS).
    #[arg(long, value_name = "PEM", requires = "key", requires = "tls")]
    pub cert: Option<PathBuf>,
    /// With --tls: the client certificate's private key.
    #[arg(long, value_name = "PEM", requires = "cert", requires = "tls")]
    pub key: Option<PathBuf>,
}

/// The TLS client config as the flags say (`None`: plain).
fn tls_config(args: &ClientArgs) -> Result<Option<Arc<ClientConfig>>> {
    if !args.tls.tls {
        return Ok(None);
    }
    let identity = args.cert.as_deref().zip(args.key.as_deref());
    let config = transport::client::config_with(args.tls.roots()?, identity)?;
    Ok(Some(config))
}

/// A plain transport, or a TLS client session to the server at `addr`,
/// checked against `--servername`, else the host name given, else the IP.
fn transport(
    args: &ClientArgs,
    config: Option<Arc<ClientConfig>>,
    addr: SocketAddr,
) -> Result<Transport> {
    let Some(config) = config else {
        return Ok(Transport::Plain);
    };
    let name = match (&args.tls.servername, args.addr.name()) {
        (None, Some(host)) => host.to_string(),
        _ => args.tls.name_for(addr),
    };
    Ok(Transport::Tls(Box::new(transport::client::connect(
        config, &name,
    )?)))
}

/// `socket` → `connect` to each address of `target` in turn; the first
/// that accepts, or the last error.
fn connect_any(target: &Target) -> Result<(OwnedFd, SocketAddr)> {
    let mut last = None;
    for &addr in &target.addrs {
        match socket::connect_tcp(addr) {
            Ok(sock) => return Ok((sock, addr)),
            Err(source) => last = Some(Error::Connect { addr, source }),
        }
    }
    Err(last.unwrap_or_else(|| Error::Config(format!("{target}: no address to connect to"))))
}

/// Whether the first bytes from a server are a TLS record header: an alert
/// (21) or a handshake (22), then version 3.x (SSL 3.0 to TLS 1.3).
fn looks_like_tls(first: &[u8]) -> bool {
    matches!(first, [0x15 | 0x16, 0x03, 0..=0x04, ..])
}

/// Whether a TLS error during the handshake means the server does not
/// speak TLS at all (bytes that are no TLS record, or a record no server
/// sends), rather than a certificate or version it will not accept.
fn not_tls(source: &io::Error) -> bool {
    use rustls::Error as E;
    matches!(
        source.get_ref().and_then(|e| e.downcast_ref::<E>()),
        Some(
            E::InvalidMessage(_)
                | E::InappropriateMessage { .. }
                | E::InappropriateHandshakeMessage { .. }
        )
    )
}

/// Where stdin is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Input {
    /// A pipe or terminal in the epoll set (`registered` is false while the
    /// socket still owes bytes from an earlier read).
    Polled { registered: bool },
    /// A regular file: always readable, read with blocking reads.
    File,
    /// End of file seen.
    Closed,
}

/// The connection, stdin, and the bytes read but not yet sent.
struct Client {
    epoll: Epoll,
    sock: OwnedFd,
    addr: SocketAddr,
    input: Input,
    transport: Transport,
    /// Bytes from stdin the socket has not taken yet.
    out: OutQueue,
    buf: Box<[u8]>,
    readable: bool,
    writable: bool,
    /// `shutdown(SHUT_WR)` has been sent.
    shut: bool,
    /// A terminal on stdin and stdout: the line editor and raw mode.
    tty: Option<Tty>,
    /// Lines finished on the terminal, to send (reused between reads).
    typed: Vec<u8>,
    /// Bytes have come from the server (its first ones are checked).
    heard: bool,
}

/// Runs the client until the server closes the connection. On a terminal,
/// a signal that ends it ends the process by that same signal, once the
/// terminal is put back.
pub fn run(args: &ClientArgs) -> Result<()> {
    match connect(args)?.run()? {
        Some(sig) => crate::sys::signal::die_by(sig), // the client is dropped: settings back
        None => Ok(()),
    }
}

/// `socket` → `connect`, the epoll set, and raw mode on a terminal.
fn connect(args: &ClientArgs) -> Result<Client> {
    let config = tls_config(args)?;
    let (sock, addr) = connect_any(&args.addr)?;
    let transport = transport(args, config, addr)?;
    socket::set_nonblocking(sock.as_fd()).sys("fcntl(O_NONBLOCK)")?;
    let epoll = Epoll::new().sys("epoll_create1")?;
    epoll
        .add(sock.as_fd(), epoll::interest_all(), SOCKET_TOKEN)
        .sys("epoll_ctl(socket)")?;
    let stdin = io::stdin();
    let input = match epoll.add(stdin.as_fd(), epoll::interest_read_level(), STDIN_TOKEN) {
        Ok(()) => Input::Polled { registered: true },
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => Input::File,
        Err(e) => return Err(e).sys("epoll_ctl(stdin)"),
    };
    let tty = Tty::open()?;
    if let Some(tty) = &tty {
        epoll
            .add(tty.signal_fd(), epoll::interest_read_level(), SIGNAL_TOKEN)
            .sys("epoll_ctl(signalfd)")?;
    }
    Ok(Client {
        epoll,
        sock,
        addr,
        input,
        transport,
        out: OutQueue::default(),
        buf: vec![0u8; BUF].into_boxed_slice(),
        readable: true,
        writable: true,
        shut: false,
        tty,
        typed: Vec::new(),
        heard: false,
    })
}

impl Client {
    /// Returns the signal to end the process by, if one ended the client.
    fn run(mut self) -> Result<Option<Signal>> {
        let mut events = Epoll::events(8);
        loop {
            // Never sleep while there is work epoll will not announce: a
            // regular file to read, or a socket left readable by the budget.
            let busy = self.readable
                || self.transport.pending()
                || (self.input == Input::File && self.owes_nothing());
            let timeout = busy.then_some(Duration::ZERO);
            let n = self.epoll.wait(&mut events, timeout).sys("epoll_wait")?;
            let (mut stdin_ready, mut signaled) = (false, false);
            for ev in &events[..n] {
                match epoll::token(ev) {
                    STDIN_TOKEN => stdin_ready = true,
                    SIGNAL_TOKEN => signaled = true,
                    _ => self.on_socket_event(ev),
                }
            }
            if let (true, Some(tty)) = (signaled, &mut self.tty) {
                if let Some(sig) = tty.on_signals()? {
                    return Ok(Some(sig));
                }
            }
            if (self.readable || self.transport.pending()) && self.drain_socket()? {
                return Ok(None); // the server closed: everything it sent is out
            }
            self.flush()?;
            if self.owes_nothing() && (stdin_ready || self.input == Input::File) {
                self.read_stdin()?;
            }
            self.update_input()?;
        }
    }

    fn on_socket_event(&mut self, ev: &Event) {
        if epoll::is_readable(ev) || epoll::is_read_closed(ev) || epoll::is_error(ev) {
            self.readable = true;
        }
        if epoll::is_writable(ev) || epoll::is_error(ev) {
            self.writable = true;
        }
    }

    fn owes_nothing(&self) -> bool {
        self.out.is_empty() && !self.transport.wants_write()
    }

    /// Copies what the server sent to stdout (on a terminal, through the
    /// line editor). Returns true once the server has closed its side.
    fn drain_socket(&mut self) -> Result<bool> {
        let stdout = io::stdout();
        for _ in 0..RECV_BUDGET {
            let fd = self.sock.as_fd();
            match self
                .transport
                .read(fd, &mut self.buf, &mut self.readable, false)
            {
                Ok(Received::Eof) => {
                    if let Some(tty) = &mut self.tty {
                        tty.leave()?;
                    }
                    return Ok(true);
                }
                Ok(Received::Data(n)) => {
                    let first = !std::mem::replace(&mut self.heard, true);
                    if first && self.transport.is_plain() && looks_like_tls(&self.buf[..n]) {
                        return Err(Error::Check(format!(
                            "{}: the server answered with a TLS record: this looks like a \
                             TLS port: add --tls",
                            self.addr
                        )));
                    }
                    match &mut self.tty {
                        Some(tty) => tty.incoming(&self.buf[..n])?,
                        None => {
                            stdio::write_all(stdout.as_fd(), &self.buf[..n]).sys("write stdout")?
                        }
                    }
                }
                Ok(Received::Nothing) if !self.readable && !self.transport.pending() => {
                    return Ok(false);
                }
                Ok(Received::Nothing) => {}
                Err(source) if self.transport.handshaking() && not_tls(&source) => {
                    return Err(Error::Check(format!(
                        "recv {}: not a TLS port? the server's answer is not TLS ({source}); \
                         leave out --tls for a plain port",
                        self.addr
                    )));
                }
                Err(source) => return Err(self.net_error("recv", source)),
            }
        }
        Ok(false) // budget used up: `readable` stays set for the next turn
    }

    /// Reads one chunk from stdin and sends it (on a terminal: the lines
    /// the keys finished); at end of file (or Ctrl-D on an empty line),
    /// half-closes once nothing is owed.
    fn read_stdin(&mut self) -> Result<()> {
        let stdin = io::stdin();
        let n = stdio::read(stdin.as_fd(), &mut self.buf).sys("read stdin")?;
        let (bytes, eof) = match &mut self.tty {
            _ if n == 0 => (&[][..], true),
            None => (&self.buf[..n], false),
            Some(tty) => {
                self.typed.clear();
                let typed = tty.keys(&self.buf[..n], &mut self.typed)?;
                (&self.typed[..], typed == Typed::Eof)
            }
        };
        if !bytes.is_empty() {
            let fd = self.sock.as_fd();
            self.transport
                .write(fd, &mut self.out, bytes, &mut self.writable)
                .map_err(|source| self.net_error("send", source))?;
        }
        if eof {
            if let Input::Polled { registered: true } = self.input {
                self.epoll.delete(stdin.as_fd()).sys("epoll_ctl(stdin)")?;
            }
            self.input = Input::Closed;
        }
        self.flush() // at the end of input, and owing nothing: sends FIN now
    }

    /// Sends what is pending while the socket takes it; after stdin's end
    /// of file and the last byte, sends FIN.
    fn flush(&mut self) -> Result<()> {
        // At the end of input TLS sends close_notify once all else is out,
        // and never before its handshake is done (a half-made session has
        // nothing to close, and the server's certificate is still unchecked).
        let closing = self.input == Input::Closed && !self.transport.handshaking();
        if self.writable {
            let fd = self.sock.as_fd();
            match self
                .transport
                .flush(fd, &mut self.out, &Turn::default(), closing)
            {
                Ok(Flushed::All) => {}
                Ok(Flushed::Blocked) => self.writable = false,
                Err(source) => return Err(self.net_error("send", source)),
            }
        }
        if closing && self.owes_nothing() && self.transport.closed() && !self.shut {
            socket::shutdown_write(self.sock.as_fd())
                .map_err(|source| self.net_error("shutdown", source))?;
            self.shut = true;
        }
        Ok(())
    }

    /// Watches stdin only while the socket owes nothing, so a slow server
    /// pauses reading instead of growing a buffer or waking the loop in vain.
    fn update_input(&mut self) -> Result<()> {
        let Input::Polled { registered } = self.input else {
            return Ok(());
        };
        let want = self.owes_nothing();
        let stdin = io::stdin();
        if want && !registered {
            self.epoll
                .add(stdin.as_fd(), epoll::interest_read_level(), STDIN_TOKEN)
                .sys("epoll_ctl(stdin)")?;
        } else if !want && registered {
            self.epoll.delete(stdin.as_fd()).sys("epoll_ctl(stdin)")?;
        }
        self.input = Input::Polled { registered: want };
        Ok(())
    }

    /// An error on the connection, naming the call and the server.
    fn net_error(&self, call: &'static str, source: io::Error) -> Error {
        Error::Peer {
            call,
            addr: self.addr,
            source,
        }
    }
}
