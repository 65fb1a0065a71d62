#![no_main]
//! `envlock::fuzzing`'s `image-config` target.
libfuzzer_sys::fuzz_target!(|data: &[u8]| envlock::fuzzing::run("image-config", data));
