//! Fuzz target: chat sessions and the router, several clients (see
//! `edgechat_fuzz::chat`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| edgechat_fuzz::chat::run(data));
