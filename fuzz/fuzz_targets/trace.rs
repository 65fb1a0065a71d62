#![no_main]
//! `envlock::fuzzing`'s `trace` target.
libfuzzer_sys::fuzz_target!(|data: &[u8]| envlock::fuzzing::run("trace", data));
