//! `edgechat client` on a terminal, over a real pseudo-terminal (`openpty`):
//! the line being typed is drawn again under every line that arrives,
//! Enter sends it, Ctrl-D or /quit leaves, what a server sends cannot drive the
//! terminal, and the terminal's settings come back on every way out
//! (the end, Ctrl-C, SIGTERM) and while the client is stopped by Ctrl-Z.
//! With stdin on a terminal but stdout on a pipe, the client stays a pipe.

mod common;

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Instant;

use nix::pty::{openpty, Winsize};
use nix::sys::signal::{kill, Signal};
use nix::sys::termios::{tcgetattr, LocalFlags, Termios};
use nix::unistd::Pid;

use common::{connect, wait_child, wait_until, Server, BIN, TIMEOUT};

/// A pseudo-terminal: the test holds the master side (the keyboard and the
/// screen) and the client gets the slave side as its terminal.
struct Pty {
    keyboard: File,
    slave: OwnedFd,
    /// Everything the client has written to the terminal so far.
    screen: Arc<Mutex<Vec<u8>>>,
}

impl Pty {
    fn open() -> Pty {
        let size = Winsize {
            ws_row: 24,
            ws_col: 80,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = openpty(&size, None).expect("openpty");
        let keyboard = File::from(pty.master);
        let mut reader = keyboard.try_clone().expect("dup the master");
        let screen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&screen);
        // Drains the screen for the test's whole life, so the client never
        // blocks on a full terminal.
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Pty {
            keyboard,
            slave: pty.slave,
            screen,
        }
    }

