//! Interop with TLS clients nobody here wrote: `openssl s_client` and
//! Python's `ssl` module, over TLS 1.3 and TLS 1.2. A missing tool fails
//! the test with a message saying what to install; it never passes quietly.

mod tlskit;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};

use tlskit::{Pki, Server, TlsClient, WAIT};

/// Starts `program`, failing clearly if it is not installed.
fn spawn(program: &str, args: &[&str]) -> Child {
    Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("{program} is needed by this test and could not be run ({e}): install it (.ci/run does)")
        })
}

/// Lines of `child`'s stdout, read by a thread.
fn lines(child: &mut Child) -> Receiver<String> {
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                return;
            }
        }
    });
    rx
}

fn next(rx: &Receiver<String>) -> String {
    rx.recv_timeout(WAIT).expect("a line from the client")
}

fn openssl_chat(version: &str) {
    let pki = Pki::new("interop CA");
    let srv = Server::start(&pki, &[]);
    let mut rust = TlsClient::join(srv.tls, pki.client_config());
    let addr = srv.tls.to_string();
    let ca = pki.ca_crt.to_str().expect("path");
    let args = [
        "s_client",
        "-quiet",
        "-servername",
        "localhost",
        "-CAfile",
        ca,
        "-verify_return_error",
        version,
        "-connect",
        &addr,
    ];
    let mut child = spawn("openssl", &args);
    let rx = lines(&mut child);
    let hello = next(&rx);
    let nick = hello
        .strip_prefix("HELLO ")
        .and_then(|r| r.strip_suffix(" lobby"))
        .unwrap_or_else(|| panic!("{hello}"))
        .to_string();
    rust.expect(&[&format!("JOIN {nick}")]);
    let stdin = child.stdin.as_mut().expect("stdin");
    stdin
        .write_all(b"hello from openssl\n/ping os\n")
        .expect("write");
    stdin.flush().expect("flush");
    rust.expect(&[&format!("MSG {nick} hello from openssl")]);
    assert_eq!(next(&rx), "PONG os");
    rust.send("hello openssl");
    assert_eq!(next(&rx), format!("MSG {} hello openssl", rust.nick));
    stdin.write_all(b"/quit\n").expect("write");
    assert_eq!(next(&rx), "BYE");
    rust.expect(&[&format!("QUIT {nick}")]);
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn openssl_s_client_tls13_chats() {
    openssl_chat("-tls1_3");
}

#[test]
fn openssl_s_client_tls12_chats() {
    openssl_chat("-tls1_2");
}

/// Connects with Python's `ssl`, checks the version, chats, quits, and
/// reads to the end: `b''` only after a clean `close_notify`
/// (`suppress_ragged_eofs=False` makes a bare FIN an error).
const PY_CHAT: &str = r#"
import socket, ssl, sys
host, port, ca, ver = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(cafile=ca)
v = ssl.TLSVersion.TLSv1_2 if ver == "1.2" else ssl.TLSVersion.TLSv1_3
ctx.minimum_version = ctx.maximum_version = v
raw = socket.create_connection((host, port), timeout=20)
s = ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False)
f = s.makefile("rwb")
print(s.version())
print(f.readline().decode().split()[0])
f.write(b"/ping py\n"); f.flush()
print(f.readline().decode().strip())
f.write(b"/quit\n"); f.flush()
print(f.readline().decode().strip())
print(repr(f.read()))
"#;

/// Python echoes 1 MiB byte-exact in `--mode echo`.
const PY_ECHO: &str = r#"
import socket, ssl, sys
host, port, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
s = ctx.wrap_socket(socket.create_connection((host, port), timeout=20), server_hostname="localhost")
data = bytes((i * 31 + i // 1000) % 256 for i in range(1 << 20))
got = bytearray()
for i in range(0, len(data), 65536):
    s.sendall(data[i:i + 65536])
    while len(got) < i + 65536:
        got += s.recv(65536)
print("same" if bytes(got) == data else "differs")
"#;

fn python(script: &str, args: &[&str]) -> Vec<String> {
    let mut all = vec!["-c", script];
    all.extend_from_slice(args);
    let mut child = spawn("python3", &all);
    let rx = lines(&mut child);
    let mut out = Vec::new();
    while let Ok(l) = rx.recv_timeout(WAIT) {
        out.push(l);
    }
    let status = child.wait().expect("wait");
    let mut err = String::new();
    let _ = std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut err);
    assert!(status.success(), "python3 failed: {err}");
    out
}

#[test]
fn python_ssl_chats_and_sees_close_notify() {
    let pki = Pki::new("interop CA");
    let srv = Server::start(&pki, &[]);
    let (host, port) = (srv.tls.ip().to_string(), srv.tls.port().to_string());
    let ca = pki.ca_crt.to_str().expect("path");
    for (ver, name) in [("1.3", "TLSv1.3"), ("1.2", "TLSv1.2")] {
        let out = python(PY_CHAT, &[&host, &port, ca, ver]);
        assert_eq!(out, [name, "HELLO", "PONG py", "BYE", "b''"], "TLS {ver}");
    }
}

#[test]
fn python_ssl_echoes_1_mib() {
    let pki = Pki::new("interop CA");
    let srv = Server::start(&pki, &["--mode", "echo"]);
    let (host, port) = (srv.tls.ip().to_string(), srv.tls.port().to_string());
    let ca = pki.ca_crt.to_str().expect("path");
    assert_eq!(python(PY_ECHO, &[&host, &port, ca]), ["same"]);
}
