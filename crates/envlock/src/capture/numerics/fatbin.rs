//! The GPU code compiled into a CUDA library: the fatbins of its `.nv_fatbin` section, each
//! a header (magic `0xBA55ED50`, version 1, header size, body size) and a list of entries —
//! machine code (SASS, kind 2) or PTX (kind 1) for one architecture, whose number (`sm_80`
//! is 80) is a little after the start of the entry's header. Only headers are read: an
//! entry's payload (often compressed) is skipped by its size.
//!
//! One walk, fed the bytes it asks for: on the host it is given the section's bytes where
//! it wants them (random access), from an image the whole file as it streams past (every
//! byte, since the file is hashed anyway). A fatbin is taken only when its header and every
//! entry agree with its body's size, so the magic met by chance in code is not one.

use std::collections::BTreeSet;

use super::elf::{self, ReadAt};
use crate::lock::GpuCode;

/// `fatBinaryHeader.magic`, little-endian in the file.
const MAGIC: [u8; 4] = 0xBA55_ED50_u32.to_le_bytes();
/// The fatbin header: magic, version, header size, body size.
const HEADER: u64 = 16;
/// The part of an entry's header read: kind, version, header size, payload size, …,
/// the architecture at 28.
const ENTRY: u64 = 32;
/// Entries of one fatbin beyond this make it no fatbin.
const ENTRY_LIMIT: usize = 1024;
/// Distinct entry lists kept (a library's kernels are compiled for a few lists).
const LIST_LIMIT: usize = 256;

const KIND_PTX: u16 = 1;
const KIND_SASS: u16 = 2;

/// A fatbin's entries, sorted: `(kind, architecture)`.
pub(super) type Entries = Vec<(u16, u32)>;

/// A walk over a file's fatbins between two offsets.
#[derive(Debug)]
pub(super) struct Walk {
    /// The next offset wanted.
    at: u64,
    /// The end of the region walked (the section's, or the file's).
    end: u64,
    /// The fatbin being read: where it starts, where its body ends, its entries so far.
    current: Option<(u64, u64, Entries)>,
    /// The distinct entry lists of the fatbins read.
    lists: BTreeSet<Entries>,
    fatbins: u64,
}

impl Walk {
    /// A walk of the region `start..end` of a file.
    pub(super) fn new(start: u64, end: u64) -> Walk {
        Walk {
            at: start,
            end,
            current: None,
            lists: BTreeSet::new(),
            fatbins: 0,
        }
    }

    /// Where the walk wants bytes next and how many at least; `None` when it is done.
    pub(super) fn wanted(&self) -> Option<(u64, u64)> {
        let want = match self.current {
            Some(_) => ENTRY,
            None => 4096,
        };
        (self.at < self.end || self.current.is_some())
            .then(|| (self.at, want.min(self.end.saturating_sub(self.at))))
    }

