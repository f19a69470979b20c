//! Shared helpers for the integration tests: start the real `edgechat`
//! binary on port 0, learn its addresses from its log, stop and reap it on
//! drop, connect to it, read its resource use from `/proc`, and bound every
//! wait so a hang fails the test instead of blocking the suite.
#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, Once};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::socket::{self as ns, sockopt, AddressFamily, SockFlag, SockType, SockaddrStorage};
use nix::unistd::Pid;

/// The longest any single wait in a test may take.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_edgechat");

/// A running server. Dropping it sends SIGTERM and reaps the process (then
/// SIGKILL if it does not exit), so no test leaves a server behind.
pub struct Server {
    child: Child,
    /// TCP listeners, in the order they were logged.
    pub tcp: Vec<SocketAddr>,
    /// UDP listeners, in the order they were logged.
    pub udp: Vec<SocketAddr>,
    /// TLS listeners, in the order they were logged.
    pub tls: Vec<SocketAddr>,
    log: Arc<Mutex<String>>,
    status: Option<ExitStatus>,
}

/// What the stderr reader thread reports while the server starts.
enum Listening {
    Tcp(SocketAddr),
    Tls(SocketAddr),
    Udp(SocketAddr),
}

impl Server {
    /// Runs `edgechat serve --mode echo ARGS` and waits until it has logged
    /// one `listening on ...` line for every `--tcp`, `--tls` and `--udp` in
    /// `args`.
    pub fn start(args: &[&str]) -> Server {
        Server::start_mode("echo", args)
    }

    /// The same, serving `mode` (`echo` or `chat`).
    pub fn start_mode(mode: &str, args: &[&str]) -> Server {
        Server::start_wrapped(&[], mode, args)
    }

    /// The same, started with its descriptor limit at `nofile` (soft and
    /// hard), through `prlimit`, which execs the server (same pid).
    pub fn start_with_nofile(nofile: u32, mode: &str, args: &[&str]) -> Server {
        let limit = format!("--nofile={nofile}:{nofile}");
        Server::start_wrapped(&["prlimit", &limit, "--"], mode, args)
    }

