#![no_main]
//! `envlock::fuzzing`'s `model` target.
libfuzzer_sys::fuzz_target!(|data: &[u8]| envlock::fuzzing::run("model", data));