    /// Reads what it can of `bytes`, which are the file's from offset `start` (at or
    /// before [`Walk::wanted`]'s offset).
    pub(super) fn step(&mut self, start: u64, bytes: &[u8]) {
        let window_end = start.saturating_add(bytes.len() as u64).min(self.end);
        let slice = |from: u64, len: u64| -> Option<&[u8]> {
            let end = from.checked_add(len)?;
            if from < start || end > window_end {
                return None;
            }
            bytes.get(usize::try_from(from - start).ok()?..usize::try_from(end - start).ok()?)
        };
        loop {
            if self.current.is_none() && self.at >= self.end {
                return;
            }
            match self.current.take() {
                None => {
                    // Fatbins sit at 8-byte boundaries of the file.
                    let Some(aligned) = self.at.checked_next_multiple_of(8) else {
                        self.at = self.end;
                        return;
                    };
                    self.at = aligned;
                    if self.at.saturating_add(HEADER) > self.end {
                        self.at = self.end;
                        return;
                    }
                    if self.at < start {
                        // Back before the window (past a candidate that was no fatbin):
                        // the bytes from there are asked for again.
                        return;
                    }
                    let searched = usize::try_from(self.at.saturating_sub(start))
                        .ok()
                        .and_then(|from| bytes.get(from..))
                        .unwrap_or_default();
                    let found = memchr::memmem::find_iter(searched, &MAGIC)
                        .map(|at| self.at + at as u64)
                        .find(|at| at % 8 == 0);
                    let Some(magic) = found else {
                        // A magic may begin in the last three bytes of the window.
                        let rest = window_end.saturating_sub(3).next_multiple_of(8);
                        self.at = self.at.max(rest);
                        return;
                    };
                    self.at = magic;
                    let Some(header) = slice(magic, HEADER) else {
                        return;
                    };
                    if let Some(body_end) = self.header(header) {
                        self.current = Some((magic, body_end, Vec::new()));
                        self.at += HEADER;
                    } else {
                        self.at += 8;
                    }
                }
                Some((begin, body_end, mut entries)) => {
                    if self.at == body_end {
                        if body_end > window_end {
                            // Its last payload has not been seen: the file may end first.
                            self.current = Some((begin, body_end, entries));
                            return;
                        }
                        self.fatbins += 1;
                        entries.sort_unstable();
                        entries.dedup();
                        if self.lists.len() < LIST_LIMIT || self.lists.contains(&entries) {
                            self.lists.insert(entries);
                        }
                        continue;
                    }
                    if self.at.saturating_add(ENTRY) > body_end {
                        self.at = begin + 8;
                        continue;
                    }
                    let Some(entry) = slice(self.at, ENTRY) else {
                        self.current = Some((begin, body_end, entries));
                        return;
                    };
                    match entry_of(entry) {
                        Some((kind, arch, next))
                            if entries.len() < ENTRY_LIMIT
                                && self.at.checked_add(next).is_some_and(|n| n <= body_end) =>
                        {
                            if kind == KIND_PTX || kind == KIND_SASS {
                                entries.push((kind, arch));
                            }
                            self.at += next;
                            self.current = Some((begin, body_end, entries));
                        }
                        // Not a fatbin after all: look again just past its magic.
                        _ => self.at = begin + 8,
                    }
                }
            }
        }
    }

    /// The end of the body of the fatbin whose header this is, if it is one that fits.
    fn header(&self, header: &[u8]) -> Option<u64> {
        if header[..4] != MAGIC {
            return None;
        }
        let version = u16::from_le_bytes([header[4], header[5]]);
        let size = u16::from_le_bytes([header[6], header[7]]);
        let body = u64::from_le_bytes(header[8..16].try_into().ok()?);
        if version != 1 || u64::from(size) != HEADER || body == 0 {
            return None;
        }
        let end = self.at.checked_add(HEADER)?.checked_add(body)?;
        (end <= self.end).then_some(end)
    }

    /// Goes on from `offset` when, looking for a fatbin, it wants bytes before it (a stream
    /// cannot give them); whether it did.
    fn resume(&mut self, offset: u64) -> bool {
        let resumed = self.current.is_none() && self.at < offset;
        if resumed {
            self.at = offset;
        }
        resumed
    }

    /// What the walk found: `None` when the region held no fatbin.
    pub(super) fn finish(self) -> Option<GpuCode> {
        (self.fatbins > 0).then(|| code_of(&self.lists))
    }
}

