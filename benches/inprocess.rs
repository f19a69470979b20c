//! In-process benches: one layer at a time, no sockets, so a change to the
//! framer, the parser, the router or the TLS record layer shows up alone.
//!
//! `cargo bench --bench inprocess` (HTML reports under `target/criterion/`).

use std::hint::black_box;
use std::io::{Read, Write};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use edgechat::chat::command::parse;
use edgechat::chat::router::{Outbox, Router};
use edgechat::framing::{Frame, LineFramer};
use edgechat::queue::{Line, Turn};
use rcgen::{CertificateParams, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};

/// Posts lines into a turn as the reactor does and counts the bytes
/// delivered without queueing them: the router's own cost.
#[derive(Default)]
struct Count(u64, Turn);

impl Outbox for Count {
    type Line = Line;
    fn post(&mut self, line: &[u8], many: bool) -> Line {
        if self.1.is_full() {
            self.1.clear();
        }
        self.1.post(line, many)
    }
    fn suffix(&self, line: &Line, skip: usize) -> Line {
        line.suffix(skip)
    }
    fn deliver(&mut self, _to: usize, line: &Line) {
        self.0 += line.len() as u64;
    }
    fn close_after_flush(&mut self, _key: usize) {}
}

/// A stream of `n` lines of `len` bytes, and read sizes that split it at
/// pseudo-random points (a fixed LCG, so every run sees the same splits).
fn stream(len: usize, n: usize) -> (Vec<u8>, Vec<usize>) {
    let mut data = Vec::with_capacity((len + 1) * n);
    for i in 0..n {
        data.extend((0..len).map(|j| b'a' + ((i + j) % 26) as u8));
        data.push(b'\n');
    }
    let mut cuts = Vec::new();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut left = data.len();
    while left > 0 {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let take = ((x >> 33) as usize % 8192 + 1).min(left);
        cuts.push(take);
        left -= take;
    }
    (data, cuts)
}

/// The line framer over about 1 MiB of `len`-byte lines, read in pieces cut
/// at pseudo-random points: lines/s (each iteration frames every line).
fn framing(c: &mut Criterion) {
    let mut g = c.benchmark_group("framing");
    for len in [16usize, 200, 4096] {
        let lines = (1 << 20) / (len + 1);
        let (data, cuts) = stream(len, lines);
        g.throughput(Throughput::Elements(lines as u64));
        g.bench_with_input(BenchmarkId::new("lines", len), &len, |b, _| {
            b.iter(|| {
                let mut f = LineFramer::new(4096);
                let (mut framed, mut bytes) = (0u64, 0u64);
                let mut at = 0;
                for &n in &cuts {
                    f.push(&data[at..at + n], |fr| {
                        if let Frame::Line(l) = fr {
                            framed += 1;
                            bytes += l.len() as u64;
                        }
                    });
                    at += n;
                }
                assert_eq!(framed, lines as u64, "every line framed");
                black_box(bytes)
            })
        });
    }
    g.finish();
}

fn parsing(c: &mut Criterion) {
    let lines = [
        "hello everyone, how is it going",
        "//escaped",
        "/nick someone",
        "/msg bob are you there?",
        "/join room-42",
        "/ping abc",
        "/WHO",
    ];
    c.bench_function("parse/mixed", |b| {
        b.iter(|| {
            for l in &lines {
                black_box(parse(black_box(l)));
            }
        })
    });
}

fn fanout(c: &mut Criterion) {
    let mut g = c.benchmark_group("router_fanout");
    for members in [10usize, 100, 1000] {
        let mut r = Router::new();
        let mut sink = Count::default();
        for k in 0..members {
            r.connect(k, &mut sink);
        }
        g.throughput(Throughput::Elements(members as u64 - 1));
        g.bench_with_input(BenchmarkId::from_parameter(members), &members, |b, _| {
            b.iter(|| {
                r.line(
                    0,
                    black_box(b"a line of chat text, about sixty bytes long........"),
                    &mut sink,
                )
            })
        });
    }
    g.finish();
}

/// A TLS client and server joined by two in-memory pipes (`Vec<u8>`s of
/// ciphertext), past the handshake: the same rustls calls the reactor makes
/// (`write_tls`, `read_tls`, `process_new_packets`), without the sockets.
struct TlsPipe {
    client: ClientConnection,
    server: ServerConnection,
    wire: Vec<u8>,
}

impl TlsPipe {
    fn new() -> TlsPipe {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let der: CertificateDer<'static> = cert.der().clone();
        let pkey: PrivateKeyDer<'static> = PrivatePkcs8KeyDer::from(key.serialize_der()).into();
        let server = ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![der.clone()], pkey)
            .unwrap();
        let mut roots = RootCertStore::empty();
        roots.add(der).unwrap();
        let client = ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = ServerName::try_from("localhost").unwrap();
        let mut pipe = TlsPipe {
            client: ClientConnection::new(Arc::new(client), name).unwrap(),
            server: ServerConnection::new(Arc::new(server)).unwrap(),
            wire: Vec::with_capacity(64 * 1024),
        };
        while pipe.client.is_handshaking() || pipe.server.is_handshaking() {
            pipe.client_to_server();
            pipe.server_to_client();
        }
        // Session tickets and whatever else is still in flight.
        pipe.server_to_client();
        pipe.client_to_server();
        pipe
    }

    /// Seals what the client owes into records, and opens them at the server.
    fn client_to_server(&mut self) {
        self.wire.clear();
        while self.client.wants_write() {
            self.client.write_tls(&mut self.wire).unwrap();
        }
        let mut at = &self.wire[..];
        while !at.is_empty() {
            self.server.read_tls(&mut at).unwrap();
            self.server.process_new_packets().unwrap();
        }
    }

    fn server_to_client(&mut self) {
        self.wire.clear();
        while self.server.wants_write() {
            self.server.write_tls(&mut self.wire).unwrap();
        }
        let mut at = &self.wire[..];
        while !at.is_empty() {
            self.client.read_tls(&mut at).unwrap();
            self.client.process_new_packets().unwrap();
        }
    }
}

/// TLS records, sealed by the client and opened by the server through an
/// in-memory pipe: `size` bytes of plaintext per iteration (16 KiB is one
/// full record), read back out of the server. Bytes/s of plaintext.
fn tls_records(c: &mut Criterion) {
    let mut g = c.benchmark_group("tls_records");
    for size in [64usize, 1024, 16384] {
        let mut pipe = TlsPipe::new();
        let data = vec![b'x'; size];
        let mut out = vec![0u8; size];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("seal_open", size), &size, |b, _| {
            b.iter(|| {
                pipe.client.writer().write_all(black_box(&data)).unwrap();
                pipe.client_to_server();
                pipe.server.reader().read_exact(&mut out).unwrap();
                black_box(out[size - 1])
            })
        });
    }
    g.finish();
}

criterion_group!(benches, framing, parsing, fanout, tls_records);
criterion_main!(benches);
