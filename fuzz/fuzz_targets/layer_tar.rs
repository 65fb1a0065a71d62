#![no_main]
//! `envlock::fuzzing`'s `layer-tar` target.
libfuzzer_sys::fuzz_target!(|data: &[u8]| envlock::fuzzing::run("layer-tar", data));
