//! `edgechat client --tls` against the real server: chat over TLS,
//! certificate name checks, and mTLS with a client certificate from files.

mod tlskit;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use tlskit::pki::Pki;
use tlskit::Server;

/// Runs `edgechat client ARGS...` with `input` on stdin; bounded by a
/// timeout so a hang fails the test.
fn client(args: &[&str], input: &str) -> Output {
    let mut child = Command::new("timeout")
        .arg("20")
        .arg(env!("CARGO_BIN_EXE_edgechat"))
        .arg("client")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn client");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("client output")
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn chat_over_tls_then_quit() {
    let pki = Pki::new("client-test CA");
    let srv = Server::start(&pki, &[]);
    let addr = srv.tls.to_string();
    let out = client(
        &[
            &addr,
            "--tls",
            "--ca",
            path(&pki.ca_crt),
            "--servername",
            "localhost",
        ],
        "/nick over_tls\n/who\n/quit bye\n",
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "HELLO guest1 lobby\nOK nick over_tls\nWHO lobby over_tls\nBYE\n"
    );
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn end_of_input_sends_close_notify_and_the_server_answers() {
    let pki = Pki::new("client-test CA");
    let srv = Server::start(&pki, &["--mode", "echo"]);
    let addr = srv.tls.to_string();
    // No --servername: the address's IP must be in the certificate.
    let out = client(
        &[&addr, "--tls", "--ca", path(&pki.ca_crt)],
        "echo me\nand me\n",
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "echo me\nand me\n");
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn wrong_name_or_unknown_ca_is_refused() {
    let pki = Pki::new("client-test CA");
    let other = Pki::new("some other CA");
    let srv = Server::start(&pki, &[]);
    let addr = srv.tls.to_string();
    let out = client(
        &[
            &addr,
            "--tls",
            "--ca",
            path(&pki.ca_crt),
            "--servername",
            "wrong.example",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not valid for name"),
        "{out:?}"
    );
    let out = client(&[&addr, "--tls", "--ca", path(&other.ca_crt)], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "no HELLO without a trusted server");
}

#[test]
fn mtls_client_certificate_names_the_nick() {
    let pki = Pki::new("client-test CA");
    let srv = Server::start(&pki, &["--client-ca", path(&pki.ca_crt)]);
    let (crt, key) = pki.write_client("carol", &["carol"], "Carol");
    let addr = srv.tls.to_string();
    let args = [
        &addr,
        "--tls",
        "--ca",
        path(&pki.ca_crt),
        "--cert",
        path(&crt),
        "--key",
        path(&key),
    ];
    let out = client(&args, "/who\n");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "HELLO carol lobby\nWHO lobby carol\n"
    );
    assert!(out.status.success(), "{out:?}");
    // Without a certificate the handshake fails: no HELLO.
    let out = client(&[&addr, "--tls", "--ca", path(&pki.ca_crt)], "/who\n");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn missing_ca_file_is_named() {
    let out = client(&["127.0.0.1:9", "--tls", "--ca", "/nonexistent/ca.crt"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("/nonexistent/ca.crt"),
        "{out:?}"
    );
}

#[test]
fn tls_flags_without_tls_are_refused_not_ignored() {
    let pki = Pki::new("client-test CA");
    let (crt, key) = pki.write_client("dave", &["dave"], "Dave");
    // A plain listener: a client that ignored the flags would get HELLO.
    let srv = Server::start(&pki, &[]);
    let addr = srv.tcp.to_string();
    let ca = path(&pki.ca_crt);
    let cases: [(&[&str], &str); 3] = [
        (&["--ca", ca], "--ca"),
        (&["--servername", "localhost"], "--servername"),
        (&["--cert", path(&crt), "--key", path(&key)], "--cert"),
    ];
    for (flags, named) in cases {
        let mut args = vec![addr.as_str()];
        args.extend(flags);
        let out = client(&args, "/who\n");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {err}");
        assert!(out.stdout.is_empty(), "{flags:?} connected: {out:?}");
        assert!(
            err.contains("required arguments were not provided") && err.contains("--tls"),
            "{flags:?}: {err}"
        );
        assert!(err.contains(named), "{flags:?}: {err}");
    }
}
