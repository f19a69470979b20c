//! The command line (`clap` derive) and the validated [`Config`] that
//! `serve` runs with.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::addr::Target;
use crate::error::{Error, Result};

/// edgechat: a single-threaded, edge-triggered epoll echo and chat server.
#[derive(Debug, Parser)]
#[command(name = "edgechat", version, about)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands of `edgechat`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Connect to a server: stdin lines go out, what arrives goes to stdout.
    Client(crate::client::ClientArgs),
    /// Generate load against a server (echo; chat for --mode chat and
    /// chaos) and report what it sustained.
    #[command(after_long_help = crate::bench::CHAOS_HELP)]
    Bench(crate::bench::BenchArgs),
    /// Stop the daemon that holds a pidfile: SIGTERM, then wait for it.
    #[command(after_help = crate::stop::EXIT_HELP)]
    Stop(crate::stop::StopArgs),
}

/// What a TCP connection is served with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Clients talk to each other in rooms (PROTOCOL.md §2).
    Chat,
    /// RFC 862: every byte is sent back.
    Echo,
}

/// How much the server logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
}

impl From<LogLevel> for log::LevelFilter {
    fn from(l: LogLevel) -> Self {
        match l {
            LogLevel::Error => log::LevelFilter::Error,
            LogLevel::Warn => log::LevelFilter::Warn,
            LogLevel::Info => log::LevelFilter::Info,
            LogLevel::Debug => log::LevelFilter::Debug,
        }
    }
}

