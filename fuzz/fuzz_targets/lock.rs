#![no_main]
//! `envlock::fuzzing`'s `lock` target.
libfuzzer_sys::fuzz_target!(|data: &[u8]| envlock::fuzzing::run("lock", data));
