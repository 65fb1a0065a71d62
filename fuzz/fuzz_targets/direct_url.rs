#![no_main]
//! `envlock::fuzzing`'s `direct-url` target.
libfuzzer_sys::fuzz_target!(|data: &[u8]| envlock::fuzzing::run("direct-url", data));
