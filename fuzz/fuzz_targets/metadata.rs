#![no_main]
//! `envlock::fuzzing`'s `metadata` target.
libfuzzer_sys::fuzz_target!(|data: &[u8]| envlock::fuzzing::run("metadata", data));
