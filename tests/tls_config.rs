//! TLS start-up errors name the file that failed, and the server does not
//! start with a certificate it cannot use. The one test of the committed
//! development certificates (`certs/`) is here too.

#[allow(dead_code)]
#[path = "tlskit/pki.rs"]
mod pki;

use std::process::Command;

fn serve_in(dir: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_edgechat"))
        .current_dir(dir)
        .arg("serve")
        .args(args)
        .output()
        .expect("run edgechat");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code().unwrap_or(-1), err)
}

#[test]
fn missing_default_certificate_is_named() {
    let dir = std::env::temp_dir().join(format!("edgechat-nocerts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    // A TLS listener asked for, and the default certificate not here. (With
    // no listener flag at all, the server leaves TLS out instead, with a
    // warning: tests/first_hour.rs.)
    let (code, err) = serve_in(&dir, &["--tls", "127.0.0.1:0"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("certs/server.crt: No such file or directory"),
        "{err}"
    );
    let _ = std::fs::remove_dir(&dir);
}

#[test]
fn a_key_file_without_a_key_is_named() {
    let dir = std::env::temp_dir().join(format!("edgechat-badkey-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("k.pem"), "nothing here\n").expect("write");
    let pki = pki::Pki::new("config CA");
    let cert = pki.server_crt.to_str().expect("path");
    let args = ["--tls", "127.0.0.1:0", "--cert", cert, "--key", "k.pem"];
    let (code, err) = serve_in(&dir, &args);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("k.pem: no private key found"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The committed development certificates (`certs/`, which no other test
/// uses) still work together, driven by the client-side pieces in
/// `edgechat::transport::client` over a nonblocking socket: the CA
/// verifies the server, and `alice` gets her nick by mTLS.
#[test]
fn committed_dev_certs_and_client_session_work_for_mtls() {
    use std::os::fd::AsFd;
    use std::path::Path;
    use std::time::{Duration, Instant};

    use edgechat::queue::OutQueue;
    use edgechat::transport::{client, Input};

    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let ca = repo.join("certs/ca.crt");
    let mut child = Command::new(env!("CARGO_BIN_EXE_edgechat"))
        .current_dir(repo)
        .args(["serve", "--tls", "127.0.0.1:0", "--client-ca"])
        .arg(&ca)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let addr = loop {
        let l = lines.next().expect("server exited").expect("stderr");
        if let Some(a) = l.split("listening on tls://").nth(1) {
            break a.trim().to_string();
        }
    };
    let (crt, key) = (repo.join("certs/client.crt"), repo.join("certs/client.key"));
    let cfg = client::config(&ca, Some((&crt, &key))).expect("client config");
    let mut tls = client::connect(cfg, "localhost").expect("session");
    let sock = std::net::TcpStream::connect(addr.as_str()).expect("connect");
    sock.set_nonblocking(true).expect("nonblocking");
    let (mut out, mut buf, mut got) = (OutQueue::default(), vec![0u8; 64 << 10], Vec::new());
    tls.write(&mut out, b"/ping dev\n");
    let end = Instant::now() + Duration::from_secs(20);
    while !String::from_utf8_lossy(&got).contains("PONG dev\n") {
        assert!(
            Instant::now() < end,
            "got {:?}",
            String::from_utf8_lossy(&got)
        );
        tls.flush(sock.as_fd(), &mut out, false).expect("flush");
        let mut readable = true;
        if let Input::Data(n) = tls
            .read(sock.as_fd(), &mut buf, &mut readable, false)
            .expect("read")
        {
            got.extend_from_slice(&buf[..n]);
        } else {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    assert!(String::from_utf8_lossy(&got).starts_with("HELLO alice lobby\n"));
    let _ = child.kill();
    let _ = child.wait();
}
