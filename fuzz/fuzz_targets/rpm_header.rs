#![no_main]
//! `envlock::fuzzing`'s `rpm-header` target.
libfuzzer_sys::fuzz_target!(|data: &[u8]| envlock::fuzzing::run("rpm-header", data));
