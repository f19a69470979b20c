//! The systemd units in `scripts/`: each passes `systemd-analyze verify`,
//! is rated at most 2.0 by `systemd-analyze security --offline=true`, runs
//! as no root (`DynamicUser=`), and serves TLS from credentials handed over
//! with `LoadCredential=` (`--cert %d/...`).
//!
//! The units name `/usr/local/bin/edgechat`; the copies checked here name
//! the binary under test instead, so `verify` finds an executable.
//! `systemd-analyze` comes with the `systemd` package (`scripts/test.sh`
//! installs it where missing).

mod common;
mod daemonkit;

use std::process::{Command, Stdio};

use common::{wait_child, TIMEOUT};
use daemonkit::TempDir;

const UNITS: [&str; 2] = ["edgechat.service", "edgechat-forking.service"];
/// The highest exposure accepted ("OK" in systemd's words goes to 4.9).
const MAX_EXPOSURE: f64 = 2.0;

/// Runs `systemd-analyze ARGS` with a bound; its exit status and output.
fn analyze(args: &[&str]) -> (bool, String) {
    let spawned = Command::new("systemd-analyze")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => panic!(
            "systemd-analyze: {e}: install it (apt-get install -y systemd; scripts/test.sh does)"
        ),
    };
    let out = std::thread::spawn({
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        move || {
            use std::io::Read;
            let mut s = String::new();
            if let Some(mut o) = stdout {
                let _ = o.read_to_string(&mut s);
            }
            if let Some(mut e) = stderr {
                let _ = e.read_to_string(&mut s);
            }
            s
        }
    });
    let status = wait_child(&mut child, TIMEOUT)
        .unwrap_or_else(|| panic!("systemd-analyze {args:?} did not finish in {TIMEOUT:?}"));
    (status.success(), out.join().expect("output reader"))
}

/// The unit, with the binary under test in place of the installed one,
/// written to `dir` under its own name.
fn copy(dir: &TempDir, unit: &str) -> (String, String) {
    let src = format!("{}/scripts/{unit}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&src).unwrap_or_else(|e| panic!("{src}: {e}"));
    let local = text.replace("/usr/local/bin/edgechat", env!("CARGO_BIN_EXE_edgechat"));
    let path = dir.path(unit);
    std::fs::write(&path, &local).expect("write unit copy");
    (path.display().to_string(), text)
}

#[test]
fn both_units_verify_and_are_rated_at_most_2_0() {
    let dir = TempDir::new("units");
    for unit in UNITS {
        let (path, _) = copy(&dir, unit);
        let (ok, out) = analyze(&["verify", &path]);
        assert!(ok, "systemd-analyze verify {unit}:\n{out}");
        assert!(!out.contains(unit), "verify warns about {unit}:\n{out}");

        let (ok, out) = analyze(&["security", "--offline=true", &path]);
        assert!(ok, "systemd-analyze security {unit}:\n{out}");
        let want = format!("Overall exposure level for {unit}: ");
        let rating = out
            .lines()
            .find_map(|l| l.split_once(&want).map(|(_, r)| r.to_string()))
            .unwrap_or_else(|| panic!("no exposure level in:\n{out}"));
        let level: f64 = rating
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{unit}: unreadable level {rating:?}"));
        assert!(
            level <= MAX_EXPOSURE,
            "{unit}: exposure {level} > {MAX_EXPOSURE}:\n{out}"
        );
    }
}

#[test]
fn both_units_run_unprivileged_and_serve_tls_from_credentials() {
    let dir = TempDir::new("units-tls");
    for unit in UNITS {
        let (_, text) = copy(&dir, unit);
        let has = |line: &str| text.lines().any(|l| l.trim() == line);
        assert!(has("DynamicUser=yes"), "{unit}: not a dynamic user");
        assert!(!text.contains("User=root"), "{unit}");
        assert!(
            has("RuntimeDirectory=edgechat"),
            "{unit}: no pidfile directory"
        );
        for file in ["server.crt", "server.key"] {
            let load = format!("LoadCredential={file}:/etc/edgechat/{file}");
            assert!(has(&load), "{unit}: no {load}");
        }
        let start = text
            .lines()
            .find(|l| l.starts_with("ExecStart="))
            .unwrap_or_else(|| panic!("{unit}: no ExecStart="));
        for want in [
            "--tls ",
            "--cert %d/server.crt",
            "--key %d/server.key",
            "--pidfile /run/edgechat/",
        ] {
            assert!(start.contains(want), "{unit}: no {want:?} in {start}");
        }
    }
}
