//! A daemon serving TLS: certificate paths given relative to where
//! `edgechat` was started still name the same files after the daemon's
//! `chdir("/")`, at start-up and at every SIGHUP reload; a certificate it
//! cannot use fails in the foreground, leaving nothing behind.

mod daemonkit;
mod tlskit;

use daemonkit::{edgechat, listening, processes_with, run, Daemon, TempDir};
use tlskit::{Pki, TlsClient};

/// Copies the server pair of `pki` into `dir` as `server.crt` and
/// `server.key`, for a daemon started there with relative paths.
fn install(pki: &Pki, dir: &TempDir) {
    std::fs::copy(&pki.server_crt, dir.path("server.crt")).expect("copy cert");
    std::fs::copy(&pki.server_key, dir.path("server.key")).expect("copy key");
}

const TLS: [&str; 6] = [
    "--tls",
    "127.0.0.1:0",
    "--cert",
    "server.crt",
    "--key",
    "server.key",
];

#[test]
fn relative_certificate_paths_serve_and_reload_after_chdir() {
    let mut pki = Pki::new("daemon CA");
    let dir = TempDir::new("tls");
    install(&pki, &dir);
    let d = Daemon::start(&dir, &TLS);
    let addr = listening(&d.log, "tls").expect("a TLS listener in the log");
    let mut first = TlsClient::join(addr, pki.client_config());
    let served = first.stream().conn.peer_certificates().expect("certs")[0].clone();
    first.expect_nothing();

    // A new pair in the same (relative) place, then SIGHUP.
    let second = pki.write_server("second");
    assert_ne!(served, second);
    install(&pki, &dir);
    d.signal(libc::SIGHUP);
    let reloaded = format!(
        "SIGHUP: certificate reloaded from {}",
        dir.path("server.crt").display()
    );
    daemonkit::wait_until("the reload", || {
        std::fs::read_to_string(&d.log).is_ok_and(|t| t.contains(&reloaded))
    });
    let mut again = TlsClient::join(addr, pki.client_config());
    let now = again.stream().conn.peer_certificates().expect("certs")[0].clone();
    assert_eq!(now, second, "the reloaded certificate is not served");
    again.expect_nothing();
}

#[test]
fn unusable_certificate_fails_in_the_foreground_leaving_nothing() {
    let pki = Pki::new("bad daemon CA");
    let dir = TempDir::new("badcert");
    install(&pki, &dir);
    tlskit::pki::write(&dir.path("server.crt"), "not a certificate\n");
    // The pidfile by its absolute path: a needle no other test's process has.
    let pidfile = dir.path("ed.pid");
    let pidfile_arg = pidfile.to_string_lossy().into_owned();
    let mut args = vec!["serve", "--daemon", "--pidfile", &pidfile_arg];
    args.extend(["--log", "ed.log", "--tcp", "127.0.0.1:0"]);
    args.extend(TLS);
    let ran = run(edgechat(&dir.0, &args));
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    let want = format!(
        "edgechat: {}: no certificate found",
        dir.path("server.crt").display()
    );
    assert_eq!(ran.stderr.trim_end(), want);
    assert!(!pidfile.exists(), "pidfile left behind");
    assert_eq!(processes_with(&pidfile_arg), Vec::<i32>::new());
}
