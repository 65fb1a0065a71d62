#![no_main]
//! `envlock::fuzzing`'s `pyvenv` target.
libfuzzer_sys::fuzz_target!(|data: &[u8]| envlock::fuzzing::run("pyvenv", data));