/// The GPU code of fatbins with these distinct entry lists (`(kind, architecture)`): what
/// a walk found, or the probe inside an image.
pub(super) fn code_of(lists: &BTreeSet<Entries>) -> GpuCode {
    let name = |(kind, arch): &(u16, u32)| match *kind {
        KIND_PTX => format!("compute_{arch}"),
        _ => format!("sm_{arch}"),
    };
    let all: BTreeSet<&(u16, u32)> = lists
        .iter()
        .flatten()
        .filter(|(kind, _)| *kind == KIND_PTX || *kind == KIND_SASS)
        .collect();
    let of_kind = |kind: u16| -> Vec<String> {
        all.iter()
            .filter(|entry| entry.0 == kind)
            .map(|entry| name(entry))
            .collect()
    };
    // A fatbin with no SASS or PTX (other kinds of entries only) says nothing of either.
    let coded: Vec<&Entries> = lists
        .iter()
        .filter(|list| {
            list.iter()
                .any(|(kind, _)| *kind == KIND_PTX || *kind == KIND_SASS)
        })
        .collect();
    let partial = all
        .iter()
        .filter(|entry| !coded.iter().all(|list| list.contains(entry)))
        .map(|entry| name(entry))
        .collect();
    GpuCode {
        sass: of_kind(KIND_SASS),
        ptx: of_kind(KIND_PTX),
        partial,
    }
}

/// The GPU code of the ELF file `read` reads, from its `.nv_fatbin` section.
pub(super) fn read(read: &ReadAt<'_>) -> Option<GpuCode> {
    let (offset, size) = elf::section(read, ".nv_fatbin")?;
    let mut walk = Walk::new(offset, offset.checked_add(size)?);
    while let Some((at, want)) = walk.wanted() {
        let Some(bytes) = read(at, usize::try_from(want).ok()?) else {
            break;
        };
        walk.step(at, &bytes);
        if walk.wanted() == Some((at, want)) {
            // What it wants is not there to read.
            break;
        }
    }
    walk.finish()
}

/// An entry's kind, architecture, and the distance to the next entry (its header and its
/// padded payload), if its header is sane.
fn entry_of(entry: &[u8]) -> Option<(u16, u32, u64)> {
    let kind = u16::from_le_bytes(entry.get(0..2)?.try_into().ok()?);
    let header = u32::from_le_bytes(entry.get(4..8)?.try_into().ok()?);
    let payload = u64::from_le_bytes(entry.get(8..16)?.try_into().ok()?);
    let arch = u32::from_le_bytes(entry.get(28..32)?.try_into().ok()?);
    if u64::from(header) < ENTRY || header > 4096 || kind == 0 || arch > 10_000 {
        return None;
    }
    Some((kind, arch, u64::from(header).checked_add(payload)?))
}

/// A walk over a stream: keeps the bytes of a boundary the walk waits on, skips the rest.
pub(super) struct Streamed {
    walk: Walk,
    /// The bytes kept, from `offset`.
    kept: Vec<u8>,
    offset: u64,
}

impl Streamed {
    pub(super) fn new() -> Streamed {
        Streamed {
            walk: Walk::new(0, u64::MAX),
            kept: Vec::new(),
            offset: 0,
        }
    }

    /// The stream's next `chunk`.
    pub(super) fn push(&mut self, chunk: &[u8]) {
        let chunk_start = self.offset + self.kept.len() as u64;
        let chunk_end = chunk_start + chunk.len() as u64;
        let Some((at, _)) = self.walk.wanted() else {
            return;
        };
        if at >= chunk_end {
            // Inside a payload: nothing of this chunk is wanted.
            self.kept.clear();
            self.offset = chunk_end;
            return;
        }
        if at > chunk_start || self.kept.is_empty() {
            // Start from what is wanted.
            let skip = usize::try_from(at.saturating_sub(chunk_start)).unwrap_or(chunk.len());
            self.kept.clear();
            self.kept.extend_from_slice(&chunk[skip.min(chunk.len())..]);
            self.offset = chunk_start + skip as u64;
        } else {
            self.kept.extend_from_slice(chunk);
        }
        self.step();
        // Keep only from what the walk waits on.
        let at = self.walk.wanted().map_or(chunk_end, |(at, _)| at);
        let drop = usize::try_from(at.saturating_sub(self.offset))
            .unwrap_or(usize::MAX)
            .min(self.kept.len());
        self.kept.drain(..drop);
        self.offset += drop as u64;
    }

