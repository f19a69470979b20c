//! TLS start-up errors name the file that failed, and the server does not
//! start with a certificate it cannot use.

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
    // No listener flag: plain 7000 and TLS 7443, which needs certs/ here.
    let (code, err) = serve_in(&dir, &[]);
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
    let repo = env!("CARGO_MANIFEST_DIR");
    let cert = format!("{repo}/certs/server.crt");
    let args = ["--tls", "127.0.0.1:0", "--cert", &cert, "--key", "k.pem"];
    let (code, err) = serve_in(&dir, &args);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("k.pem: no private key found"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
