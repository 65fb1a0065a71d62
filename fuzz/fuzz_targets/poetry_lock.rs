#![no_main]
//! `envlock::fuzzing`'s `poetry-lock` target.
libfuzzer_sys::fuzz_target!(|data: &[u8]| envlock::fuzzing::run("poetry-lock", data));
