//! envlock's integration tests, one binary with a module per area.

mod bad_input;
mod diff;
mod docker;
mod golden;
mod image;
mod image_diff;
mod lock_file;
mod models;
mod python_accuracy;
mod support;
