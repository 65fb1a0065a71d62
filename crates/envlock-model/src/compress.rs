//! joblib's compressed files: `joblib.dump(..., compress=...)` writes the pickle (with its
//! inline arrays) through one compressor, with no header of joblib's own (joblib 0.10 and
//! later; `compressor.py` tells them apart by the compressor's magic bytes, as here):
//! - `zlib`: a zlib stream (`zlib.compressobj`, window bits 15): `0x78`, then a second byte
//!   that makes the pair a multiple of 31 (FCHECK);
//! - `gzip`: a gzip member (`0x1f 0x8b`, method 8);
//! - `bz2`: a bzip2 stream (`BZh` and the block size digit);
//! - `xz`: an xz stream (`0xfd 7zXZ 0x00`);
//! - `lzma`: the legacy `.lzma` format (`lzma.FORMAT_ALONE`): a properties byte (`0x5d` for
//!   Python's presets), the dictionary size, and an unknown uncompressed size (all ones);
//! - `lz4`: an LZ4 frame (`lz4.frame`, magic `0x184d2204`).
//!
//! The decompressed stream is bounded: a small file that inflates without end is a bomb,
//! and the scan reports the error as unreadable, which is unsafe.

use std::io::{self, BufRead, BufReader, Read};

/// A compressor joblib writes with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compression {
    Zlib,
    Gzip,
    Bz2,
    Xz,
    Lzma,
    Lz4,
}

/// Decompressed bytes allowed whatever the file's size: models of some GiB compress well.
const MIN_INFLATED: u64 = 1024 * 1024 * 1024;
/// Decompressed bytes allowed per compressed byte beyond [`MIN_INFLATED`]: real models
/// (floats, trees) compress a few times at most; zeros compress about 1000 times in zlib.
const RATIO: u64 = 200;
/// Memory the xz and lzma decoders may take for their dictionary, in KiB: `xz -9` uses a
/// 64 MiB dictionary, and a header declaring 4 GiB must not be allocated.
const DICTIONARY_KIB: u32 = 256 * 1024;
/// The reading buffer over the decompressed stream (the scan reads large payloads in larger
/// blocks, which pass it by).
const BUFFER: usize = 64 * 1024;

/// Decompressed bytes allowed for `compressed` bytes of input ([`RATIO`] times as many, at
/// least [`MIN_INFLATED`]): joblib's files here, and the zip entries of `zip.rs`.
pub(super) fn inflation_limit(compressed: u64) -> u64 {
    compressed.saturating_mul(RATIO).max(MIN_INFLATED)
}

/// The compressor `head` starts with, if any.
pub(crate) fn sniff(head: &[u8]) -> Option<Compression> {
    match head {
        [0x78, flags, ..] if (0x7800 | u16::from(*flags)) % 31 == 0 && flags & 0x20 == 0 => {
            inflates_to_pickle(head, flate2::Decompress::new(true)).then_some(Compression::Zlib)
        }
        [0x1f, 0x8b, 0x08, ..] => Some(Compression::Gzip),
        [b'B', b'Z', b'h', b'1'..=b'9', ..] => Some(Compression::Bz2),
        [0xfd, b'7', b'z', b'X', b'Z', 0x00, ..] => Some(Compression::Xz),
        [0x5d, 0x00, 0x00, _, _, size @ ..] if size.len() >= 8 && size[..8] == [0xff; 8] => {
            Some(Compression::Lzma)
        }
        [0x04, 0x22, 0x4d, 0x18, ..] => Some(Compression::Lz4),
        _ => None,
    }
}

/// Whether the first bytes `head` inflates to start as a pickle does: `0x78` is also the
/// letter `x`, and text must not be taken for a zlib stream.
fn inflates_to_pickle(head: &[u8], mut inflate: flate2::Decompress) -> bool {
    let mut out = vec![0u8; 64 * 1024];
    match inflate.decompress(head, &mut out, flate2::FlushDecompress::None) {
        Ok(_) => {
            let produced = inflate.total_out() as usize;
            crate::pickle::sniff(&out[..produced.min(out.len())])
        }
        Err(_) => false,
    }
}

