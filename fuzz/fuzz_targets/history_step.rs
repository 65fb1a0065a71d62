#![no_main]
//! `envlock::fuzzing`'s `history-step` target.
libfuzzer_sys::fuzz_target!(|data: &[u8]| envlock::fuzzing::run("history-step", data));
