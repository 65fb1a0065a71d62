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
        let hex: String = self
            .0
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("{PREFIX}{hex}")
    }

    /// The digest of `bytes` at once.
    pub(crate) fn of(bytes: impl AsRef<[u8]>) -> String {
        let mut digest = Sha256::default();
        digest.update(bytes);
        digest.finish()
    }

    /// `sha256:<hex>` from 64 hex digits (any case), or `None` for anything else.
    pub(crate) fn from_hex(hex: &str) -> Option<String> {
        (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| format!("{PREFIX}{}", hex.to_ascii_lowercase()))
    }

    /// `sha256:<hex>` from RECORD's `sha256=` value: urlsafe base64, padding optional.
    pub(crate) fn from_record(encoded: &[u8]) -> Option<String> {
        use base64::Engine as _;
        let trimmed = encoded.strip_suffix(b"=").unwrap_or(encoded);
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(trimmed)
            .ok()?;
        (bytes.len() == 32).then(|| {
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            format!("{PREFIX}{hex}")
        })
    }

    /// The hex digits of a digest written `sha256:<hex>` (the whole text otherwise).
    pub(crate) fn hex(digest: &str) -> &str {
        digest.strip_prefix(PREFIX).unwrap_or(digest)
    }

    /// Whether `digest` is `sha256:<64 lower-case hex>`: the only form used to name a file.
    pub(crate) fn is_valid(digest: &str) -> bool {
        digest.strip_prefix(PREFIX).is_some_and(|hex| {
            hex.len() == 64
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
    }
}

/// How a digest starts.
const PREFIX: &str = "sha256:";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_spelled_one_way() {
        let empty = Sha256::of(b"");
        assert_eq!(
            Sha256::from_record(b"47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU").as_deref(),
            Some(empty.as_str())
        );
        assert_eq!(
            Sha256::from_hex(&Sha256::hex(&empty).to_ascii_uppercase()).as_deref(),
            Some(empty.as_str())
        );
        assert!(Sha256::is_valid(&empty));
        assert!(!Sha256::is_valid("sha256:../../etc/passwd"));
        assert_eq!(Sha256::from_hex("abc"), None);
        assert_eq!(Sha256::from_record(b"!!"), None);
    }

    #[test]
    fn known_digest() {
        assert_eq!(
            Sha256::of(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
