#![no_main]
//! `envlock::fuzzing`'s `requirements` target.
libfuzzer_sys::fuzz_target!(|data: &[u8]| envlock::fuzzing::run("requirements", data));