/// `edgechat serve` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Service on TCP connections.
    #[arg(long, value_name = "MODE", value_enum, default_value_t = Mode::Chat)]
    pub mode: Mode,
    /// TCP listener address (repeatable): 127.0.0.1:7000, [::1]:7000, or a
    /// host name, which listens on every address it resolves to (port 0:
    /// a free port). With no --tcp, --tls or --udp at all: 127.0.0.1:7000,
    /// and TLS on 127.0.0.1:7443 if the certificate is found (else a
    /// warning, and plain only).
    #[arg(long = "tcp", value_name = "ADDR", value_parser = crate::addr::listen)]
    pub tcp: Vec<Target>,
    /// TLS listener address (repeatable): the same service inside TLS.
    #[arg(long = "tls", value_name = "ADDR", value_parser = crate::addr::listen)]
    pub tls: Vec<Target>,
    /// Server certificate chain, for TLS listeners [default:
    /// certs/server.crt, relative to the working directory].
    #[arg(long, value_name = "PEM")]
    pub cert: Option<PathBuf>,
    /// Server private key, for TLS listeners [default: certs/server.key].
    #[arg(long, value_name = "PEM")]
    pub key: Option<PathBuf>,
    /// CA certificates (PEM): TLS clients must present a certificate signed
    /// by one of them, and its name becomes their reserved nick.
    #[arg(long, value_name = "PEM")]
    pub client_ca: Option<PathBuf>,
    /// Seconds a TLS client may take to finish its handshake; then it is
    /// closed.
    #[arg(long, value_name = "S", default_value_t = 10)]
    pub handshake_timeout: u64,
    /// UDP echo address (repeatable).
    #[arg(long = "udp", value_name = "ADDR", value_parser = crate::addr::listen)]
    pub udp: Vec<Target>,
    /// UDP datagrams per second echoed to one source (an IPv4 address or an
    /// IPv6 /64), with a burst as large; the rest get no answer (0 = no limit).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_UDP_RATE)]
    pub udp_rate: u32,
    /// Longest UDP datagram echoed, in bytes; a longer one is dropped and
    /// logged. At most 65527 (the largest UDP payload over IPv6).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_DATAGRAM)]
    pub max_datagram: usize,
    /// Most clients served at once; lowered to fit RLIMIT_NOFILE if needed.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub max_clients: usize,
    /// Most connections at once from one source address (an IPv6 source
    /// counts by its /64). Without the flag: 64 for every source but
    /// loopback, which is not limited; a value given applies to every
    /// source, loopback too; 0 = no limit.
    #[arg(long, value_name = "N")]
    pub max_per_ip: Option<usize>,
    /// New connections per second from one source, with a burst of as many
    /// (an IPv6 source counts by its /64). Without the flag: 20 for every
    /// source but loopback; a value given (or --max-per-ip) applies to
    /// loopback too; 0 = no limit.
    #[arg(long, value_name = "N")]
    pub max_conn_rate: Option<u32>,
    /// Serve TLS only: refuse to start with a plain `--tcp` or `--udp`
    /// listener; without listener flags, listen on 127.0.0.1:7443 alone.
    #[arg(long)]
    pub tls_only: bool,
    /// Bytes the server may owe one client (each queued line counted with
    /// what it costs in memory) before echo stops reading from it, or chat
    /// cuts it as a slow consumer.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20)]
    pub max_output: usize,
    /// Kernel send buffer per client in bytes (`SO_SNDBUF`; the kernel
    /// doubles it). 0 = the kernel's autotuning, which grows it up to
    /// `net.ipv4.tcp_wmem`'s maximum for a client that stops reading.
    #[arg(long, value_name = "BYTES", default_value_t = 0)]
    pub sndbuf: usize,
    /// Longest chat line in bytes, without the `\n` (and a `\r` before it).
    #[arg(long, value_name = "BYTES", default_value_t = 4096)]
    pub max_line: usize,
    /// Chat keepalive: a client silent for S seconds gets `PING`; silent
    /// for S more, it gets `ERR idle-timeout` and is closed (0 = never).
    #[arg(long, value_name = "S", default_value_t = 300)]
    pub idle_timeout: u64,
    /// Chat flood control: lines per second one client may send on average,
    /// with a burst of as many; a client over it is not read from (nothing
    /// is dropped) until it is back under. 0 = no limit.
    #[arg(long, value_name = "LINES", default_value_t = 0)]
    pub max_rate: u32,
    /// Seconds an unfinished chat line may wait for its `\n`; then it is
    /// dropped with `ERR line-timeout` and the client stays (0 = forever).
    #[arg(long, value_name = "S", default_value_t = 60)]
    pub line_timeout: u64,
    /// Seconds a closing connection may take to receive what it is owed;
    /// then it is closed with the rest unsent.
    #[arg(long, value_name = "S", default_value_t = 30)]
    pub linger_timeout: u64,
    /// Seconds a graceful shutdown (SIGTERM, SIGINT) may spend sending
    /// clients what they are owed; then the rest are closed and it exits.
    #[arg(long, value_name = "S", default_value_t = 5)]
    pub shutdown_timeout: u64,
    /// listen(2) backlog: connections the kernel completes before the
    /// server accepts them (capped by net.core.somaxconn); past it, a new
    /// client's SYN is dropped and it retries a second later.
    #[arg(long, value_name = "N", default_value_t = 4096)]
    pub backlog: i32,
    /// Set SO_REUSEPORT so several processes can share a port.
    #[arg(long)]
    pub reuse_port: bool,
    /// Log verbosity.
    #[arg(long, value_name = "LEVEL", value_enum, default_value_t = LogLevel::Info)]
    pub log_level: LogLevel,
    /// Run as a daemon (daemon(7): double fork, no terminal, cwd `/`);
    /// needs --pidfile. The command returns once the daemon is serving.
    #[arg(long, requires = "pidfile")]
    pub daemon: bool,
    /// Accepted for compatibility: the foreground is the default.
    #[arg(long, hide = true, conflicts_with = "daemon")]
    pub foreground: bool,
    /// Pidfile: created, locked (flock) while the server runs, removed at exit.
    #[arg(long, value_name = "PATH")]
    pub pidfile: Option<PathBuf>,
    /// Append log lines to this file instead of stderr; SIGHUP reopens it.
    /// A daemon without --log discards its log (stderr is /dev/null).
    #[arg(long = "log", value_name = "PATH")]
    pub log_file: Option<PathBuf>,
}

