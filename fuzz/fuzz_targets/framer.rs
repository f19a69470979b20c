//! Fuzz target: the line framer against its reference model (see
//! `edgechat_fuzz::framer`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| edgechat_fuzz::framer::run(data));
