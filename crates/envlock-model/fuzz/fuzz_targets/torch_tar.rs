#![no_main]
//! `envlock_model::fuzzing`'s `torch-tar` target.
libfuzzer_sys::fuzz_target!(|data: &[u8]| envlock_model::fuzzing::run("torch-tar", data));
