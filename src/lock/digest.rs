//! `sha256:<hex>`, the one spelling of a digest in locks and reports.

use sha2::Digest as _;

/// A sha256 being computed; [`Sha256::finish`] gives the lock's `sha256:<hex>` form.
#[derive(Default)]
pub(crate) struct Sha256(sha2::Sha256);

impl Sha256 {
    /// Adds bytes.
    pub(crate) fn update(&mut self, bytes: impl AsRef<[u8]>) {
        self.0.update(bytes);
    }

    /// `sha256:<lower-case hex>`.
    pub(crate) fn finish(self) -> String {
        format!("sha256:{:x}", self.0.finalize())
    }

    /// The digest of `bytes` at once.
    pub(crate) fn of(bytes: impl AsRef<[u8]>) -> String {
        let mut digest = Sha256::default();
        digest.update(bytes);
        digest.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digest() {
        assert_eq!(
            Sha256::of(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