/// Why a compressed stream cannot be opened (what fails later fails reading it).
#[derive(Debug, thiserror::Error)]
pub(crate) enum OpenError {
    /// The legacy `.lzma` header (properties, dictionary size, size) cannot be read.
    #[error("cannot read the lzma header: {0}")]
    LzmaHeader(#[source] io::Error),
}

/// The decompressed stream (bounded), or why it cannot be read.
pub(crate) fn open<'a>(
    compression: Compression,
    reader: &'a mut dyn BufRead,
    size: u64,
) -> Result<Box<dyn BufRead + 'a>, OpenError> {
    let decoder: Box<dyn Read + 'a> = match compression {
        Compression::Zlib => Box::new(flate2::bufread::ZlibDecoder::new(reader)),
        // Python's `gzip` module reads every member of a file.
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(reader)),
        Compression::Bz2 => Box::new(bzip2::bufread::MultiBzDecoder::new(reader)),
        Compression::Xz => Box::new(lzma_rust2::XzReader::new_mem_limit(
            reader,
            true,
            DICTIONARY_KIB,
        )),
        Compression::Lzma => Box::new(
            lzma_rust2::LzmaReader::new_mem_limit(reader, DICTIONARY_KIB, None)
                .map_err(OpenError::LzmaHeader)?,
        ),
        Compression::Lz4 => Box::new(lz4_flex::frame::FrameDecoder::new(reader)),
    };
    let limit = inflation_limit(size);
    Ok(Box::new(BufReader::with_capacity(
        BUFFER,
        Bounded {
            inner: decoder,
            left: limit,
            limit,
        },
    )))
}

