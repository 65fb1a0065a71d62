#![no_main]
//! `envlock::fuzzing`'s `folder-tar` target.
libfuzzer_sys::fuzz_target!(|data: &[u8]| envlock::fuzzing::run("folder-tar", data));
