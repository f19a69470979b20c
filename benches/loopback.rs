//! End-to-end benches over loopback: one 64-byte echo round trip, plain and
//! TLS, edgechat and its peers side by side in one criterion group
//! (`echo_rtt_64B`), so the HTML report under `target/criterion/` draws them
//! on one chart.
//!
//! Every server is a child process on `127.0.0.1:0`, started from the
//! release build and read back from its `listening on tcp://ADDR` (or
//! `tls://`) line on stderr; all are killed at the end. The peers are
//! examples, which `cargo bench` does not build:
//!
//! ```text
//! cargo build --release --examples --bins
//! cargo bench --bench loopback
//! ```
//!
//! With two CPUs or more, the servers run on CPU 0 (`taskset -c 0`) and this
//! process on CPU 1, as in `scripts/bench.sh`.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

const SIZE: usize = 64;

/// A server child process and the addresses it announced; killed on drop.
struct Server {
    name: &'static str,
    child: Child,
    tcp: Option<SocketAddr>,
    tls: Option<SocketAddr>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `target/release/` (or wherever cargo put this build's `edgechat`).
fn release_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_edgechat"))
        .parent()
        .expect("the binary has a directory")
        .to_path_buf()
}

fn example(name: &str) -> PathBuf {
    let path = release_dir().join("examples").join(name);
    if !path.is_file() {
        eprintln!(
            "error: {} is missing. The loopback benches start the peers from the \
             release build; build them first:\n\n    cargo build --release --examples --bins\n",
            path.display()
        );
        std::process::exit(1);
    }
    path
}

fn two_cpus() -> bool {
    std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2)
        && Command::new("taskset")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

/// Keeps this process (the load) on CPU 1.
fn pin_self_to_cpu1() {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; the calls only read it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(1, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Starts `program args` (on CPU 0 when `pin`), and waits for its
/// `listening on` lines: one per scheme in `schemes`.
fn spawn(name: &'static str, program: &Path, args: &[&str], schemes: &[&str], pin: bool) -> Server {
    let mut cmd = if pin {
        let mut c = Command::new("taskset");
        c.arg("-c").arg("0").arg(program);
        c
    } else {
        Command::new(program)
    };
    let mut child = cmd
        .args(args)
        .current_dir(root())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{name}: cannot start {}: {e}", program.display()));
    let mut lines = BufReader::new(child.stderr.take().expect("piped stderr"));
    let mut server = Server {
        name,
        child,
        tcp: None,
        tls: None,
    };
    let mut seen = String::new();
    while schemes.iter().any(|s| match *s {
        "tcp" => server.tcp.is_none(),
        _ => server.tls.is_none(),
    }) {
        let mut line = String::new();
        if lines.read_line(&mut line).unwrap_or(0) == 0 {
            panic!("{name} exited before listening; its stderr:\n{seen}");
        }
        seen.push_str(&line);
        for scheme in schemes {
            let tag = format!("listening on {scheme}://");
            if let Some(at) = line.find(&tag) {
                let addr = line[at + tag.len()..].trim().parse().unwrap_or_else(|e| {
                    panic!("{name}: bad address in {line:?}: {e}");
                });
                match *scheme {
                    "tcp" => server.tcp = Some(addr),
                    _ => server.tls = Some(addr),
                }
            }
        }
    }
    // Whatever it logs later must not fill the pipe and stop it.
    std::thread::spawn(move || io::copy(&mut lines, &mut io::sink()));
    server
}

/// One connection, plain or TLS, that echoes back what it is sent.
enum Client {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Client {
    fn connect(addr: SocketAddr, tls: Option<&Arc<ClientConfig>>) -> Client {
        let sock = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        sock.set_nodelay(true).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut client = match tls {
            None => Client::Plain(sock),
            Some(config) => {
                let name = ServerName::try_from("localhost").unwrap();
                let conn = ClientConnection::new(config.clone(), name).unwrap();
                Client::Tls(Box::new(StreamOwned::new(conn, sock)))
            }
        };
        // The handshake (for TLS) and a first round trip, outside the timing.
        client.round_trip(&[b'w'; SIZE], &mut [0; SIZE]);
        client
    }

    fn round_trip(&mut self, msg: &[u8], back: &mut [u8]) {
        let io: &mut dyn ReadWrite = match self {
            Client::Plain(s) => s,
            Client::Tls(s) => s.as_mut(),
        };
        io.write_all(msg).unwrap();
        io.flush().unwrap();
        io.read_exact(back).unwrap();
        assert_eq!(msg, back, "echo mismatch");
    }
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

fn echo_round_trip(c: &mut Criterion) {
    let pin = two_cpus();
    // Every binary is checked before any server starts.
    let edgechat = PathBuf::from(env!("CARGO_BIN_EXE_edgechat"));
    let tokio = example("peer_tokio_echo");
    let mio = example("peer_mio_echo");
    let blocking = example("baseline_blocking_echo");
    let tokio_tls = example("peer_tokio_rustls_echo");
    let cert = root().join("certs/server.crt");
    let key = root().join("certs/server.key");
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());

    let servers = [
        spawn(
            "edgechat",
            &edgechat,
            &[
                "serve",
                "--mode",
                "echo",
                "--tcp",
                "127.0.0.1:0",
                "--tls",
                "127.0.0.1:0",
                "--cert",
                cert,
                "--key",
                key,
            ],
            &["tcp", "tls"],
            pin,
        ),
        spawn("tokio", &tokio, &["127.0.0.1:0"], &["tcp"], pin),
        spawn("mio", &mio, &["127.0.0.1:0"], &["tcp"], pin),
        spawn("blocking", &blocking, &["127.0.0.1:0"], &["tcp"], pin),
        spawn(
            "tokio-rustls",
            &tokio_tls,
            &["127.0.0.1:0", cert, key],
            &["tls"],
            pin,
        ),
    ];
    if pin {
        pin_self_to_cpu1();
    }
    let tls = edgechat::transport::client::config(&root().join("certs/ca.crt"), None)
        .expect("certs/ca.crt");

    let mut g = c.benchmark_group("echo_rtt_64B");
    g.throughput(Throughput::Elements(1));
    let msg = [b'e'; SIZE];
    let mut back = [0u8; SIZE];
    for (kind, config) in [("plain", None), ("tls", Some(&tls))] {
        for server in &servers {
            let addr = if config.is_some() {
                server.tls
            } else {
                server.tcp
            };
            let Some(addr) = addr else { continue };
            let mut client = Client::connect(addr, config);
            g.bench_function(BenchmarkId::new(kind, server.name), |b| {
                b.iter(|| client.round_trip(&msg, &mut back))
            });
        }
    }
    g.finish();
    drop(servers);
}

criterion_group!(benches, echo_round_trip);
criterion_main!(benches);
