#![no_main]
//! `envlock::fuzzing`'s `http-response` target.
libfuzzer_sys::fuzz_target!(|data: &[u8]| envlock::fuzzing::run("http-response", data));
