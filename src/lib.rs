//! envlock: capture a Python ML runtime into a lock, and catch drift between a dev
//! environment and its Docker image before deployment.
//!
//! The data flow: capture ([`python`], [`model`], [`env`] → [`snapshot`]) → [`lock`].

pub mod cli;
pub mod config;
pub mod diff;
pub mod env;
pub mod error;
pub mod golden;
pub mod image;
pub mod lock;
pub mod model;
pub mod operand;
pub mod platform;
pub mod process;
pub mod python;
pub mod report;
pub mod snapshot;

pub use error::{Error, Result};
