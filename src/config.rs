//! The command line (`clap` derive) and the validated [`Config`] that
//! `serve` runs with.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

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
    /// Generate load against an echo server and report what it sustained.
    #[command(after_long_help = crate::bench::CHAOS_HELP)]
    Bench(crate::bench::BenchArgs),
    /// Stop the daemon that holds a pidfile: SIGTERM, then wait for it.
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
    #[arg(long, value_enum, default_value_t = Mode::Chat)]
    pub mode: Mode,
    /// TCP listener address (repeatable), e.g. 127.0.0.1:7000 or [::1]:7000.
    /// With no --tcp, --tls or --udp at all, listens on 127.0.0.1:7000 and
    /// TLS on 127.0.0.1:7443.
    #[arg(long = "tcp", value_name = "ADDR")]
    pub tcp: Vec<SocketAddr>,
    /// TLS listener address (repeatable): the same service inside TLS.
    #[arg(long = "tls", value_name = "ADDR")]
    pub tls: Vec<SocketAddr>,
    /// Server certificate chain (PEM), for TLS listeners.
    #[arg(long, value_name = "PEM", default_value = "certs/server.crt")]
    pub cert: PathBuf,
    /// Server private key (PEM), for TLS listeners.
    #[arg(long, value_name = "PEM", default_value = "certs/server.key")]
    pub key: PathBuf,
    /// CA certificates (PEM): TLS clients must present a certificate signed
    /// by one of them, and its name becomes their reserved nick.
    #[arg(long, value_name = "PEM")]
    pub client_ca: Option<PathBuf>,
    /// Seconds a TLS client may take to finish its handshake.
    #[arg(long, default_value_t = 10)]
    pub handshake_timeout: u64,
    /// UDP echo address (repeatable).
    #[arg(long = "udp", value_name = "ADDR")]
    pub udp: Vec<SocketAddr>,
    /// Most clients served at once; lowered to fit RLIMIT_NOFILE if needed.
    #[arg(long, default_value_t = 10_000)]
    pub max_clients: usize,
    /// Bytes the server may owe one client before it stops reading from it.
    #[arg(long, default_value_t = 1 << 20)]
    pub max_output: usize,
    /// Longest chat line in bytes, without the `\n` (and a `\r` before it).
    #[arg(long, default_value_t = 4096)]
    pub max_line: usize,
    /// Seconds of silence before a chat client gets `PING` (0 = never).
    #[arg(long, default_value_t = 300)]
    pub idle_timeout: u64,
    /// Seconds an unfinished chat line may wait for its `\n` (0 = forever).
    #[arg(long, default_value_t = 60)]
    pub line_timeout: u64,
    /// Seconds a closing connection may take to receive what it is owed.
    #[arg(long, default_value_t = 30)]
    pub linger_timeout: u64,
    /// Seconds a graceful shutdown may spend flushing before it gives up.
    #[arg(long, default_value_t = 5)]
    pub shutdown_timeout: u64,
    /// listen(2) backlog.
    #[arg(long, default_value_t = 1024)]
    pub backlog: i32,
    /// Set SO_REUSEPORT so several processes can share a port.
    #[arg(long)]
    pub reuse_port: bool,
    /// Log verbosity.
    #[arg(long, value_enum, default_value_t = LogLevel::Info)]
    pub log_level: LogLevel,
    /// Run as a daemon (daemon(7): double fork, no terminal, cwd `/`);
    /// needs --pidfile. The command returns once the daemon is serving.
    #[arg(long, requires = "pidfile")]
    pub daemon: bool,
    /// Stay in the foreground, attached to the terminal (the default).
    #[arg(long, conflicts_with = "daemon")]
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
    /// Certificate, key and client CA (made absolute by
    /// [`Config::absolutize`] before a daemon changes directory).
    pub tls_files: crate::transport::config::TlsFiles,
    pub handshake_timeout: Duration,
    pub max_clients: usize,
    pub max_output: usize,
    pub max_line: usize,
    pub idle_timeout: Option<Duration>,
    pub line_timeout: Option<Duration>,
    pub linger_timeout: Duration,
    pub shutdown_timeout: Duration,
    pub backlog: i32,
    pub reuse_port: bool,
    /// Detach as a daemon before binding.
    pub daemon: bool,
    pub pidfile: Option<PathBuf>,
    pub log_file: Option<PathBuf>,
}

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
        let mut tcp = a.tcp.clone();
        let mut tls = a.tls.clone();
        if tcp.is_empty() && tls.is_empty() && a.udp.is_empty() {
            tcp.push(default_addr(DEFAULT_TCP)?);
            tls.push(default_addr(DEFAULT_TLS)?);
        }
        if a.handshake_timeout == 0 {
            return Err(Error::Config(
                "--handshake-timeout must be at least 1".into(),
            ));
        }
        let tls_files = crate::transport::config::TlsFiles {
            cert: a.cert.clone(),
            key: a.key.clone(),
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
        if a.max_line == 0 {
            return Err(Error::Config("--max-line must be at least 1".into()));
        }
        let secs = |s: u64| Some(Duration::from_secs(s)).filter(|d| !d.is_zero());
        Ok(Config {
            mode: a.mode,
            tcp,
            tls,
            udp: a.udp.clone(),
            tls_files,
            handshake_timeout: Duration::from_secs(a.handshake_timeout),
            max_clients: a.max_clients,
            max_output: a.max_output,
            max_line: a.max_line,
            idle_timeout: secs(a.idle_timeout),
            line_timeout: secs(a.line_timeout),
            linger_timeout: Duration::from_secs(a.linger_timeout),
            shutdown_timeout: Duration::from_secs(a.shutdown_timeout),
            backlog: a.backlog,
            reuse_port: a.reuse_port,
            daemon: a.daemon,
            pidfile: a.pidfile.clone(),
            log_file: a.log_file.clone(),
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

/// `cwd/path` unless `path` is already absolute.
fn absolute(cwd: &Path, path: &mut PathBuf) {
    if path.is_relative() {
        *path = cwd.join(&*path);
    }
}