/// A validated server configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub mode: Mode,
    pub tcp: Vec<SocketAddr>,
    pub tls: Vec<SocketAddr>,
    pub udp: Vec<SocketAddr>,
    /// Datagrams per second per UDP source; 0 = no limit.
    pub udp_rate: u32,
    /// The UDP receive buffer: longer datagrams are not echoed.
    pub max_datagram: usize,
    /// Certificate, key and client CA (made absolute by
    /// [`Config::absolutize`] before a daemon changes directory).
    pub tls_files: crate::transport::config::TlsFiles,
    pub handshake_timeout: Duration,
    pub max_clients: usize,
    /// Most connections from one source (0 = no limit).
    pub max_per_ip: usize,
    /// New connections per second per source (0 = no limit).
    pub max_conn_rate: u32,
    /// `max_per_ip` and `max_conn_rate` apply to loopback sources too.
    pub per_ip_loopback: bool,
    pub max_output: usize,
    /// `SO_SNDBUF` for accepted sockets (`None`: the kernel's autotuning).
    pub sndbuf: Option<usize>,
    pub max_line: usize,
    pub idle_timeout: Option<Duration>,
    pub line_timeout: Option<Duration>,
    /// Chat lines per second per client (`None`: no limit).
    pub max_rate: Option<u32>,
    pub linger_timeout: Duration,
    pub shutdown_timeout: Duration,
    pub backlog: i32,
    pub reuse_port: bool,
    /// Detach as a daemon before binding.
    pub daemon: bool,
    pub pidfile: Option<PathBuf>,
    pub log_file: Option<PathBuf>,
    /// Why the default TLS listener was left out (no `--cert` given and
    /// none found), to be logged as a warning at start.
    pub tls_skipped: Option<String>,
}

/// `--cert` and `--key` without the flags, relative to the working
/// directory.
pub const DEFAULT_CERT: &str = "certs/server.crt";
pub const DEFAULT_KEY: &str = "certs/server.key";

/// `--max-per-ip` without the flag, for sources other than loopback.
pub const DEFAULT_MAX_PER_IP: usize = 64;
/// `--max-conn-rate` without the flag, for sources other than loopback: a
/// person (or a NAT of people) opens a few connections a minute; a host
/// churning connections to make a big room hear `JOIN` and `QUIT` opens
/// thousands a second.
pub const DEFAULT_MAX_CONN_RATE: u32 = 20;
/// `--udp-rate`: RFC 862 echo is a diagnostic (a probe, a latency test), a
/// few datagrams a second; 1000 a second, with a burst of 1000, leaves any
/// such use unthrottled while it bounds what one forged source can have
/// reflected at it, and what a loop with another echo server (on a port
/// not refused outright) can cost: a loop faster than the rate breaks
/// once its burst is spent.
pub const DEFAULT_UDP_RATE: u32 = 1000;
/// Above this a source is no longer limited in any useful sense.
pub const MAX_UDP_RATE: u32 = 1_000_000;
/// `--max-datagram`: the largest UDP payload over IPv4 (65535 − 20 − 8).
pub const DEFAULT_MAX_DATAGRAM: usize = 65_507;
/// The largest UDP payload over IPv6 without jumbograms (65535 − 8).
pub const MAX_DATAGRAM: usize = 65_527;

/// The listeners used when none is given.
pub const DEFAULT_TCP: &str = "127.0.0.1:7000";
pub const DEFAULT_TLS: &str = "127.0.0.1:7443";

fn default_addr(s: &str) -> Result<SocketAddr> {
    s.parse()
        .map_err(|_| Error::Config(format!("default address {s}")))
}

