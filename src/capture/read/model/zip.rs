//! Zip models: torch.save and Keras 3 (helper B fills this in).

use std::io::BufRead;

use super::Facts;

/// Reads a zip model from its local headers as it streams, checked against its central
/// directory.
pub(crate) fn read(reader: &mut dyn BufRead, size: u64) -> Facts {
    let _ = (reader, size);
    Facts::default()
}
