//! The readers: each answers one question about a runtime from its files, through the one
//! view ([`crate::capture::fs::Files`]), whatever the source. What they read of a layer
//! stream or a folder's tar is declared here too ([`distributions::WANTED`],
//! [`select::HEAD_LIMIT`]), so the sources keep exactly that.

pub(crate) mod conda;
pub(crate) mod distributions;
pub(crate) mod facts;
pub(crate) mod history;
mod rpm;
pub(crate) mod select;
pub(crate) mod site;
pub(crate) mod system;
