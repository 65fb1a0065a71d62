#![no_main]
//! `envlock::fuzzing`'s `command-line` target.
libfuzzer_sys::fuzz_target!(|data: &[u8]| envlock::fuzzing::run("command-line", data));
