#![no_main]
//! `envlock::fuzzing`'s `audit-shard` target.
libfuzzer_sys::fuzz_target!(|data: &[u8]| envlock::fuzzing::run("audit-shard", data));
