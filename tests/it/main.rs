//! envlock's integration tests, one binary with a module per area.
// The lints of Cargo.toml are for the library; a test binary prints and shares helpers freely.
#![allow(
    unreachable_pub,
    missing_docs,
    clippy::print_stderr,
    clippy::print_stdout
)]

mod bad_input;
mod causes;
mod cuda;
mod declared_locks;
mod diff;
mod docker;
mod docs;
mod engine_faults;
mod faults;
mod fleet;
mod golden;
mod image;
mod image_diff;
mod interpreters;
mod latency;
mod loaded;
mod lock_file;
mod matrix;
mod model_files;
mod models;
mod numerics;
mod python_accuracy;
mod registry;
mod registry_faults;
mod requirements;
mod rpm;
mod sbom;
mod schemas;
mod shape;
mod signals;
mod sources;
mod support;
mod toolbox;
