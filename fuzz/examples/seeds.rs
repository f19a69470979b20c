//! Writes the seed corpus under `fuzz/seeds/<target>/`: sample lines for
//! the framer, chat sessions, and for TLS a real rustls ClientHello (raw)
//! and clean or tampered client connections. Run it again after changing
//! an input format: `cargo run --manifest-path fuzz/Cargo.toml --example seeds`.

use std::path::Path;

use edgechat_fuzz::chat::Op;
use edgechat_fuzz::tls::{client_hello, client_input, Flags, Mutation};

fn write(target: &str, name: &str, data: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("seeds")
        .join(target);
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join(name), data).expect("write seed");
}

fn framer() {
    let mut lines = vec![15, 7, 0];
    lines.extend_from_slice(b"hello\r\nworld\n\nthis line is far too long\nok\r\nhalf");
    write("framer", "lines", &lines);
    let mut edges = vec![3, 0x21, 0x43];
    edges.extend_from_slice(b"abcd\r\nabcde\r\nabcd\r\r\n\r\n\n\rx\nabcdefghij");
    write("framer", "limit-edges", &edges);
}

fn chat() {
    let line = |key, s: &str| Op::Input(key, format!("{s}\n").into_bytes());
    let sessions: [(&str, u8, Vec<Op>); 3] = [
        (
            "commands",
            0x03,
            vec![
                Op::Open(0),
                Op::Open(1),
                Op::Open(2),
                line(0, "hello, all"),
                Op::Stock(1, 0, b"bob".to_vec()),
                Op::Stock(0, 1, b"Den".to_vec()),
                Op::Stock(1, 1, b"den".to_vec()),
                Op::Stock(2, 2, b"bob psst \x1b[2J".to_vec()),
                line(2, "//not a command\t/WHO"),
                line(1, "/rooms"),
                line(1, "/stats"),
                line(0, "/ping tok"),
                Op::Stock(0, 3, b"gone home".to_vec()),
                Op::Eof(2),
                Op::Close(0, 1),
                Op::Close(2, 0),
            ],
        ),
        (
            "certificates",
            0x01,
            vec![
                Op::Open(0),
                Op::Stock(0, 0, b"Alice".to_vec()),
                Op::OpenAs(1, 0),
                Op::OpenAs(2, 3),
                Op::Stock(1, 0, b"bob".to_vec()),
                Op::Close(2, 1),
                Op::Close(1, 2),
                Op::Stock(0, 0, b"alice".to_vec()),
            ],
        ),
        (
            "deadlines",
            0x25,
            vec![
                Op::Open(0),
                Op::Open(1),
                Op::Input(0, b"unfinished".to_vec()),
                Op::Wait(4),
                Op::Input(1, b"this line is much too long for the limit".to_vec()),
                Op::Wait(6),
                line(0, "/pong k1"),
                Op::Wait(30),
                Op::Input(1, b"/quit\nlate".to_vec()),
                Op::Wait(60),
            ],
        ),
    ];
    for (name, limits, ops) in sessions {
        let mut data = vec![limits];
        for op in &ops {
            op.encode(&mut data);
        }
        write("chat", name, &data);
    }
}

fn tls() {
    let raw = |flags: u8, bytes: &[u8]| {
        let mut v = vec![flags & !Flags::CLIENT, 128, 3];
        v.extend_from_slice(bytes);
        v
    };
    write("tls", "raw-client-hello", &raw(0, &client_hello(false)));
    write(
        "tls",
        "raw-client-hello-tls12",
        &raw(Flags::EOF, &client_hello(true)),
    );
    let hello = client_hello(false);
    write(
        "tls",
        "raw-truncated-hello",
        &raw(Flags::EOF, &hello[..hello.len() / 2]),
    );
    write(
        "tls",
        "raw-plaintext",
        &raw(Flags::EOF, b"GET / HTTP/1.1\r\n\r\n"),
    );
    let end = Flags::EOF | Flags::CLOSE_NOTIFY | Flags::ECHO;
    let hi = b"hello\n/nick bob\n";
    write("tls", "clean", &client_input(end, 128, 1, &[], 0, hi));
    write(
        "tls",
        "clean-small-buffer",
        &client_input(end, 5, 2, &[], 0, hi),
    );
    let mtls = end | Flags::MTLS | Flags::CLIENT_CERT | Flags::TLS12;
    write(
        "tls",
        "clean-mtls-tls12",
        &client_input(mtls, 128, 3, &[], 0, hi),
    );
    write(
        "tls",
        "resumed",
        &client_input(end | Flags::RESUME, 130, 4, &[], 0, hi),
    );
    let flip = Mutation {
        at: 600,
        kind: 0,
        value: 0x40,
    };
    write("tls", "flipped", &client_input(end, 128, 5, &[flip], 0, hi));
    // 1 KiB sent 256 times: several full reads of the server's buffer.
    let kib: Vec<u8> = (0..1024u32).map(|i| (i % 251) as u8).collect();
    write("tls", "bulk", &client_input(end, 128, 7, &[], 255, &kib));
    write(
        "tls",
        "bulk-small-buffer",
        &client_input(end, 100, 8, &[], 40, &kib),
    );
    // A bit flipped in the first application data record, after the
    // ClientHello and the client's Finished.
    let in_data = Mutation {
        at: hello.len() + 80,
        kind: 0,
        value: 1,
    };
    write(
        "tls",
        "flipped-app-data",
        &client_input(end, 128, 9, &[in_data], 0, hi),
    );
    let cut = Mutation {
        at: 300,
        kind: 3,
        value: 0,
    };
    write(
        "tls",
        "cut-short",
        &client_input(Flags::EOF, 128, 6, &[cut], 0, hi),
    );
}

fn main() {
    framer();
    chat();
    tls();
}
