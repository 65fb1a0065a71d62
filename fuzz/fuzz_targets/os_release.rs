#![no_main]
//! `envlock::fuzzing`'s `os-release` target.
libfuzzer_sys::fuzz_target!(|data: &[u8]| envlock::fuzzing::run("os-release", data));
