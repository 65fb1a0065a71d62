#![no_main]
//! `envlock::fuzzing`'s `dpkg-status` target.
libfuzzer_sys::fuzz_target!(|data: &[u8]| envlock::fuzzing::run("dpkg-status", data));
