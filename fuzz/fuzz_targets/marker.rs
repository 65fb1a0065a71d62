#![no_main]
//! `envlock::fuzzing`'s `marker` target.
libfuzzer_sys::fuzz_target!(|data: &[u8]| envlock::fuzzing::run("marker", data));