impl Config {
    /// Checks the flags and fills in defaults.
    pub fn from_args(a: &ServeArgs) -> Result<Config> {
        let mut tcp = addrs(&a.tcp);
        let mut tls = addrs(&a.tls);
        let udp = addrs(&a.udp);
        if a.tls_only {
            if let Some(addr) = a.tcp.first() {
                return Err(Error::Config(format!(
                    "--tls-only refuses the plain listener --tcp {addr}"
                )));
            }
            if let Some(addr) = a.udp.first() {
                return Err(Error::Config(format!(
                    "--tls-only refuses the plain listener --udp {addr}"
                )));
            }
        }
        let cert = a.cert.clone().unwrap_or_else(|| DEFAULT_CERT.into());
        let key = a.key.clone().unwrap_or_else(|| DEFAULT_KEY.into());
        let mut tls_skipped = None;
        if tcp.is_empty() && tls.is_empty() && udp.is_empty() {
            if !a.tls_only {
                tcp.push(default_addr(DEFAULT_TCP)?);
            }
            // The default TLS listener only where its certificate is: a
            // server started outside the checkout (no certs/) still serves
            // plain TCP. Asked for (--tls-only, --cert, --key), TLS fails
            // at start naming the file instead.
            let asked = a.tls_only || a.cert.is_some() || a.key.is_some();
            match missing(&[&cert, &key]) {
                Some(file) if !asked => {
                    tls_skipped = Some(format!(
                        "no TLS listener: {} not found; to serve TLS on {DEFAULT_TLS}, \
                         give --cert PEM --key PEM (a development pair is in the source \
                         checkout's certs/)",
                        file.display()
                    ));
                }
                _ => tls.push(default_addr(DEFAULT_TLS)?),
            }
        }
        if a.handshake_timeout == 0 {
            return Err(Error::Config(
                "--handshake-timeout must be at least 1".into(),
            ));
        }
        let tls_files = crate::transport::config::TlsFiles {
            cert,
            key,
            client_ca: a.client_ca.clone(),
        };
        if a.max_clients == 0 {
            return Err(Error::Config("--max-clients must be at least 1".into()));
        }
        if a.max_output < 1024 {
            return Err(Error::Config(
                "--max-output must be at least 1024 bytes".into(),
            ));
        }
        if a.daemon && a.pidfile.is_none() {
            return Err(Error::Config("--daemon needs --pidfile PATH".into()));
        }
        if !(1..=MAX_DATAGRAM).contains(&a.max_datagram) {
            return Err(Error::Config(format!(
                "--max-datagram must be 1 to {MAX_DATAGRAM} bytes, not {}",
                a.max_datagram
            )));
        }
        if a.udp_rate > MAX_UDP_RATE {
            return Err(Error::Config(format!(
                "--udp-rate must be at most {MAX_UDP_RATE} (0 = no limit), not {}",
                a.udp_rate
            )));
        }
        if a.max_line == 0 {
            return Err(Error::Config("--max-line must be at least 1".into()));
        }
        let secs = |s: u64| Some(Duration::from_secs(s)).filter(|d| !d.is_zero());
        Ok(Config {
            mode: a.mode,
            tcp,
            tls,
            udp,
            udp_rate: a.udp_rate,
            max_datagram: a.max_datagram,
            tls_files,
            handshake_timeout: Duration::from_secs(a.handshake_timeout),
            max_clients: a.max_clients,
            max_per_ip: a.max_per_ip.unwrap_or(DEFAULT_MAX_PER_IP),
            max_conn_rate: a.max_conn_rate.unwrap_or(DEFAULT_MAX_CONN_RATE),
            per_ip_loopback: a.max_per_ip.is_some() || a.max_conn_rate.is_some(),
            max_output: a.max_output,
            sndbuf: Some(a.sndbuf).filter(|&b| b > 0),
            max_line: a.max_line,
            idle_timeout: secs(a.idle_timeout),
            line_timeout: secs(a.line_timeout),
            max_rate: Some(a.max_rate).filter(|&r| r > 0),
            linger_timeout: Duration::from_secs(a.linger_timeout),
            shutdown_timeout: Duration::from_secs(a.shutdown_timeout),
            backlog: a.backlog,
            reuse_port: a.reuse_port,
            daemon: a.daemon,
            pidfile: a.pidfile.clone(),
            log_file: a.log_file.clone(),
            tls_skipped,
        })
    }

    /// Makes every path in the configuration absolute, against the current
    /// directory, so they still name the same files after a daemon's
    /// `chdir("/")`. A new path field needs one more line here.
    pub fn absolutize(&mut self) -> Result<()> {
        let cwd = std::env::current_dir().map_err(|source| Error::Sys {
            call: "getcwd",
            source,
        })?;
        let files = &mut self.tls_files;
        for path in [&mut self.pidfile, &mut self.log_file, &mut files.client_ca]
            .into_iter()
            .flatten()
            .chain([&mut files.cert, &mut files.key])
        {
            absolute(&cwd, path);
        }
        Ok(())
    }
}

