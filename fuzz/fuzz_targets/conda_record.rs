#![no_main]
//! `envlock::fuzzing`'s `conda-record` target.
libfuzzer_sys::fuzz_target!(|data: &[u8]| envlock::fuzzing::run("conda-record", data));
