#![no_main]
//! `envlock::fuzzing`'s `model-tar` target.
libfuzzer_sys::fuzz_target!(|data: &[u8]| envlock::fuzzing::run("model-tar", data));