/// Every address the listener flags resolved to, each once.
fn addrs(targets: &[Target]) -> Vec<SocketAddr> {
    let mut all: Vec<SocketAddr> = Vec::new();
    for a in targets.iter().flat_map(|t| &t.addrs) {
        if !all.contains(a) {
            all.push(*a);
        }
    }
    all
}

/// The first of `paths` that does not exist.
fn missing<'a>(paths: &[&'a PathBuf]) -> Option<&'a PathBuf> {
    paths
        .iter()
        .find(|p| matches!(p.try_exists(), Ok(false)))
        .copied()
}

/// `cwd/path` unless `path` is already absolute.
fn absolute(cwd: &Path, path: &mut PathBuf) {
    if path.is_relative() {
        *path = cwd.join(&*path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> Result<Config> {
        let argv = ["edgechat", "serve"].iter().chain(args);
        match Cli::try_parse_from(argv) {
            Ok(Cli {
                command: Command::Serve(a),
                ..
            }) => Config::from_args(&a),
            other => panic!("not a serve command: {other:?}"),
        }
    }

    #[test]
    fn absolutize_resolves_every_file_path_against_the_cwd() {
        let mut c = config(&[
            "--pidfile",
            "run/ec.pid",
            "--log",
            "ec.log",
            "--cert",
            "tls/s.crt",
            "--key",
            "/etc/ec/s.key",
            "--client-ca",
            "ca.crt",
        ])
        .unwrap();
        c.absolutize().unwrap();
        let cwd = std::env::current_dir().unwrap();
        let f = &c.tls_files;
        assert_eq!(c.pidfile, Some(cwd.join("run/ec.pid")));
        assert_eq!(c.log_file, Some(cwd.join("ec.log")));
        assert_eq!(f.cert, cwd.join("tls/s.crt"));
        assert_eq!(f.key, PathBuf::from("/etc/ec/s.key"), "already absolute");
        assert_eq!(f.client_ca, Some(cwd.join("ca.crt")));
    }

    #[test]
    fn tls_only_listens_on_the_tls_default_alone() {
        let c = config(&["--tls-only"]).unwrap();
        assert!(c.tcp.is_empty() && c.udp.is_empty());
        assert_eq!(c.tls, vec![default_addr(DEFAULT_TLS).unwrap()]);
        let c = config(&[]).unwrap();
        assert_eq!(c.tcp, vec![default_addr(DEFAULT_TCP).unwrap()]);
    }

    #[test]
    fn no_listener_flag_means_plain_7000_and_tls_7443() {
        let addr = |s: &str| s.parse::<SocketAddr>().unwrap();
        let c = config(&[]).unwrap();
        assert_eq!(c.tcp, vec![addr("127.0.0.1:7000")]);
        assert_eq!(c.tls, vec![addr("127.0.0.1:7443")]);
        assert!(c.udp.is_empty());
        // Any listener flag replaces both defaults.
        let c = config(&["--udp", "127.0.0.1:9"]).unwrap();
        assert!(c.tcp.is_empty() && c.tls.is_empty());
        let c = config(&["--tls", "[::1]:9"]).unwrap();
        assert_eq!((c.tcp.len(), c.tls.len()), (0, 1));
    }

    #[test]
    fn tls_only_refuses_plain_listeners() {
        for flag in ["--tcp", "--udp"] {
            let e = config(&["--tls-only", flag, "127.0.0.1:1"]).unwrap_err();
            let want = format!("--tls-only refuses the plain listener {flag} 127.0.0.1:1");
            assert!(e.to_string().contains(&want), "{e}");
        }
    }

    #[test]
    fn max_per_ip_default_spares_loopback_and_a_value_does_not() {
        let c = config(&[]).unwrap();
        assert_eq!(
            (c.max_per_ip, c.per_ip_loopback),
            (DEFAULT_MAX_PER_IP, false)
        );
        assert_eq!(c.max_conn_rate, DEFAULT_MAX_CONN_RATE);
        let c = config(&["--max-per-ip", "3"]).unwrap();
        assert_eq!((c.max_per_ip, c.per_ip_loopback), (3, true));
        let c = config(&["--max-conn-rate", "7"]).unwrap();
        assert_eq!((c.max_conn_rate, c.per_ip_loopback), (7, true));
    }
}