    fn start_wrapped(wrapper: &[&str], mode: &str, args: &[&str]) -> Server {
        raise_own_nofile();
        let want = args
            .iter()
            .filter(|a| matches!(**a, "--tcp" | "--tls" | "--udp"))
            .count();
        assert!(want > 0, "tests always name their listeners (port 0)");
        let mut child = spawn(wrapper, mode, args);
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().expect("stderr is piped");
        let sink = Arc::clone(&log);
        // Keeps draining stderr for the server's whole life, so a chatty
        // server never blocks on a full pipe.
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(l) = parse_listening(&line) {
                    let _ = tx.send(l);
                }
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let mut server = Server {
            child,
            tcp: Vec::new(),
            udp: Vec::new(),
            tls: Vec::new(),
            log,
            status: None,
        };
        let deadline = Instant::now() + TIMEOUT;
        while server.tcp.len() + server.tls.len() + server.udp.len() < want {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(Listening::Tcp(a)) => server.tcp.push(a),
                Ok(Listening::Udp(a)) => server.udp.push(a),
                Ok(Listening::Tls(a)) => server.tls.push(a),
                Err(e) => panic!(
                    "server {args:?} did not report its listeners ({e:?}); stderr:\n{}",
                    server.log()
                ),
            }
        }
        server
    }

    /// The first TCP listener.
    pub fn addr(&self) -> SocketAddr {
        self.tcp[0]
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Everything the server has written to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn signal(&self, sig: Signal) {
        kill(Pid::from_raw(self.pid()), sig).expect("kill(2) the server");
    }

    /// Asks for a stats line (SIGUSR1) and returns the first one logged after.
    pub fn stats(&self) -> String {
        let before = self.log().matches(" stats: ").count();
        self.signal(Signal::SIGUSR1);
        wait_until("a new stats line", || {
            self.log().matches(" stats: ").count() > before
        });
        let log = self.log();
        let line = log.lines().filter(|l| l.contains(" stats: ")).nth(before);
        line.expect("the stats line").to_string()
    }

    /// `None` while the server runs; its exit status once it has exited.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("waitpid(2)");
        }
        self.status
    }

    /// Panics unless the server is still running.
    pub fn assert_alive(&mut self) {
        if let Some(st) = self.try_status() {
            panic!("server exited ({st}); stderr:\n{}", self.log());
        }
    }

    /// Waits (at most `limit`) for the server to exit and returns its status.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(st) = self.try_status() {
                return st;
            }
            if Instant::now() >= deadline {
                panic!(
                    "server did not exit within {limit:?}; stderr:\n{}",
                    self.log()
                );
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Resident set size in bytes (`VmRSS` in `/proc/PID/status`).
    pub fn rss(&self) -> u64 {
        self.status_bytes("VmRSS:")
    }

    /// The peak resident set size so far, in bytes (`VmHWM`).
    pub fn peak_rss(&self) -> u64 {
        self.status_bytes("VmHWM:")
    }

    /// A `/proc/PID/status` field given in kB, in bytes.
    fn status_bytes(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/PID/status");
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{field} in /proc/PID/status"));
        kib * 1024
    }

    /// CPU time used so far, user + system (`/proc/PID/stat` fields 14, 15).
    pub fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))
            .expect("read /proc/PID/stat");
        // The command name (field 2) may hold spaces: count from the ')'.
        let rest = &stat[stat.rfind(')').expect("comm in stat") + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        // SAFETY: sysconf(3) only reads a configuration value.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
        Duration::from_millis(ticks * 1000 / hz)
    }

    /// How many descriptors the server holds (entries of `/proc/PID/fd`).
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .expect("read /proc/PID/fd")
            .count()
    }

    /// The server's descriptor numbers, in order, each with what it is.
    pub fn fds(&self) -> Vec<(u64, String)> {
        let dir = format!("/proc/{}/fd", self.pid());
        let mut fds: Vec<(u64, String)> = std::fs::read_dir(&dir)
            .expect("read /proc/PID/fd")
            .filter_map(|e| {
                let e = e.ok()?;
                let n = e.file_name().to_str()?.parse().ok()?;
                let target = std::fs::read_link(e.path()).ok()?;
                Some((n, target.display().to_string()))
            })
            .collect();
        fds.sort();
        fds
    }

    /// What each of the server's descriptors is, for failure messages.
    pub fn fd_list(&self) -> String {
        let fds = self.fds();
        fds.iter().map(|(n, t)| format!("{n} -> {t}\n")).collect()
    }

    /// How many descriptors the server holds when it serves no client.
    /// A probe client proves the loop has finished start-up; the count is
    /// taken once the server has closed the probe again.
    pub fn idle_fds(&self) -> usize {
        let mut probe = connect(self.addr());
        assert_echo(&mut probe, b"probe");
        let idle = self.open_fds() - 1;
        drop(probe);
        self.wait_fds(idle);
        idle
    }

    /// Waits until the server holds exactly `n` descriptors.
    pub fn wait_fds(&self, n: usize) {
        let deadline = Instant::now() + TIMEOUT;
        while self.open_fds() != n {
            if Instant::now() >= deadline {
                panic!(
                    "server still holds {} fds, not {n}, after {TIMEOUT:?}:\n{}",
                    self.open_fds(),
                    self.fd_list()
                );
            }
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.try_status().is_some() {
            return;
        }
        let _ = kill(Pid::from_raw(self.pid()), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(wrapper: &[&str], mode: &str, args: &[&str]) -> Child {
    let mut cmd = match wrapper.split_first() {
        Some((program, rest)) => {
            let mut c = Command::new(program);
            c.args(rest).arg(BIN);
            c
        }
        None => Command::new(BIN),
    };
    cmd.args(["serve", "--mode", mode])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn edgechat")
}

fn parse_listening(line: &str) -> Option<Listening> {
    let (_, rest) = line.split_once("listening on ")?;
    if let Some(a) = rest.strip_prefix("tcp://") {
        return a.trim().parse().ok().map(Listening::Tcp);
    }
    if let Some(a) = rest.strip_prefix("tls://") {
        return a.trim().parse().ok().map(Listening::Tls);
    }
    let a = rest.strip_prefix("udp://")?;
    a.trim().parse().ok().map(Listening::Udp)
}

/// Runs `edgechat serve --mode echo ARGS` to completion (at most
/// [`TIMEOUT`]) and returns its exit status and stderr. For servers that
/// are expected to fail at start-up.
pub fn run_to_exit(args: &[&str]) -> (ExitStatus, String) {
    let mut all = vec!["serve", "--mode", "echo"];
    all.extend(args);
    let out = run_edgechat(&all, Stdio::null(), None);
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Raises this test process's own soft `RLIMIT_NOFILE` to its hard limit:
/// some tests hold hundreds of client sockets at once.
fn raise_own_nofile() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        use nix::sys::resource::{getrlimit, setrlimit, Resource};
        if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
            if soft < hard {
                let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
            }
        }
    });
}

