//! End to end with the real binary: `edgechat bench --mode chat` and
//! `--mode idle` against `edgechat serve` (chat, the default mode) on
//! loopback. Every wait is bounded, and the server is stopped (SIGTERM,
//! then SIGKILL) by a guard even when a test fails (`tests/common`).

mod common;

use std::process::Stdio;

use common::{bench_json as bench, count, field, run_edgechat, Server};

/// A chat server (the default mode) on a free port.
fn chat_server() -> Server {
    Server::start_mode("chat", &["--tcp", "127.0.0.1:0"])
}

#[test]
fn chat_for_a_second_with_two_senders() {
    let server = chat_server();
    let args = [
        "--mode",
        "chat",
        "--secs",
        "1",
        "--warmup",
        "0.2",
        "--receivers",
        "5",
        "--senders",
        "2",
    ];
    let json = bench(&server, &args);
    assert!(field(&json, "deliveries") > 0.0, "{json}");
    assert_eq!(field(&json, "errors"), 0.0, "{json}");
    assert_eq!(field(&json, "order_errors"), 0.0, "{json}");
    assert!(field(&json, "p99_us") >= field(&json, "p50_us"), "{json}");
    assert!(field(&json, "server_rss_kib") > 0.0, "{json}");
    assert!(field(&json, "server_cpu_us") >= 0.0, "{json}");
}

#[test]
fn chat_count_delivers_every_line_to_every_receiver() {
    let server = chat_server();
    let args = ["--mode", "chat", "--count", "100", "--receivers", "3"];
    let json = bench(&server, &args);
    assert_eq!(field(&json, "lines"), 100.0, "{json}");
    assert_eq!(field(&json, "deliveries"), 300.0, "{json}");
    assert_eq!(field(&json, "errors"), 0.0, "{json}");
    // Not one line more reached the server than was counted.
    let stats = server.stats();
    assert_eq!(count(&stats, "msgs_in"), 100, "{stats}");
}

#[test]
fn chat_count_with_lines_in_flight() {
    let server = chat_server();
    let args = [
        "--mode",
        "chat",
        "--count",
        "1000",
        "--receivers",
        "4",
        "--senders",
        "3",
        "--depth",
        "32",
    ];
    let json = bench(&server, &args);
    assert_eq!(field(&json, "deliveries"), 4000.0, "{json}");
    assert_eq!(field(&json, "errors"), 0.0, "{json}");
}

#[test]
fn idle_reports_rss_per_connection() {
    let server = chat_server();
    let args = ["--mode", "idle", "--conns", "50", "--secs", "0.5"];
    let json = bench(&server, &args);
    assert!(field(&json, "rss_after_kib") > 0.0, "{json}");
    assert!(field(&json, "rss_per_conn_bytes") >= 0.0, "{json}");
    assert_eq!(field(&json, "hellos"), 50.0, "{json}");
    assert_eq!(field(&json, "errors"), 0.0, "{json}");
}

#[test]
fn idle_without_server_pid_reports_what_it_can() {
    let server = chat_server();
    let addr = server.addr().to_string();
    let args = [
        "bench", "--addr", &addr, "--json", "--mode", "idle", "--conns", "30", "--secs", "0.3",
    ];
    let out = run_edgechat(&args, Stdio::null(), None);
    let json = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {json} {stderr}", out.status);
    // Each HELLO came from the server: it accepted and greeted all 30.
    assert_eq!(field(&json, "held_conns"), 30.0, "{json}");
    assert_eq!(field(&json, "hellos"), 30.0, "{json}");
    assert!(field(&json, "settle_secs") >= 0.0, "{json}");
    assert_eq!(field(&json, "errors"), 0.0, "{json}");
    for key in [
        "rss_before_kib",
        "rss_after_kib",
        "rss_per_conn_bytes",
        "server_cpu_us",
    ] {
        assert!(json.contains(&format!("\"{key}\":null")), "{key}: {json}");
    }
}
