#![no_main]
//! `envlock::fuzzing`'s `uv-lock` target.
libfuzzer_sys::fuzz_target!(|data: &[u8]| envlock::fuzzing::run("uv-lock", data));