    /// What the stream held.
    pub(super) fn finish(mut self) -> Option<GpuCode> {
        // A fatbin that ends where the file does is complete once the end is seen.
        self.offset += self.kept.len() as u64;
        self.kept.clear();
        self.step();
        self.walk.finish()
    }

    /// Walks the bytes kept. A candidate that turns out no fatbin sends the walk back to
    /// just past its magic, bytes a stream no longer has (it kept none of the payloads it
    /// skipped): the walk goes on from the first byte kept, so a fatbin hidden inside such
    /// a candidate is not seen from a stream (NVIDIA's tools write none).
    fn step(&mut self) {
        loop {
            self.walk.step(self.offset, &self.kept);
            // Inside a fatbin at the stream's end, it waits for what will not come.
            let behind = self.walk.wanted().is_some_and(|(at, _)| at < self.offset);
            if !(behind && self.walk.resume(self.offset)) {
                return;
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A fatbin of `entries` (`(kind, arch, payload length)`), as NVIDIA's tools lay it out.
    pub(crate) fn fatbin(entries: &[(u16, u32, usize)]) -> Vec<u8> {
        let mut body = Vec::new();
        for &(kind, arch, payload) in entries {
            let mut header = vec![0u8; 64];
            header[0..2].copy_from_slice(&kind.to_le_bytes());
            header[2..4].copy_from_slice(&0x101u16.to_le_bytes());
            header[4..8].copy_from_slice(&64u32.to_le_bytes());
            header[8..16].copy_from_slice(&(payload as u64).to_le_bytes());
            header[28..32].copy_from_slice(&arch.to_le_bytes());
            body.extend(header);
            body.extend(std::iter::repeat_n(0xAB, payload));
        }
        let mut bytes = MAGIC.to_vec();
        bytes.extend(1u16.to_le_bytes());
        bytes.extend(16u16.to_le_bytes());
        bytes.extend((body.len() as u64).to_le_bytes());
        bytes.extend(body);
        bytes
    }

    fn walked(bytes: &[u8]) -> Option<GpuCode> {
        let mut walk = Walk::new(0, bytes.len() as u64);
        walk.step(0, bytes);
        walk.finish()
    }

    /// As the host reads a section: only the bytes the walk asks for, where it asks.
    fn read_as_asked(bytes: &[u8]) -> Option<GpuCode> {
        let mut walk = Walk::new(0, bytes.len() as u64);
        while let Some((at, want)) = walk.wanted() {
            let start = usize::try_from(at).unwrap();
            let Some(asked) = bytes.get(start..start + usize::try_from(want).unwrap()) else {
                break;
            };
            walk.step(at, asked);
            if walk.wanted() == Some((at, want)) {
                break;
            }
        }
        walk.finish()
    }

    fn streamed(bytes: &[u8], chunk: usize) -> Option<GpuCode> {
        let mut stream = Streamed::new();
        for piece in bytes.chunks(chunk) {
            stream.push(piece);
        }
        stream.finish()
    }

    #[test]
    fn entries_are_read_by_kind_and_architecture_and_payloads_skipped() {
        let mut bytes = vec![0u8; 24];
        bytes.extend(fatbin(&[(2, 75, 1000), (2, 90, 13), (1, 90, 7)]));
        while !bytes.len().is_multiple_of(8) {
            bytes.push(0);
        }
        bytes.extend(fatbin(&[(2, 75, 5), (2, 90, 5)]));
        bytes.extend([0u8; 40]);
        let code = walked(&bytes).expect("two fatbins");
        assert_eq!(read_as_asked(&bytes).as_ref(), Some(&code));
        assert_eq!(code.sass, ["sm_75", "sm_90"]);
        assert_eq!(code.ptx, ["compute_90"]);
        // The second fatbin has no PTX: only some kernels can be compiled from it.
        assert_eq!(code.partial, ["compute_90"]);
        for chunk in [1, 7, 8, 63, 64, 1000, 1 << 20] {
            assert_eq!(streamed(&bytes, chunk).as_ref(), Some(&code), "{chunk}");
        }
    }

    #[test]
    fn what_does_not_add_up_is_no_fatbin() {
        let good = fatbin(&[(2, 80, 16)]);
        // A body larger than the region, an entry past the body, a header of another size.
        let mut long = good.clone();
        long[8..16].copy_from_slice(&(u64::MAX - 8).to_le_bytes());
        let mut spilling = good.clone();
        spilling[16 + 8..16 + 16].copy_from_slice(&1_000_000u64.to_le_bytes());
        let mut other = good.clone();
        other[6..8].copy_from_slice(&24u16.to_le_bytes());
        let truncated = &good[..good.len() - 1];
        for (index, bytes) in [&long[..], &spilling, &other, truncated, &MAGIC]
            .into_iter()
            .enumerate()
        {
            assert_eq!(walked(bytes), None, "{index}");
            assert_eq!(streamed(bytes, 5), None, "{index}");
        }
        // Unknown kinds are skipped by their size; the fatbin still counts.
        let odd = fatbin(&[(7, 80, 3), (2, 86, 3)]);
        assert_eq!(walked(&odd).unwrap().sass, ["sm_86"]);
    }

    #[test]
    fn a_candidate_that_is_no_fatbin_is_looked_past() {
        // A magic whose first entry's payload hides a real fatbin, and whose second entry
        // is garbage: no fatbin there, but the one inside it is, where the bytes are read.
        let real = fatbin(&[(2, 80, 8)]);
        let mut bytes = fatbin(&[(2, 70, 5000), (2, 75, 8)]);
        bytes[16 + 64..16 + 64 + real.len()].copy_from_slice(&real);
        let second = 16 + 64 + 5000;
        bytes[second + 4..second + 8].copy_from_slice(&1u32.to_le_bytes());
        let found = Some(GpuCode {
            sass: vec!["sm_80".into()],
            ..GpuCode::default()
        });
        assert_eq!(walked(&bytes), found);
        assert_eq!(read_as_asked(&bytes), found);
        // A stream has passed those bytes by: it goes on, finding nothing, and never keeps
        // more than it waits on.
        for chunk in [7, 64, 4096] {
            assert_eq!(streamed(&bytes, chunk), None, "{chunk}");
        }
        let mut stream = Streamed::new();
        let mut long = bytes.clone();
        long.extend(std::iter::repeat_n(0u8, 1 << 20));
        for piece in long.chunks(4096) {
            stream.push(piece);
            assert!(stream.kept.len() <= 2 * 4096, "{}", stream.kept.len());
        }
    }

    proptest::proptest! {
        #[test]
        fn a_stream_in_any_chunks_finds_what_the_walk_finds(
            noise in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            arches in proptest::collection::vec((1u16..3, 50u32..130, 0usize..200), 1..6),
            chunk in 1usize..300,
        ) {
            let mut bytes = noise;
            bytes.resize(bytes.len().next_multiple_of(8), 0);
            bytes.extend(fatbin(&arches));
            proptest::prop_assert!(walked(&bytes).is_some());
            proptest::prop_assert_eq!(streamed(&bytes, chunk), walked(&bytes));
            proptest::prop_assert_eq!(read_as_asked(&bytes), walked(&bytes));
        }

        #[test]
        fn hostile_fatbins_never_panic(
            mut bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048),
            chunk in 1usize..512,
        ) {
            if bytes.len() >= 16 {
                bytes[..4].copy_from_slice(&MAGIC);
                bytes[4..8].copy_from_slice(&[1, 0, 16, 0]);
            }
            let _ = walked(&bytes);
            let _ = streamed(&bytes, chunk);
        }
    }
}
