#![no_main]
//! `envlock_model::fuzzing`'s `npy` target.
libfuzzer_sys::fuzz_target!(|data: &[u8]| envlock_model::fuzzing::run("npy", data));
