#![no_main]
//! `envlock::fuzzing`'s `sbom` target.
libfuzzer_sys::fuzz_target!(|data: &[u8]| envlock::fuzzing::run("sbom", data));
