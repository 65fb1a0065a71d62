#![no_main]
//! `envlock::fuzzing`'s `pylock` target.
libfuzzer_sys::fuzz_target!(|data: &[u8]| envlock::fuzzing::run("pylock", data));
