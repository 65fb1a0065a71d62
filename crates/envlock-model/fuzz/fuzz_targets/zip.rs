#![no_main]
//! `envlock_model::fuzzing`'s `zip` target.
libfuzzer_sys::fuzz_target!(|data: &[u8]| envlock_model::fuzzing::run("zip", data));