    /// Starts `edgechat client ARGS` with this terminal as its controlling
    /// terminal, on stdin and stderr, and on stdout too unless `stdout` is
    /// given.
    fn spawn(&self, args: &[&str], stdout: Option<Stdio>) -> Child {
        let fd = |p: &Pty| Stdio::from(p.slave.try_clone().expect("dup the slave"));
        let mut cmd = Command::new(BIN);
        cmd.arg("client").args(args);
        cmd.stdin(fd(self))
            .stdout(stdout.unwrap_or_else(|| fd(self)))
            .stderr(fd(self));
        // SAFETY: between fork and exec the closure calls only setsid(2)
        // and ioctl(2), both async-signal-safe, and allocates nothing.
        unsafe {
            cmd.pre_exec(|| {
                // A session of its own, with the pty as its controlling
                // terminal: Ctrl-C and Ctrl-Z then send it signals.
                if libc::setsid() == -1 || libc::ioctl(0, libc::TIOCSCTTY, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        cmd.spawn().expect("spawn edgechat client")
    }

    fn settings(&self) -> Termios {
        tcgetattr(&self.slave).expect("tcgetattr")
    }

    fn type_keys(&mut self, keys: &[u8]) {
        self.keyboard.write_all(keys).expect("type on the terminal");
    }

    /// The screen so far, with the terminal's `ONLCR` undone (it turns
    /// every `\n` the client writes into `\r\n`, and the client already
    /// writes `\r\n`).
    fn text(&self) -> String {
        let raw = self.screen.lock().unwrap().clone();
        String::from_utf8_lossy(&raw).replace("\r\r\n", "\r\n")
    }

    /// Waits until the screen shows `want`, after `from` (a length of
    /// [`Pty::text`]); returns the length of the text up to its end.
    fn wait_for(&self, from: usize, want: &str) -> usize {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let text = self.text();
            if let Some(i) = text.get(from..).and_then(|t| t.find(want)) {
                return from + i + want.len();
            }
            assert!(
                Instant::now() < deadline,
                "the screen never showed {want:?}; it shows {:?}",
                &text[from.min(text.len())..]
            );
            thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

/// Waits (bounded) for the client to exit.
fn wait_exit(child: &mut Child, pty: &Pty) -> ExitStatus {
    match wait_child(child, TIMEOUT) {
        Some(st) => st,
        None => panic!("the client did not exit; the screen: {:?}", pty.text()),
    }
}

/// A server (`--mode MODE`), and a client of it on a new terminal, in raw
/// mode: the server, the terminal, its settings before the client started,
/// and the client.
fn client_on_tty(mode: &str) -> (Server, Pty, Termios, Child) {
    let server = Server::start_mode(mode, &["--tcp", "127.0.0.1:0"]);
    let pty = Pty::open();
    let before = pty.settings();
    let client = pty.spawn(&[&server.addr().to_string()], None);
    wait_raw(&pty);
    (server, pty, before, client)
}

/// Waits for the client to exit, and asserts it exited 0 and put the
/// terminal's settings back as they were `before` it started.
fn assert_clean_exit(client: &mut Child, pty: &Pty, before: &Termios) {
    let status = wait_exit(client, pty);
    assert!(status.success(), "{status}; the screen: {:?}", pty.text());
    assert_eq!(
        &pty.settings(),
        before,
        "the terminal settings are restored"
    );
}

/// Waits until the terminal is in the client's raw mode: no line editing
/// and no echo by the kernel, and Ctrl-C still a signal.
fn wait_raw(pty: &Pty) {
    wait_until("the terminal is in raw mode", || {
        let flags = pty.settings().local_flags;
        !flags.intersects(LocalFlags::ICANON | LocalFlags::ECHO) && flags.contains(LocalFlags::ISIG)
    });
}

/// Reads one line from a chat connection.
fn line(r: &mut BufReader<TcpStream>) -> String {
    let mut s = String::new();
    r.read_line(&mut s).expect("read a line");
    s
}

#[test]
fn a_line_that_arrives_never_splits_the_line_being_typed() {
    let (server, mut pty, before, mut client) = client_on_tty("chat");
    let at = pty.wait_for(0, " lobby\r\n");
    let text = pty.text();
    let me = text[..at].rsplit("HELLO ").next().unwrap();
    let me = me.split(' ').next().unwrap().to_string();

    pty.type_keys(b"hel");
    let at = pty.wait_for(at, "hel");

    let other = connect(server.addr());
    let mut other = BufReader::new(other);
    let hello = line(&mut other);
    let nick = hello
        .split(' ')
        .nth(1)
        .expect("HELLO nick room")
        .to_string();
    // Its JOIN prints above the typed "hel", which is drawn again below.
    let at = pty.wait_for(at, &format!("\r\x1b[KJOIN {nick}\r\n\r\x1b[Khel"));
    other.get_mut().write_all(b"hi there\n").unwrap();
    let at = pty.wait_for(at, &format!("\r\x1b[KMSG {nick} hi there\r\n\r\x1b[Khel"));

    // Finishing the line sends it whole.
    pty.type_keys(b"lo\r");
    pty.wait_for(at, "lo\r\n");
    assert_eq!(line(&mut other), format!("MSG {me} hello\n"));

    // Ctrl-D on the empty line: half-close, then exit 0 when the server
    // has closed, the terminal as it was.
    pty.type_keys(b"\x04");
    assert_clean_exit(&mut client, &pty, &before);
}

#[test]
fn slash_quit_leaves_cleanly() {
    let (_server, mut pty, before, mut client) = client_on_tty("chat");
    let at = pty.wait_for(0, " lobby\r\n");
    pty.type_keys(b"/quit bye\r");
    pty.wait_for(at, "/quit bye\r\n\r\x1b[KBYE\r\n");
    assert_clean_exit(&mut client, &pty, &before);
}

#[test]
fn what_a_server_sends_cannot_drive_the_terminal() {
    // A hostile peer: a title change (OSC), clear-screen (CSI), a bell, an
    // 8-bit CSI, a C1 CSI in UTF-8, then a line without its newline.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr: SocketAddr = listener.local_addr().unwrap();
    let peer = thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        s.write_all(b"\x1b]0;pwned\x07\x1b[2Jred\x9b\xc2\x9b1m\tend\r\nunfinished")
            .unwrap();
    }); // closes the connection
    let pty = Pty::open();
    let before = pty.settings();
    let mut client = pty.spawn(&[&addr.to_string()], None);
    peer.join().unwrap();
    assert_clean_exit(&mut client, &pty, &before);
    pty.wait_for(0, "unfinished\r\n"); // the screen may lag the exit
    assert_eq!(
        pty.text(),
        "\r\x1b[K?]0;pwned??[2Jred\u{fffd}?1m\tend\r\n\r\x1b[Kunfinished\r\n"
    );
}

/// Types a draft line, ends the client with `end`, and checks it was
/// ended by `sig` with the terminal put back.
fn ended_by_a_signal(end: impl FnOnce(&mut Pty, &Child), sig: Signal) {
    let (_server, mut pty, before, mut client) = client_on_tty("echo");
    pty.type_keys(b"draft");
    pty.wait_for(0, "draft");
    end(&mut pty, &client);
    let status = wait_exit(&mut client, &pty);
    assert_eq!(status.signal(), Some(sig as i32), "{status}");
    assert_eq!(pty.settings(), before, "the terminal settings are restored");
    let at = pty.wait_for(0, "draft\r\n"); // off the typed line before leaving
    assert_eq!(pty.text().len(), at, "{:?}", pty.text());
}

#[test]
fn ctrl_c_puts_the_terminal_back_and_ends_the_client_by_sigint() {
    ended_by_a_signal(|pty, _| pty.type_keys(b"\x03"), Signal::SIGINT);
}

#[test]
fn sigterm_puts_the_terminal_back_and_ends_the_client_by_sigterm() {
    let term =
        |_: &mut Pty, c: &Child| kill(Pid::from_raw(c.id() as i32), Signal::SIGTERM).unwrap();
    ended_by_a_signal(term, Signal::SIGTERM);
}

/// The process state letter in `/proc/PID/stat` (`T`: stopped).
fn state(pid: u32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    rest.chars().next().expect("state")
}

#[test]
fn ctrl_z_gives_the_terminal_back_until_the_client_is_continued() {
    let (_server, mut pty, before, mut client) = client_on_tty("echo");
    pty.type_keys(b"draft");
    let at = pty.wait_for(0, "draft");
    pty.type_keys(b"\x1a");
    wait_until("the client is stopped", || state(client.id()) == 'T');
    assert_eq!(pty.settings(), before, "the shell gets its terminal back");
    let at = pty.wait_for(at, "\r\x1b[K"); // the draft is off the screen

    kill(Pid::from_raw(client.id() as i32), Signal::SIGCONT).unwrap();
    wait_raw(&pty);
    let at = pty.wait_for(at, "\r\x1b[Kdraft");
    pty.type_keys(b" done\r");
    pty.wait_for(at, " done\r\n\r\x1b[Kdraft done\r\n"); // the echo server's answer
    pty.type_keys(b"\x04");
    let status = wait_exit(&mut client, &pty);
    assert!(status.success(), "{status}");
    assert_eq!(pty.settings(), before, "the terminal settings are restored");
}

#[test]
fn with_stdout_on_a_pipe_the_client_passes_bytes_through() {
    let server = Server::start(&["--tcp", "127.0.0.1:0"]);
    let mut pty = Pty::open();
    let before = pty.settings();
    let mut client = pty.spawn(&[&server.addr().to_string()], Some(Stdio::piped()));
    let mut stdout = client.stdout.take().unwrap();
    // The kernel edits the line (canonical mode): the client gets "abc\n".
    pty.type_keys(b"abx\x7fc\n");
    let mut got = [0u8; 4];
    stdout.read_exact(&mut got).expect("the echo");
    assert_eq!(&got, b"abc\n");
    assert_eq!(pty.settings(), before, "the terminal is left alone");
    pty.type_keys(b"\x04"); // VEOF at the start of a line: end of file
    let status = wait_exit(&mut client, &pty);
    assert!(status.success(), "{status}");
    let mut rest = Vec::new();
    stdout.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "{rest:?}");
}
