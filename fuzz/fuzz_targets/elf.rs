#![no_main]
//! `envlock::fuzzing`'s `elf` target.
libfuzzer_sys::fuzz_target!(|data: &[u8]| envlock::fuzzing::run("elf", data));
