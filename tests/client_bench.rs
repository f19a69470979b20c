//! End to end with the real binary: `edgechat client` and `edgechat bench`
//! against `edgechat serve --mode echo` on loopback. Every wait is bounded,
//! and the server is stopped (SIGTERM) by a guard even when a test fails.

mod common;

use std::net::TcpListener;
use std::process::{Output, Stdio};

use common::{bench_json, field, run_edgechat as run, Server};

/// Some short lines, an empty one, and a 100 KB one.
fn input() -> Vec<u8> {
    let mut v = b"hello\n\nsecond line with spaces\n".to_vec();
    v.extend((0..100_000u32).map(|i| b'a' + (i * 7 % 26) as u8));
    v.extend_from_slice(b"\nlast line\n");
    v
}

fn assert_echoed(out: &Output, want: &[u8]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "status {:?}: {stderr}", out.status);
    assert_eq!(out.stdout.len(), want.len(), "{stderr}");
    assert!(out.stdout == want, "stdout differs from stdin");
}

#[test]
fn client_echoes_piped_stdin_exactly() {
    let server = Server::start(&["--tcp", "127.0.0.1:0"]);
    let want = input();
    let out = run(
        &["client", &server.addr().to_string()],
        Stdio::piped(),
        Some(want.clone()),
    );
    assert_echoed(&out, &want);
}

#[test]
fn client_echoes_a_regular_file_on_stdin() {
    let server = Server::start(&["--tcp", "127.0.0.1:0"]);
    let want = input();
    let path = std::env::temp_dir().join(format!("edgechat-client-{}.txt", std::process::id()));
    std::fs::write(&path, &want).expect("write input file");
    let file = std::fs::File::open(&path).expect("open input file");
    let out = run(
        &["client", &server.addr().to_string()],
        Stdio::from(file),
        None,
    );
    let _ = std::fs::remove_file(&path);
    assert_echoed(&out, &want);
}

#[test]
fn client_names_the_address_it_could_not_reach() {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port(); // the listener is closed again: nothing listens there now
    let addr = format!("127.0.0.1:{port}");
    let out = run(&["client", &addr], Stdio::null(), None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains(&format!("connect {addr}: Connection refused")),
        "{stderr}"
    );
}

fn bench(server: &Server, extra: &[&str]) -> String {
    let mut args = vec!["--conns", "4", "--warmup", "0.2"];
    args.extend(extra);
    let json = bench_json(server, &args);
    assert_eq!(field(&json, "errors"), 0.0, "{json}");
    assert!(field(&json, "server_rss_kib") > 0.0, "{json}");
    json
}

#[test]
fn bench_pingpong_for_a_second() {
    let server = Server::start(&["--tcp", "127.0.0.1:0"]);
    let json = bench(&server, &["--mode", "pingpong", "--secs", "1"]);
    assert!(field(&json, "msgs") > 0.0, "{json}");
    assert!(field(&json, "msgs_per_sec") > 0.0, "{json}");
    assert!(field(&json, "p50_us") > 0.0, "{json}");
    assert!(field(&json, "p999_us") >= field(&json, "p50_us"), "{json}");
}

#[test]
fn bench_count_reports_exactly_that_many_messages() {
    let server = Server::start(&["--tcp", "127.0.0.1:0"]);
    let json = bench(&server, &["--mode", "pingpong", "--count", "1000"]);
    assert_eq!(field(&json, "msgs"), 1000.0, "{json}");
    assert_eq!(field(&json, "bytes"), 64_000.0, "{json}");
}

#[test]
fn bench_stream_count_reports_exactly_that_many_messages() {
    let server = Server::start(&["--tcp", "127.0.0.1:0"]);
    let args = [
        "--mode", "stream", "--count", "300", "--size", "16384", "--depth", "4",
    ];
    let json = bench(&server, &args);
    assert_eq!(field(&json, "msgs"), 300.0, "{json}");
    assert_eq!(field(&json, "bytes"), 300.0 * 16384.0, "{json}");
}

#[test]
fn bench_stream_for_a_second() {
    let server = Server::start(&["--tcp", "127.0.0.1:0"]);
    let args = [
        "--mode", "stream", "--secs", "1", "--size", "1000", "--depth", "8",
    ];
    let json = bench(&server, &args);
    let msgs = field(&json, "msgs");
    assert!(msgs > 0.0, "{json}");
    assert_eq!(field(&json, "bytes"), msgs * 1000.0, "{json}");
    assert!(field(&json, "mb_per_sec") > 0.0, "{json}");
}
