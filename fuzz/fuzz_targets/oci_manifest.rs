#![no_main]
//! `envlock::fuzzing`'s `oci-manifest` target.
libfuzzer_sys::fuzz_target!(|data: &[u8]| envlock::fuzzing::run("oci-manifest", data));
