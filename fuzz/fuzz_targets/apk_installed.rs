#![no_main]
//! `envlock::fuzzing`'s `apk-installed` target.
libfuzzer_sys::fuzz_target!(|data: &[u8]| envlock::fuzzing::run("apk-installed", data));