/// Runs `f` on its own thread and fails the test if it takes longer than
/// [`TIMEOUT`]. A panic inside `f` fails the test with the same message.
pub fn with_timeout<T, F>(what: &str, f: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    let handle = thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(TIMEOUT) {
        Ok(v) => v,
        Err(mpsc::RecvTimeoutError::Disconnected) => match handle.join() {
            Err(p) => std::panic::resume_unwind(p),
            Ok(()) => unreachable!("the thread sends before it ends"),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what}: timed out after {TIMEOUT:?}"),
    }
}

/// Polls `cond` until it holds; fails the test after [`TIMEOUT`].
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !cond() {
        if Instant::now() >= deadline {
            panic!("timed out after {TIMEOUT:?} waiting until {what}");
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// Connects with blocking I/O whose reads and writes time out after
/// [`TIMEOUT`], so a silent server fails the test instead of hanging it.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    bound(&s);
    s
}

fn bound(s: &TcpStream) {
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.set_write_timeout(Some(TIMEOUT)).unwrap();
    s.set_nodelay(true).unwrap();
}

/// Connects with a small receive buffer, set before `connect` so the
/// window the client advertises is small from the first segment on: the
/// client of choice for filling the server's output queue.
pub fn connect_small_rcvbuf(addr: SocketAddr, bytes: usize) -> TcpStream {
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let fd: OwnedFd =
        ns::socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).expect("socket(2)");
    ns::setsockopt(&fd, sockopt::RcvBuf, &bytes).expect("setsockopt(SO_RCVBUF)");
    ns::connect(fd.as_raw_fd(), &SockaddrStorage::from(addr)).expect("connect(2)");
    let s = TcpStream::from(fd);
    bound(&s);
    s
}

/// `SO_LINGER` with a zero timeout: dropping the stream then sends RST.
pub fn set_linger_zero(s: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    ns::setsockopt(s, sockopt::Linger, &linger).expect("setsockopt(SO_LINGER)");
}

/// Writes `data` and asserts exactly the same bytes come back.
pub fn assert_echo(s: &mut TcpStream, data: &[u8]) {
    s.write_all(data).expect("write to the server");
    let got = read_n(s, data.len());
    assert!(got == data, "echo differs from what was sent");
}

/// Reads exactly `n` bytes.
pub fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut got = vec![0u8; n];
    s.read_exact(&mut got)
        .unwrap_or_else(|e| panic!("read {n} bytes back: {e}"));
    got
}

/// Half-closes, then reads until EOF and returns everything that arrived.
pub fn shutdown_and_read_all(s: &mut TcpStream) -> Vec<u8> {
    s.shutdown(Shutdown::Write).expect("shutdown(SHUT_WR)");
    let mut got = Vec::new();
    s.read_to_end(&mut got).expect("read to EOF");
    got
}

/// How the server ended a connection it would not serve.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    Eof,
    Reset,
}

/// Reads once and asserts the server closed the connection (EOF or RST)
/// without sending a single byte.
pub fn expect_closed(s: &mut TcpStream) -> Ended {
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) => Ended::Eof,
        Ok(n) => panic!("expected the connection to be closed, got {n} bytes"),
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => Ended::Reset,
        Err(e) => panic!("expected EOF or reset, got {e}"),
    }
}

/// `len` pseudo-random bytes, the same for the same `seed`.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    // xorshift64*: plenty random for payloads, and fast in debug builds.
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// One TCP socket's queues, from `/proc/net/tcp{,6}`: bytes not yet
/// acknowledged by the peer (`tx_queue`) and bytes not yet read by the
/// owning process (`rx_queue`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Queues {
    pub tx: u64,
    pub rx: u64,
}

/// The queues of the socket bound to `local` and connected to `remote`.
pub fn tcp_queues(local: SocketAddr, remote: SocketAddr) -> Option<Queues> {
    let table = if local.is_ipv4() {
        "/proc/net/tcp"
    } else {
        "/proc/net/tcp6"
    };
    let text = std::fs::read_to_string(table).ok()?;
    let port = |field: &str| u16::from_str_radix(field.rsplit(':').next()?, 16).ok();
    text.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 5 || port(f[1])? != local.port() || port(f[2])? != remote.port() {
            return None;
        }
        let (tx, rx) = f[4].split_once(':')?;
        Some(Queues {
            tx: u64::from_str_radix(tx, 16).ok()?,
            rx: u64::from_str_radix(rx, 16).ok()?,
        })
    })
}

