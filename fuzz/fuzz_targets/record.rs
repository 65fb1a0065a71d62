#![no_main]
//! `envlock::fuzzing`'s `record` target.
libfuzzer_sys::fuzz_target!(|data: &[u8]| envlock::fuzzing::run("record", data));
