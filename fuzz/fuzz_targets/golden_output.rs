#![no_main]
//! `envlock::fuzzing`'s `golden-output` target.
libfuzzer_sys::fuzz_target!(|data: &[u8]| envlock::fuzzing::run("golden-output", data));
