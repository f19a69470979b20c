//! Fuzz target: the server's TLS transport fed raw or tampered client
//! bytes (see `edgechat_fuzz::tls`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| edgechat_fuzz::tls::run(data));
