#![no_main]
//! `envlock::fuzzing`'s `passwd` target.
libfuzzer_sys::fuzz_target!(|data: &[u8]| envlock::fuzzing::run("passwd", data));