/// A decompressed stream that fails past `limit` bytes.
struct Bounded<R> {
    inner: R,
    left: u64,
    limit: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            // At the limit: fine if the stream ends here, a bomb if it goes on.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::other(format!(
                    "decompresses to more than {} bytes (a decompression bomb)",
                    self.limit
                ))),
            };
        }
        let wanted = (buf.len() as u64).min(self.left) as usize;
        let got = self.inner.read(&mut buf[..wanted])?;
        self.left -= got as u64;
        Ok(got)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pickle::{self, Context};

    /// Sniffs, decompresses and scans a compressed joblib file.
    fn scan_compressed(bytes: &[u8]) -> (Compression, pickle::Scan) {
        let compression = sniff(bytes).expect("a compressed file");
        let mut reader = bytes;
        let mut inflated = open(compression, &mut reader, bytes.len() as u64).expect("opens");
        (
            compression,
            pickle::scan(&mut inflated, u64::MAX, Context::File),
        )
    }

    #[test]
    fn every_joblib_compressor() {
        for (bytes, expected) in [
            (fixture!("joblib-zlib.joblib"), Compression::Zlib),
            (fixture!("joblib-gzip.joblib"), Compression::Gzip),
            (fixture!("joblib-bz2.joblib"), Compression::Bz2),
            (fixture!("joblib-xz.joblib"), Compression::Xz),
            (fixture!("joblib-lzma.joblib"), Compression::Lzma),
            (fixture!("joblib-lz4.joblib"), Compression::Lz4),
        ] {
            let (compression, scan) = scan_compressed(bytes);
            assert_eq!(compression, expected);
            assert_eq!(scan.unreadable, None, "{expected:?}");
            assert_eq!(scan.unsafe_calls, vec![], "{expected:?}");
            assert!(scan.joblib);
            assert_eq!(
                scan.written_by.get("scikit-learn").map(String::as_str),
                Some("1.9.1")
            );
        }
    }

    #[test]
    fn the_model_reader_reads_compressed_joblib_files() {
        let bytes = fixture!("joblib-xz.joblib");
        let facts = super::super::read(&mut &bytes[..], bytes.len() as u64, "model.joblib");
        assert_eq!(facts.format, super::super::Format::Joblib);
        assert!(facts.unsafe_calls.is_empty());
        assert!(facts.imports.contains("sklearn.linear_model._logistic"));
        let bytes = fixture!("hostile-after-array-zlib.joblib");
        let facts = super::super::read(&mut &bytes[..], bytes.len() as u64, "model.joblib");
        assert!(facts.unsafe_calls.contains("posix.system"));
    }

    #[test]
    fn a_payload_after_an_array_in_a_compressed_file() {
        let (_, scan) = scan_compressed(fixture!("hostile-after-array-zlib.joblib"));
        assert!(scan.joblib);
        let calls: Vec<&str> = scan.unsafe_calls.iter().map(|c| c.call.as_str()).collect();
        assert_eq!(calls, ["posix.system"]);
    }

    #[test]
    fn a_cut_compressed_file_is_unreadable() {
        for bytes in [
            fixture!("joblib-zlib.joblib"),
            fixture!("joblib-bz2.joblib"),
            fixture!("joblib-xz.joblib"),
            fixture!("joblib-lz4.joblib"),
        ] {
            // Cut in the middle (the trailer after STOP, a checksum, may be cut harmlessly).
            for cut in [bytes.len() / 3, bytes.len() / 2] {
                let part = &bytes[..cut];
                let compression = sniff(part).expect("a compressed file");
                let mut reader = part;
                if let Ok(mut inflated) = open(compression, &mut reader, part.len() as u64) {
                    let scan = pickle::scan(&mut inflated, u64::MAX, Context::File);
                    assert!(scan.unreadable.is_some());
                };
            }
        }
    }

    #[test]
    fn decompression_is_bounded() {
        let mut bomb = BufReader::new(Bounded {
            inner: io::repeat(0),
            left: 1000,
            limit: 1000,
        });
        let mut out = Vec::new();
        let error = bomb.read_to_end(&mut out).expect_err("a bomb");
        assert!(error.to_string().contains("decompression bomb"), "{error}");
        assert_eq!(out.len(), 1000);
        // At the limit exactly, the stream just ends.
        let mut exact = Bounded {
            inner: &[1u8; 10][..],
            left: 10,
            limit: 10,
        };
        let mut out = Vec::new();
        assert_eq!(exact.read_to_end(&mut out).expect("fits"), 10);
        // A zlib bomb as a scan sees it: its inflated zeros are not a pickle.
        let mut zeros = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        io::Write::write_all(&mut zeros, b"\x80\x04\x8e\x00\x00\x00\x00\x01\x00\x00\x00")
            .expect("writes");
        let compressed = zeros.finish().expect("compresses");
        let mut reader = compressed.as_slice();
        let mut inflated =
            open(Compression::Zlib, &mut reader, compressed.len() as u64).expect("opens");
        let scan = pickle::scan(&mut inflated, u64::MAX, Context::File);
        assert!(scan.unreadable.is_some());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]

        #[test]
        fn garbage_after_a_magic_never_panics(
            which in 0usize..6,
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256),
        ) {
            let magic: &[u8] = [
                b"\x78\x9c".as_slice(),
                b"\x1f\x8b\x08",
                b"BZh9",
                b"\xfd7zXZ\x00",
                b"\x5d\x00\x00\x40\x00\xff\xff\xff\xff\xff\xff\xff\xff",
                b"\x04\x22\x4d\x18",
            ][which];
            let compression = [
                Compression::Zlib,
                Compression::Gzip,
                Compression::Bz2,
                Compression::Xz,
                Compression::Lzma,
                Compression::Lz4,
            ][which];
            let mut bytes = magic.to_vec();
            bytes.extend_from_slice(&body);
            let _ = sniff(&bytes);
            let mut reader = bytes.as_slice();
            if let Ok(mut inflated) = open(compression, &mut reader, bytes.len() as u64) {
                let scan = pickle::scan(&mut inflated, u64::MAX, Context::File);
                proptest::prop_assert!(scan.unreadable.is_some() || scan.unsafe_calls.len() <= bytes.len());
            };
        }
    }

    #[test]
    fn a_cut_lzma_header_says_so() {
        let mut reader: &[u8] = b"\x5d\x00\x00";
        let Err(error) = open(Compression::Lzma, &mut reader, 3) else {
            panic!("a three-byte lzma header opens");
        };
        let sentence = error.to_string();
        assert!(
            sentence.starts_with("cannot read the lzma header: "),
            "{sentence}"
        );
    }

    #[test]
    fn sniffs_compressors_and_nothing_else() {
        assert_eq!(sniff(fixture!("joblib-plain.joblib")), None);
        assert_eq!(sniff(fixture!("values-p0.pkl")), None);
        for other in [
            b"x^ is not zlib".as_slice(),
            b"x\x9c garbage that does not inflate",
            b"{\"a\": 1}",
            b"\x7fELF\x02\x01\x01\x00",
            b"PK\x03\x04",
            b"BZ",
            b"]\x00\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00\x00",
            b"",
        ] {
            assert_eq!(sniff(other), None, "{other:?}");
        }
    }
}
