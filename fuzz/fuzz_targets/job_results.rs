#![no_main]
//! `envlock::fuzzing`'s `job-results` target.
libfuzzer_sys::fuzz_target!(|data: &[u8]| envlock::fuzzing::run("job-results", data));
