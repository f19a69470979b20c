//! Helpers for the TLS tests: certificates made with `rcgen`, a server on
//! port 0 with a plain and a TLS listener, and a line client over rustls.
//! Every wait is bounded, so a hang fails instead of blocking the run.
#![allow(dead_code)]

pub mod pki;

#[path = "../chatkit/mod.rs"]
pub mod chatkit;

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

pub use pki::Pki;

/// Every wait in these tests ends by then.
pub const WAIT: Duration = Duration::from_secs(20);

/// A running `edgechat serve`, killed when dropped. Its stderr is read by
/// a thread into `log`.
pub struct Server {
    pub child: Child,
    pub tcp: SocketAddr,
    pub tls: SocketAddr,
    pub log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `edgechat serve --tcp 127.0.0.1:0 --tls 127.0.0.1:0` with the
    /// server pair of `pki`, plus `args`.
    pub fn start(pki: &Pki, args: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_edgechat"))
            .args(["serve", "--tcp", "127.0.0.1:0", "--tls", "127.0.0.1:0"])
            .arg("--cert")
            .arg(&pki.server_crt)
            .arg("--key")
            .arg(&pki.server_key)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn edgechat");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut l = sink.lock().expect("log");
                l.push_str(&line);
                l.push('\n');
            }
        });
        let mut srv = Server {
            child,
            tcp: SocketAddr::from(([0, 0, 0, 0], 0)),
            tls: SocketAddr::from(([0, 0, 0, 0], 0)),
            log,
        };
        srv.tcp = srv.addr_after("listening on tcp://");
        srv.tls = srv.addr_after("listening on tls://");
        srv
    }

    /// Waits for a log line containing `needle`; returns the rest of it.
    pub fn wait_log(&mut self, needle: &str) -> String {
        let end = Instant::now() + WAIT;
        loop {
            if let Some(rest) = self.log.lock().expect("log").split(needle).nth(1) {
                return rest.lines().next().unwrap_or("").to_string();
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!("server exited ({st}): {}", self.log.lock().expect("log"));
            }
            assert!(Instant::now() < end, "no log line {needle:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until `n` TLS listeners are logged; returns them in order.
    pub fn tls_listeners(&mut self, n: usize) -> Vec<SocketAddr> {
        let end = Instant::now() + WAIT;
        loop {
            let addrs: Vec<SocketAddr> = (self.log.lock().expect("log").lines())
                .filter_map(|l| l.split("listening on tls://").nth(1))
                .filter_map(|a| a.trim().parse().ok())
                .collect();
            if addrs.len() >= n {
                return addrs;
            }
            assert!(
                Instant::now() < end,
                "{} TLS listeners, not {n}",
                addrs.len()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn addr_after(&mut self, needle: &str) -> SocketAddr {
        self.wait_log(needle).trim().parse().expect("address")
    }

    /// Sends `sig` to the server.
    pub fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, sig) }, 0);
    }

    /// Stops the server (SIGSTOP) and waits until the kernel says it is
    /// stopped: from then on it runs no code, while the kernel still
    /// completes connections into its listen backlog and queues their bytes.
    pub fn freeze(&self) {
        self.signal(libc::SIGSTOP);
        let stat = format!("/proc/{}/stat", self.child.id());
        let end = Instant::now() + WAIT;
        loop {
            let s = std::fs::read_to_string(&stat).expect("read /proc/PID/stat");
            // The state follows the command name, which may hold spaces.
            if s[s.rfind(')').expect("comm") + 2..].starts_with('T') {
                return;
            }
            assert!(Instant::now() < end, "server did not stop");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Lets a frozen server run again (SIGCONT).
    pub fn thaw(&self) {
        self.signal(libc::SIGCONT);
    }

    /// Waits for the server to exit; returns its exit code.
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
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP connection with the test timeouts set.
pub fn tcp(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(WAIT)).expect("timeout");
    s.set_write_timeout(Some(WAIT)).expect("timeout");
    s.set_nodelay(true).expect("nodelay");
    s
}

/// A line client over rustls on a blocking socket: the chat tests' client
/// (`tests/chatkit`) over a TLS stream, plus what only TLS has.
pub type TlsClient = chatkit::Client<StreamOwned<ClientConnection, TcpStream>>;

impl TlsClient {
    /// Connects and finishes the handshake (as `localhost`).
    pub fn connect_tls(addr: SocketAddr, config: Arc<ClientConfig>) -> TlsClient {
        let name = ServerName::try_from("localhost").expect("name");
        let conn = ClientConnection::new(config, name).expect("client");
        let mut s = StreamOwned::new(conn, tcp(addr));
        while s.conn.is_handshaking() {
            s.conn.complete_io(&mut s.sock).expect("handshake");
        }
        chatkit::Client::over(s)
    }

    /// Connects and reads `HELLO <nick> lobby`.
    pub fn join(addr: SocketAddr, config: Arc<ClientConfig>) -> TlsClient {
        let mut c = TlsClient::connect_tls(addr, config);
        let hello = c.line();
        let f: Vec<&str> = hello.split(' ').collect();
        assert!(
            f.len() == 3 && f[0] == "HELLO" && f[2] == "lobby",
            "{hello}"
        );
        c.nick = f[1].to_string();
        c
    }

    pub fn stream(&mut self) -> &mut StreamOwned<ClientConnection, TcpStream> {
        self.r.get_mut()
    }

    /// Asserts the server ends the stream with `close_notify` (a clean TLS
    /// close: rustls reads 0; a bare FIN would be `UnexpectedEof`).
    pub fn expect_close_notify(&mut self) {
        let mut rest = Vec::new();
        match self.r.read_to_end(&mut rest) {
            Ok(_) => assert!(rest.is_empty(), "bytes before close: {rest:?}"),
            Err(e) => panic!("no close_notify: {e}"),
        }
    }
}

/// Reads from a raw socket until EOF or a reset; returns the bytes read.
/// Panics if the server has not closed within [`WAIT`].
pub fn read_until_closed(s: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return got,
            Err(e) => panic!("server did not close: {e}"),
        }
    }
}
