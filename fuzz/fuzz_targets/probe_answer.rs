#![no_main]
//! `envlock::fuzzing`'s `probe-answer` target.
libfuzzer_sys::fuzz_target!(|data: &[u8]| envlock::fuzzing::run("probe-answer", data));
