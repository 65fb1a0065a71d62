//! Just enough ELF (64-bit, little-endian: x86_64 and aarch64 Linux) to read a library
//! without loading it: its sections by name, and the `DT_NEEDED` and `RPATH`/`RUNPATH` of its
//! dynamic section. Every offset comes from untrusted bytes and is bounds-checked; a file that
//! is not such an ELF gives nothing.
//!
//! Why not `object` or `goblin`: neither is in the dependency tree (each adds build time for
//! every user), and envlock needs four reads — the section headers, two string sections and
//! the dynamic section — at offsets of a file that may be 1 GB (a CUDA library) and is read
//! by random access on the host, or is a bounded head streamed out of an image. Those four
//! reads, bounds-checked and property-tested, are this file.

/// Reads `len` bytes at `offset` of the file, or `None` past its end.
pub(super) type ReadAt<'a> = dyn Fn(u64, usize) -> Option<Vec<u8>> + 'a;

/// The largest section read.
const SECTION_LIMIT: u64 = 16 << 20;

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

/// A section: its name, type, and where its bytes are.
struct Section {
    name: String,
    kind: u32,
    offset: u64,
    size: u64,
    link: u32,
}

fn sections(read: &ReadAt<'_>) -> Option<Vec<Section>> {
    let header = read(0, 64)?;
    // `\x7fELF`, 64-bit, little-endian.
    if header.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let table = u64_at(&header, 0x28)?;
    let entry = usize::from(u16_at(&header, 0x3a)?);
    let count = usize::from(u16_at(&header, 0x3c)?);
    let names_index = usize::from(u16_at(&header, 0x3e)?);
    if entry < 64 || count == 0 || count > 4096 {
        return None;
    }
    let raw = read(table, entry * count)?;
    let mut found: Vec<Section> = (0..count)
        .map(|index| {
            let at = index * entry;
            Some(Section {
                name: u32_at(&raw, at)?.to_string(),
                kind: u32_at(&raw, at + 4)?,
                offset: u64_at(&raw, at + 24)?,
                size: u64_at(&raw, at + 32)?,
                link: u32_at(&raw, at + 40)?,
            })
        })
        .collect::<Option<_>>()?;
    let names = found.get(names_index)?;
    let names = read(names.offset, usize::try_from(names.size.min(1 << 20)).ok()?)?;
    for section in &mut found {
        let start = section.name.parse::<usize>().ok()?;
        section.name = c_string(&names, start).unwrap_or_default();
    }
    Some(found)
}

fn c_string(bytes: &[u8], start: usize) -> Option<String> {
    let rest = bytes.get(start..)?;
    let end = rest.iter().position(|b| *b == 0)?;
    Some(String::from_utf8_lossy(&rest[..end]).into_owned())
}

fn section_bytes(read: &ReadAt<'_>, section: &Section) -> Option<Vec<u8>> {
    read(
        section.offset,
        usize::try_from(section.size.min(SECTION_LIMIT)).ok()?,
    )
}

/// Where the section `name` is: its offset and size.
pub(super) fn section(read: &ReadAt<'_>, name: &str) -> Option<(u64, u64)> {
    sections(read)?
        .into_iter()
        .find(|section| section.name == name)
        .map(|section| (section.offset, section.size))
}

/// The bytes of the read-only data and comment sections, where version strings live.
pub(super) fn strings(read: &ReadAt<'_>) -> Option<Vec<u8>> {
    let sections = sections(read)?;
    let mut bytes = Vec::new();
    for section in sections
        .iter()
        .filter(|s| s.name == ".rodata" || s.name == ".comment")
    {
        bytes.extend(section_bytes(read, section)?);
        bytes.push(0);
    }
    Some(bytes)
}

/// What a shared object asks the dynamic linker for.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Dynamic {
    /// `DT_NEEDED` names, in order.
    pub(super) needed: Vec<String>,
    /// `DT_RUNPATH` (else `DT_RPATH`) folders, `$ORIGIN` unexpanded.
    pub(super) search: Vec<String>,
}

/// The dynamic section of a shared object.
pub(super) fn dynamic(read: &ReadAt<'_>) -> Option<Dynamic> {
    const SHT_DYNAMIC: u32 = 6;
    let sections = sections(read)?;
    let table = sections.iter().find(|s| s.kind == SHT_DYNAMIC)?;
    let strings = sections.get(usize::try_from(table.link).ok()?)?;
    let (entries, strings) = (section_bytes(read, table)?, section_bytes(read, strings)?);
    let mut found = Dynamic::default();
    let (mut rpath, mut runpath) = (Vec::new(), Vec::new());
    for entry in entries.chunks_exact(16) {
        let (tag, value) = (u64_at(entry, 0)?, u64_at(entry, 8)?);
        let text = || c_string(&strings, usize::try_from(value).ok()?);
        match tag {
            0 => break,
            1 => found.needed.extend(text()),
            15 => rpath.extend(text()),
            29 => runpath.extend(text()),
            _ => {}
        }
    }
    let search = if runpath.is_empty() { rpath } else { runpath };
    found.search = search
        .iter()
        .flat_map(|paths| paths.split(':'))
        .filter(|path| !path.is_empty())
        .map(str::to_string)
        .collect();
    Some(found)
}

/// A reader over bytes held in memory.
pub(super) fn in_memory(bytes: &[u8]) -> impl Fn(u64, usize) -> Option<Vec<u8>> + '_ {
    move |offset, len| {
        let start = usize::try_from(offset).ok()?;
        bytes
            .get(start..start.checked_add(len)?)
            .map(<[u8]>::to_vec)
    }
}

/// For the fuzz targets (`src/fuzzing.rs`): an ELF file.
pub(super) fn fuzz(bytes: &[u8]) {
    let read = in_memory(bytes);
    let _ = strings(&read);
    let _ = dynamic(&read);
    let _ = super::fatbin::read(&read);
    let mut stream = super::fatbin::Streamed::new();
    for chunk in bytes.chunks(4096) {
        stream.push(chunk);
    }
    let _ = stream.finish();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_test_binary_has_sections_and_garbage_has_none() {
        let bytes = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let read = in_memory(&bytes);
        assert!(strings(&read).is_some_and(|bytes| !bytes.is_empty()));
        let linked = dynamic(&read).expect("a dynamically linked test binary");
        assert!(
            linked.needed.iter().any(|name| name.starts_with("libc.so")),
            "{linked:?}"
        );
        assert!(strings(&in_memory(b"\x7fELF\x02\x01garbage")).is_none());
        assert!(dynamic(&in_memory(b"")).is_none());
    }

    proptest::proptest! {
        #[test]
        fn hostile_elves_never_panic(mut bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..4096)) {
            if bytes.len() >= 6 {
                bytes[..6].copy_from_slice(b"\x7fELF\x02\x01");
            }
            let read = in_memory(&bytes);
            let _ = strings(&read);
            let _ = dynamic(&read);
        }
    }
}
