//! Speed figures, not checks: TLS and plain echo pingpong (64 B messages on
//! 50 connections) against the release server, reporting messages per
//! second and the server's CPU time per message. Ignored by default:
//!
//! ```sh
//! cargo test --release --test tls_speed -- --ignored --nocapture
//! ```

mod tlskit;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tlskit::{Pki, Server, TlsClient};

const CONNS: usize = 50;
const MSG: usize = 64;
const RUN: Duration = Duration::from_secs(5);

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let after = stat.rsplit(')').next().expect("stat");
    let f: Vec<&str> = after.split_whitespace().collect();
    f[11].parse::<u64>().expect("utime") + f[12].parse::<u64>().expect("stime")
}

fn pingpong<S: Read + Write + Send + 'static>(conns: Vec<S>, pid: u32, label: &str) {
    pingpong_sized(conns, pid, label, MSG);
}

fn pingpong_sized<S: Read + Write + Send + 'static>(
    conns: Vec<S>,
    pid: u32,
    label: &str,
    size: usize,
) {
    let n = conns.len();
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let start_ticks = cpu_ticks(pid);
    let started = Instant::now();
    let threads: Vec<_> = conns
        .into_iter()
        .map(|mut s| {
            let (stop, count) = (stop.clone(), count.clone());
            std::thread::spawn(move || {
                let msg = vec![b'x'; size];
                let mut back = vec![0u8; size];
                while !stop.load(Ordering::Relaxed) {
                    s.write_all(&msg).expect("write");
                    s.flush().expect("flush");
                    s.read_exact(&mut back).expect("read");
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(RUN);
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("join");
    }
    let secs = started.elapsed().as_secs_f64();
    let ticks = cpu_ticks(pid) - start_ticks;
    // SAFETY: sysconf has no memory effects.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let msgs = count.load(Ordering::Relaxed) as f64;
    println!(
        "{label}: {n} conns x {size} B pingpong: {:.0} msgs/s, {:.1} MB/s, server CPU {:.2} us/msg ({:.0}% of a core)",
        msgs / secs,
        msgs * size as f64 / secs / 1e6,
        ticks as f64 / hz * 1e6 / msgs,
        ticks as f64 / hz / secs * 100.0
    );
}

/// Pins `pid` (0: this process) to one CPU, if the machine has it.
fn pin(pid: u32, cpu: usize) {
    // SAFETY: `set` is a plain bit set initialised by CPU_ZERO before use,
    // and its size is passed with it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(pid as i32, std::mem::size_of_val(&set), &set);
    }
}

#[test]
#[ignore]
fn echo_pingpong_tls_and_plain() {
    let pki = Pki::new("speed CA");
    let srv = Server::start(&pki, &["--mode", "echo"]);
    let pid = srv.child.id();
    pin(pid, 0); // server on CPU 0, load on CPU 1
    pin(0, 1);
    let plain: Vec<_> = (0..CONNS).map(|_| tlskit::tcp(srv.tcp)).collect();
    pingpong(plain, pid, "plain");
    for (label, v) in [
        ("TLS 1.3", &rustls::version::TLS13),
        ("TLS 1.2", &rustls::version::TLS12),
    ] {
        let config = pki.config_with(Some(v), None);
        let conns: Vec<_> = (0..CONNS)
            .map(|_| {
                TlsClient::connect_tls(srv.tls, config.clone())
                    .r
                    .into_inner()
            })
            .collect();
        pingpong(conns, pid, label);
    }
}

#[test]
#[ignore]
fn echo_stream_16k_tls_and_plain() {
    let pki = Pki::new("speed CA");
    let srv = Server::start(&pki, &["--mode", "echo"]);
    let pid = srv.child.id();
    pin(pid, 0);
    pin(0, 1);
    pingpong_sized(vec![tlskit::tcp(srv.tcp)], pid, "plain", 16 << 10);
    let c = TlsClient::connect_tls(srv.tls, pki.client_config());
    pingpong_sized(vec![c.r.into_inner()], pid, "TLS 1.3", 16 << 10);
}