/// Writes `data` with nonblocking writes until the socket takes no more
/// for `stall` in a row, and returns how many bytes it took. Panics if the
/// socket takes all of `data` (nothing pushed back).
pub fn push_until_stalled(s: &mut TcpStream, data: &[u8], stall: Duration) -> usize {
    s.set_nonblocking(true).unwrap();
    let mut sent = 0;
    let mut last_progress = Instant::now();
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match s.write(&data[sent..]) {
            Ok(n) => {
                sent += n;
                last_progress = Instant::now();
                assert!(
                    sent < data.len(),
                    "the server took all {} bytes without pushing back",
                    data.len()
                );
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if last_progress.elapsed() >= stall {
                    break;
                }
                assert!(Instant::now() < deadline, "writes never stalled");
                thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("write: {e}"),
        }
    }
    s.set_nonblocking(false).unwrap();
    sent
}

/// Runs `edgechat ARGS` (any subcommand) with `stdin`, feeding it `feed` if
/// given, and collects its output; kills it and fails the test if it runs
/// longer than [`TIMEOUT`].
pub fn run_edgechat(args: &[&str], stdin: Stdio, feed: Option<Vec<u8>>) -> std::process::Output {
    let child = spawn_edgechat(args, stdin);
    finish_edgechat(child, feed, args, TIMEOUT)
}

/// Starts `edgechat ARGS` (any subcommand) with `stdin`, its stdout and
/// stderr piped, for [`finish_edgechat`].
pub fn spawn_edgechat(args: &[&str], stdin: Stdio) -> Child {
    Command::new(BIN)
        .args(args)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn edgechat")
}

/// Feeds `feed` to a [`spawn_edgechat`] child if given, and collects its
/// output once it exits; kills it and fails the test if it is still
/// running after `limit`.
pub fn finish_edgechat(
    mut child: Child,
    feed: Option<Vec<u8>>,
    args: &[&str],
    limit: Duration,
) -> std::process::Output {
    if let (Some(bytes), Some(mut pipe)) = (feed, child.stdin.take()) {
        thread::spawn(move || pipe.write_all(&bytes));
    }
    let drain = |mut r: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("stdout")));
    let err = drain(Box::new(child.stderr.take().expect("stderr")));
    let Some(status) = wait_child(&mut child, limit) else {
        panic!("edgechat {args:?} did not finish within {limit:?}");
    };
    std::process::Output {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

/// Waits (at most `limit`) for `child` to exit and returns its status;
/// `None` if it is still running then, after killing and reaping it.
pub fn wait_child(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(st) = child.try_wait().expect("waitpid(2)") {
            return Some(st);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// Runs `edgechat bench --addr ADDR --json --server-pid PID ARGS` against
/// `server`; asserts it succeeded and printed one JSON line, and returns it.
pub fn bench_json(server: &Server, args: &[&str]) -> String {
    bench_json_at(server.addr(), server.pid() as u32, args)
}

/// The same against any server at `addr` whose process is `pid` (another
/// project's server, say).
pub fn bench_json_at(addr: SocketAddr, pid: u32, args: &[&str]) -> String {
    let (addr, pid) = (addr.to_string(), pid.to_string());
    let mut all = vec!["bench", "--addr", &addr, "--json", "--server-pid", &pid];
    all.extend(args);
    let out = run_edgechat(&all, Stdio::null(), None);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stdout} {stderr}", out.status);
    assert_eq!(stdout.lines().count(), 1, "one JSON line: {stdout}");
    stdout
}

/// The number after `"key":` in a one-line JSON object.
pub fn field(json: &str, key: &str) -> f64 {
    let at = json
        .find(&format!("\"{key}\":"))
        .unwrap_or_else(|| panic!("no {key} in {json}"));
    let rest = &json[at + key.len() + 3..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end]
        .parse()
        .unwrap_or_else(|_| panic!("{key} is not a number in {json}"))
}

/// The number after `key=` in a `key=value ...` line.
pub fn count(line: &str, key: &str) -> u64 {
    let field = line
        .split_whitespace()
        .find_map(|f| f.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in {line:?}"));
    field
        .parse()
        .unwrap_or_else(|_| panic!("{key} in {line:?}"))
}
