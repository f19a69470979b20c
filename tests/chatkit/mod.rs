//! Helpers for the chat tests: start a real server on port 0, connect
//! line clients over real sockets, and read lines with bounded waits.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Every wait in these tests ends by then, so a hang fails instead.
pub const WAIT: Duration = Duration::from_secs(20);

/// A running `edgechat serve`, stopped with SIGKILL when dropped.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub stderr: BufReader<std::process::ChildStderr>,
}

impl Server {
    /// Starts `edgechat serve --tcp 127.0.0.1:0 ARGS...` and waits for its
    /// `listening on tcp://` line.
    pub fn start(args: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_edgechat"))
            .args(["serve", "--tcp", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn edgechat");
        let stderr = BufReader::new(child.stderr.take().expect("stderr"));
        // From here on, Drop reaps the child whatever happens.
        let mut srv = Server {
            child,
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            stderr,
        };
        let mut line = String::new();
        loop {
            line.clear();
            assert!(
                srv.stderr.read_line(&mut line).expect("read stderr") > 0,
                "server exited"
            );
            if let Some(a) = line.split("listening on tcp://").nth(1) {
                srv.addr = a.trim().parse().expect("address");
                return srv;
            }
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends `sig` to the server.
    pub fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        assert_eq!(unsafe { libc::kill(self.pid(), sig) }, 0);
    }

    /// Waits for the server to exit and returns its exit code.
    pub fn wait_exit(&mut self) -> i32 {
        let end = Instant::now() + WAIT;
        loop {
            if let Some(st) = self.child.try_wait().expect("wait") {
                return st.code().unwrap_or(-1);
            }
            assert!(Instant::now() < end, "server did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Connects a client and reads its `HELLO`; returns it with its nick.
    pub fn join(&self) -> Client {
        let mut c = Client::<TcpStream>::connect(self.addr);
        let hello = c.line();
        let mut f = hello.split(' ');
        assert_eq!(f.next(), Some("HELLO"), "{hello}");
        c.nick = f.next().expect("nick").to_string();
        assert_eq!(f.next(), Some("lobby"));
        c
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One chat client over a blocking stream (a socket with a read timeout,
/// or a TLS stream over one): lines in, lines out.
pub struct Client<S: Read + Write = TcpStream> {
    pub r: BufReader<S>,
    pub nick: String,
}

impl Client<TcpStream> {
    pub fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(WAIT)).expect("timeout");
        s.set_nodelay(true).expect("nodelay");
        Client::over(s)
    }

    pub fn stream(&self) -> &TcpStream {
        self.r.get_ref()
    }

    /// Asserts a clean close: no more bytes, then EOF (the server's FIN).
    /// A reset fails: it can destroy the last lines before they are read.
    pub fn expect_fin(&mut self) {
        let mut rest = Vec::new();
        if let Err(e) = self.r.read_to_end(&mut rest) {
            panic!(
                "no clean close: {e} after {:?}",
                String::from_utf8_lossy(&rest)
            );
        }
        assert!(
            rest.is_empty(),
            "bytes before EOF: {:?}",
            String::from_utf8_lossy(&rest)
        );
    }

    /// Asserts the server closes: EOF, or a reset, after no more bytes.
    /// Where the contract says the close is clean, use [`Client::expect_fin`].
    pub fn expect_eof(&mut self) {
        let mut rest = Vec::new();
        match self.r.read_to_end(&mut rest) {
            Ok(_) => assert!(
                rest.is_empty(),
                "bytes before EOF: {:?}",
                String::from_utf8_lossy(&rest)
            ),
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
        }
    }

    pub fn half_close(&self) {
        self.stream().shutdown(Shutdown::Write).expect("shutdown");
    }
}

impl<S: Read + Write> Client<S> {
    /// A client over an already connected stream.
    pub fn over(stream: S) -> Client<S> {
        Client {
            r: BufReader::new(stream),
            nick: String::new(),
        }
    }

    /// Sends raw bytes.
    pub fn raw(&mut self, bytes: &[u8]) {
        let s = self.r.get_mut();
        s.write_all(bytes).expect("write");
        s.flush().expect("flush");
    }

    /// Sends one line (adds `\n`).
    pub fn send(&mut self, line: &str) {
        self.raw(format!("{line}\n").as_bytes());
    }

    /// The next line, without its `\n`. Panics on EOF or after [`WAIT`].
    pub fn line(&mut self) -> String {
        let mut s = String::new();
        let n = self.r.read_line(&mut s).expect("read line");
        assert!(n > 0, "unexpected EOF");
        assert!(s.ends_with('\n'), "unterminated line {s:?}");
        s.pop();
        s
    }

    /// Asserts the next lines are exactly `want`.
    pub fn expect(&mut self, want: &[&str]) {
        for w in want {
            assert_eq!(self.line(), *w);
        }
    }

    /// Asserts nothing else arrived before now: a `/ping` round trip is the
    /// next thing read.
    pub fn expect_nothing(&mut self) {
        self.send("/ping sync");
        assert_eq!(self.line(), "PONG sync");
    }
}
