//! The table of loaded modules (executable, shared libraries, vDSO): their address ranges, load
//! bias and unwind tables, built on the reporting thread.
//!
//! The table comes from `/proc/self/maps` and the ELF program headers as they are mapped in our
//! own memory, read through `/proc/self/mem` (see [`super::sys::read_own_memory`]). It does not
//! use `dl_iterate_phdr`, which takes the dynamic loader's lock: a thread stuck inside `dlopen`
//! (a hung library constructor) would otherwise hang the report too. It does not read the files
//! on disk either, which may have been replaced by a deployment since they were loaded.
//!
//! For each module the `.eh_frame_hdr` (from `PT_GNU_EH_FRAME`) and the `.eh_frame` it points to
//! are copied into owned buffers handed to framehop, so a library unloaded by `dlclose` while we
//! unwind cannot make us read unmapped memory. Modules are cached by path, inode and address
//! across reports; the framehop unwinder is rebuilt only when the set of modules changes.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use framehop::{ExplicitModuleSectionInfo, Module, Unwinder};

use super::sys::read_own_memory;

/// The unwinder type: native architecture, owned section data.
pub(crate) type NativeUnwinder =
    framehop::UnwinderNative<Vec<u8>, framehop::MayAllocateDuringUnwind>;

/// Largest `.eh_frame` we copy (a larger one is truncated; unwinding through its tail falls back
/// to frame pointers).
const MAX_EH_FRAME: usize = 64 << 20;

/// A loaded module as the report names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ModuleInfo {
    /// File name (no directory), or `[vdso]`.
    pub(crate) name: Arc<str>,
    /// Full path as in `/proc/self/maps`.
    pub(crate) path: Arc<str>,
    /// Load bias: runtime address minus the address stated in the file.
    pub(crate) bias: u64,
    /// Mapped address range (all `PT_LOAD` segments).
    pub(crate) range: Range<u64>,
    /// The file as it was mapped: device (major, minor) and inode, from `/proc/self/maps`. A
    /// file at `path` with another identity is not the one in memory (replaced on disk).
    pub(crate) file_id: FileId,
    /// `/proc/self/map_files/<start>-<end>` of its first mapping: opens the mapped file even
    /// when `path` was replaced or deleted.
    pub(crate) map_files: Option<Arc<str>>,
    /// The GNU build-id (`NT_GNU_BUILD_ID`), hex, read from the mapped notes: what finds the
    /// module's debug files offline (`gmr symbolize`).
    pub(crate) build_id: Option<Arc<str>>,
}

/// The identity of a mapped file: device (major, minor) and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub(crate) struct FileId {
    /// Device major number.
    pub(crate) major: u32,
    /// Device minor number.
    pub(crate) minor: u32,
    /// Inode.
    pub(crate) inode: u64,
}

impl FileId {
    /// The identity of the file `metadata` describes.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub(crate) fn of(metadata: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt as _;
        let dev = metadata.dev();
        FileId {
            // The kernel's encoding of `dev_t` (new_encode_dev).
            major: (((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff)) as u32,
            minor: ((dev & 0xff) | ((dev >> 12) & !0xff)) as u32,
            inode: metadata.ino(),
        }
    }
}

/// One executable object found in `/proc/self/maps`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct MapsObject {
    path: String,
    file_id: FileId,
    /// Start and end of its mapping at file offset 0: the ELF header.
    header: u64,
    header_end: u64,
}

/// What one read of `/proc/self/maps` gives the capture.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Maps {
    /// The objects that have an executable mapping.
    objects: Vec<MapsObject>,
    /// Every mapping's `[start, end)`, sorted: the bounds of the stack copies (see
    /// [`super::handler::MapTable`]).
    pub(crate) ranges: Vec<(u64, u64)>,
}

/// Parses `/proc/self/maps`. Bytes, one line at a time: a file name may hold any byte (the
/// kernel shows a newline in it as `\012`), and a line that does not parse is skipped alone,
/// never the whole table. Names are converted lossily.
fn parse_maps(bytes: &[u8]) -> Maps {
    let mut headers: HashMap<(String, FileId), (u64, u64)> = HashMap::new();
    let mut executable: Vec<(String, FileId)> = Vec::new();
    let mut ranges = Vec::new();
    for line in bytes.split(|&b| b == b'\n') {
        let mut f = line.splitn(6, |&b| b == b' ');
        let (Some(range), Some(perms), Some(offset), Some(dev), Some(inode)) =
            (f.next(), f.next(), f.next(), f.next(), f.next())
        else {
            continue;
        };
        let ascii = |b: &[u8]| std::str::from_utf8(b).ok().map(str::to_owned);
        let (Some(range), Some(offset), Some(dev), Some(inode)) =
            (ascii(range), ascii(offset), ascii(dev), ascii(inode))
        else {
            continue;
        };
        let (Some((start, end)), Some((major, minor))) =
            (range.split_once('-'), dev.split_once(':'))
        else {
            continue;
        };
        let (Ok(start), Ok(end), Ok(offset), Ok(major), Ok(minor), Ok(inode)) = (
            u64::from_str_radix(start, 16),
            u64::from_str_radix(end, 16),
            u64::from_str_radix(&offset, 16),
            u32::from_str_radix(major, 16),
            u32::from_str_radix(minor, 16),
            inode.parse::<u64>(),
        ) else {
            continue;
        };
        ranges.push((start, end));
        let raw_path = f.next().unwrap_or_default();
        let path = String::from_utf8_lossy(raw_path);
        let path = path.trim_start();
        if path.is_empty() || !(path.starts_with('/') || path == "[vdso]") {
            continue;
        }
        let path = path.strip_suffix(" (deleted)").unwrap_or(path).to_owned();
        let key = (
            path,
            FileId {
                major,
                minor,
                inode,
            },
        );
        if offset == 0 {
            headers.entry(key.clone()).or_insert((start, end));
        }
        if perms.get(2) == Some(&b'x') && !executable.contains(&key) {
            executable.push(key);
        }
    }
    ranges.sort_unstable();
    let objects = executable
        .into_iter()
        .filter_map(|key| {
            let (header, header_end) = *headers.get(&key)?;
            Some(MapsObject {
                path: key.0,
                file_id: key.1,
                header,
                header_end,
            })
        })
        .collect();
    Maps { objects, ranges }
}

/// What [`ModuleTable::refresh`] found.
#[derive(Debug)]
pub(crate) struct Refreshed {
    /// Whether the table changed (a module was mapped or unmapped).
    pub(crate) changed: bool,
    /// Every mapping's `[start, end)`, sorted.
    pub(crate) ranges: Vec<(u64, u64)>,
}

/// A module as the report names it, with its framehop module.
type BuiltModule = (ModuleInfo, Module<Vec<u8>>);

/// The module table with its unwinder.
pub(crate) struct ModuleTable {
    /// Modules sorted by start address.
    modules: Vec<ModuleInfo>,
    unwinder: NativeUnwinder,
    /// What the table was built from, to skip rebuilding when nothing changed.
    objects: Vec<MapsObject>,
    /// Built modules by object, reused across rebuilds.
    cache: HashMap<MapsObject, Option<BuiltModule>>,
}

impl std::fmt::Debug for ModuleTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModuleTable")
            .field("modules", &self.modules)
            .finish_non_exhaustive()
    }
}

impl ModuleTable {
    /// An empty table.
    pub(crate) fn new() -> Self {
        ModuleTable {
            modules: Vec::new(),
            unwinder: NativeUnwinder::new(),
            objects: Vec::new(),
            cache: HashMap::new(),
        }
    }

    /// Brings the table up to date with the maps of the process: whether it changed, and
    /// every mapping's range (for the stack copies' bounds).
    ///
    /// Read through `/proc/thread-self/maps`: once the main thread has called `pthread_exit`,
    /// the leader's `/proc/self/maps` is empty.
    pub(crate) fn refresh(&mut self) -> std::io::Result<Refreshed> {
        let bytes = std::fs::read("/proc/thread-self/maps")
            .or_else(|_| std::fs::read(format!("/proc/self/task/{}/maps", super::sys::gettid())))?;
        let Maps { objects, ranges } = parse_maps(&bytes);
        if objects == self.objects {
            return Ok(Refreshed {
                changed: false,
                ranges,
            });
        }
        // Forget modules no longer mapped (their unwind data is owned memory).
        self.cache.retain(|k, _| objects.contains(k));
        let mut unwinder = NativeUnwinder::new();
        let mut modules = Vec::with_capacity(objects.len());
        for object in &objects {
            let entry = self
                .cache
                .entry(object.clone())
                .or_insert_with(|| build_module(object));
            if let Some((info, module)) = entry {
                unwinder.add_module(module.clone());
                modules.push(info.clone());
            }
        }
        modules.sort_by_key(|m| m.range.start);
        self.modules = modules;
        self.unwinder = unwinder;
        self.objects = objects;
        Ok(Refreshed {
            changed: true,
            ranges,
        })
    }

    /// The modules, sorted by start address.
    pub(crate) fn modules(&self) -> &[ModuleInfo] {
        &self.modules
    }

    /// The module containing `addr`.
    pub(crate) fn find(&self, addr: u64) -> Option<&ModuleInfo> {
        let i = self.modules.partition_point(|m| m.range.start <= addr);
        let m = self.modules.get(i.checked_sub(1)?)?;
        m.range.contains(&addr).then_some(m)
    }

    /// The unwinder holding every module's unwind tables.
    pub(crate) fn unwinder(&self) -> &NativeUnwinder {
        &self.unwinder
    }
}

fn read_exact(addr: u64, len: usize) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let n = read_own_memory(addr, &mut buf).ok()?;
    (n == len).then_some(buf)
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const PT_GNU_EH_FRAME: u32 = 0x6474_e550;
/// The type of the GNU build-id note.
const NT_GNU_BUILD_ID: u32 = 3;
/// The largest note segment read for the build-id.
const MAX_NOTES: u64 = 64 << 10;
const PF_X: u32 = 1;

#[derive(Debug, Clone, Copy)]
struct Phdr {
    kind: u32,
    flags: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
    memsz: u64,
    align: u64,
}

/// Reads the ELF header and program headers of the object mapped at `header` and builds its
/// framehop module. `None` if it is not a 64-bit little-endian ELF or cannot be read.
fn build_module(object: &MapsObject) -> Option<BuiltModule> {
    let ehdr = read_exact(object.header, 64)?;
    if ehdr.get(..4)? != b"\x7fELF" || *ehdr.get(4)? != 2 || *ehdr.get(5)? != 1 {
        return None;
    }
    let phoff = u64_at(&ehdr, 0x20)?;
    let phentsize = usize::from(u16_at(&ehdr, 0x36)?);
    let phnum = usize::from(u16_at(&ehdr, 0x38)?);
    if phentsize < 56 || phnum == 0 || phnum > 512 {
        return None;
    }
    let raw = read_exact(object.header.checked_add(phoff)?, phentsize * phnum)?;
    let phdrs: Vec<Phdr> = (0..phnum)
        .filter_map(|i| {
            let b = raw.get(i * phentsize..(i + 1) * phentsize)?;
            Some(Phdr {
                kind: u32_at(b, 0)?,
                flags: u32_at(b, 4)?,
                offset: u64_at(b, 8)?,
                vaddr: u64_at(b, 16)?,
                filesz: u64_at(b, 32)?,
                memsz: u64_at(b, 40)?,
                align: u64_at(b, 48)?,
            })
        })
        .collect();
    let loads: Vec<&Phdr> = phdrs.iter().filter(|p| p.kind == PT_LOAD).collect();
    // The mapping at file offset 0 is the segment with offset 0, so its stated address is the
    // header's: the difference is the load bias (0 for a non-PIE executable).
    let first = loads.iter().find(|p| p.offset == 0).or(loads.first())?;
    let bias = object
        .header
        .wrapping_sub(first.vaddr - first.offset.min(first.vaddr));
    let lo = loads.iter().map(|p| p.vaddr).min()?;
    let hi = loads
        .iter()
        .map(|p| p.vaddr.saturating_add(p.memsz))
        .max()?;
    let range = bias.wrapping_add(lo)..bias.wrapping_add(hi);
    let name: Arc<str> = Arc::from(object.path.rsplit('/').next().unwrap_or(&object.path));
    let info = ModuleInfo {
        name: name.clone(),
        path: Arc::from(object.path.as_str()),
        bias,
        range: range.clone(),
        file_id: object.file_id,
        map_files: object.path.starts_with('/').then(|| {
            Arc::from(format!(
                "/proc/self/map_files/{:x}-{:x}",
                object.header, object.header_end
            ))
        }),
        build_id: phdrs
            .iter()
            .filter(|p| p.kind == PT_NOTE)
            .find_map(|p| {
                let notes = read_exact(
                    bias.wrapping_add(p.vaddr),
                    usize::try_from(p.filesz.min(MAX_NOTES)).ok()?,
                )?;
                gnu_build_id(&notes, p.align)
            })
            .map(|id| Arc::from(id.as_str())),
    };

    let text_svma = loads
        .iter()
        .find(|p| p.flags & PF_X != 0)
        .map(|p| p.vaddr..p.vaddr.saturating_add(p.memsz));
    let mut sections = ExplicitModuleSectionInfo {
        base_svma: 0,
        text_svma,
        ..Default::default()
    };
    if let Some(hdr_ph) = phdrs.iter().find(|p| p.kind == PT_GNU_EH_FRAME)
        && let Some((hdr, eh_svma, eh)) = read_eh_frame(bias, hdr_ph, &loads)
    {
        sections.eh_frame_hdr_svma = Some(hdr_ph.vaddr..hdr_ph.vaddr + hdr.len() as u64);
        sections.eh_frame_hdr = Some(hdr);
        sections.eh_frame_svma = Some(eh_svma..eh_svma + eh.len() as u64);
        sections.eh_frame = Some(eh);
    }
    // Without unwind tables framehop still unwinds the module with frame pointers.
    let module = Module::new(object.path.clone(), range, bias, sections);
    Some((info, module))
}

/// The GNU build-id in a note segment, hex: the descriptor of the note named `GNU` of type
/// `NT_GNU_BUILD_ID`. The descriptor and the next note start at the segment's alignment (4,
/// or 8) from its start.
fn gnu_build_id(notes: &[u8], align: u64) -> Option<String> {
    let align = if align == 8 { 8 } else { 4 };
    let pad = |n: usize| n.checked_add(align - 1).map(|n| n & !(align - 1));
    let mut at = 0usize;
    while at.checked_add(12)? <= notes.len() {
        let namesz = usize::try_from(u32_at(notes, at)?).ok()?;
        let descsz = usize::try_from(u32_at(notes, at + 4)?).ok()?;
        let kind = u32_at(notes, at + 8)?;
        let name_at = at + 12;
        let desc_at = pad(name_at.checked_add(namesz)?)?;
        let end = pad(desc_at.checked_add(descsz)?)?;
        let name = notes.get(name_at..name_at.checked_add(namesz)?)?;
        if kind == NT_GNU_BUILD_ID && name == b"GNU\0" && descsz > 0 {
            let desc = notes.get(desc_at..desc_at.checked_add(descsz)?)?;
            return Some(desc.iter().map(|b| format!("{b:02x}")).collect());
        }
        at = end;
    }
    None
}

/// Copies `.eh_frame_hdr` and the `.eh_frame` it points to. Returns (hdr, eh_frame svma,
/// eh_frame).
fn read_eh_frame(bias: u64, hdr_ph: &Phdr, loads: &[&Phdr]) -> Option<(Vec<u8>, u64, Vec<u8>)> {
    let hdr_len = usize::try_from(hdr_ph.memsz).ok()?.min(16 << 20);
    let hdr = read_exact(bias.wrapping_add(hdr_ph.vaddr), hdr_len)?;
    if *hdr.first()? != 1 {
        return None;
    }
    let enc = *hdr.get(1)?;
    // eh_frame_ptr starts at byte 4 of the header.
    let field_svma = hdr_ph.vaddr + 4;
    let (value, _) = read_encoded(&hdr, 4, enc)?;
    let eh_svma = match enc & 0x70 {
        0x00 => value,
        0x10 => field_svma.wrapping_add(value),
        0x30 => hdr_ph.vaddr.wrapping_add(value),
        _ => return None,
    };
    // .eh_frame has no size of its own here: take the rest of its segment, then cut at the
    // zero terminator.
    let seg = loads
        .iter()
        .find(|p| p.vaddr <= eh_svma && eh_svma < p.vaddr.saturating_add(p.filesz))?;
    let avail = usize::try_from(seg.vaddr + seg.filesz - eh_svma)
        .ok()?
        .min(MAX_EH_FRAME);
    let mut eh = vec![0u8; avail];
    let got = read_own_memory(bias.wrapping_add(eh_svma), &mut eh).ok()?;
    eh.truncate(got);
    let end = eh_frame_end(&eh);
    eh.truncate(end);
    eh.shrink_to_fit();
    Some((hdr, eh_svma, eh))
}

/// Reads a DWARF-EH encoded pointer value (format part only) at `at`. Returns the raw value
/// (sign-extended) and its size.
fn read_encoded(b: &[u8], at: usize, enc: u8) -> Option<(u64, usize)> {
    Some(match enc & 0x0f {
        0x00 | 0x04 | 0x0c => (u64_at(b, at)?, 8),
        0x03 => (u64::from(u32_at(b, at)?), 4),
        0x0b => (i64::from(u32_at(b, at)? as i32) as u64, 4),
        0x02 => (u64::from(u16_at(b, at)?), 2),
        0x0a => (i64::from(u16_at(b, at)? as i16) as u64, 2),
        _ => return None,
    })
}

/// Length of the CIE/FDE sequence up to (and including) its zero terminator.
fn eh_frame_end(eh: &[u8]) -> usize {
    let mut at = 0usize;
    while let Some(len) = u32_at(eh, at) {
        if len == 0 {
            return at + 4;
        }
        let next = if len == u32::MAX {
            u64_at(eh, at + 4)
                .and_then(|l| usize::try_from(l).ok())
                .and_then(|l| (at + 12).checked_add(l))
        } else {
            (at + 4).checked_add(len as usize)
        };
        match next {
            Some(n) if n <= eh.len() => at = n,
            _ => break,
        }
    }
    at.min(eh.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_maps_lines() {
        let text = "\
56190d2ae000-56190d2b0000 r--p 00000000 fe:00 247030                     /usr/bin/cat
56190d2b0000-56190d2b5000 r-xp 00002000 fe:00 247030                     /usr/bin/cat
7fe454a64000-7fe454abb000 r--p 00000000 fe:00 316534                     /usr/lib/locale/C.utf8/LC_CTYPE
7fe454ac7000-7fe454aed000 r--p 00000000 fe:00 326279                     /usr/lib/x86_64-linux-gnu/libc.so.6
7fe454aed000-7fe454c43000 r-xp 00026000 fe:00 326279                     /usr/lib/x86_64-linux-gnu/libc.so.6
7ffd1000-7ffd3000 r-xp 00000000 00:00 0                          [vdso]
7ffd5000-7ffd6000 rw-p 00000000 00:00 0                          [stack]
";
        let maps = parse_maps(text.as_bytes());
        assert_eq!(maps.ranges.len(), 7);
        assert_eq!(maps.ranges[0], (0x7ffd1000, 0x7ffd3000));
        let objs = maps.objects;
        assert_eq!(objs.len(), 3);
        assert_eq!(objs[0].path, "/usr/bin/cat");
        assert_eq!(objs[0].header, 0x56190d2ae000);
        assert_eq!(objs[1].file_id.inode, 326279);
        assert_eq!((objs[1].file_id.major, objs[1].file_id.minor), (0xfe, 0));
        assert_eq!(objs[0].header_end, 0x56190d2b0000);
        assert_eq!(objs[2].path, "[vdso]");
    }

    #[test]
    fn an_odd_path_costs_only_its_own_line() {
        let mut text =
            b"56190d2ae000-56190d2b0000 r--p 00000000 fe:00 247030     /usr/bin/cat\n".to_vec();
        text.extend_from_slice(
            b"56190d2b0000-56190d2b5000 r-xp 00002000 fe:00 247030     /usr/bin/cat\n",
        );
        text.extend_from_slice(
            b"7fe400000000-7fe400001000 r-xp 00000000 fe:00 11 /tmp/odd-\xff\xfe-name\\012x.so\n",
        );
        text.extend_from_slice(b"garbage line\n\xff\xff\n");
        text.extend_from_slice(
            b"7fe454aed000-7fe454c43000 r-xp 00000000 fe:00 326279     /usr/lib/libc.so.6\n",
        );
        let maps = parse_maps(&text);
        let paths: Vec<&str> = maps.objects.iter().map(|o| o.path.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                "/usr/bin/cat",
                "/tmp/odd-\u{fffd}\u{fffd}-name\\012x.so",
                "/usr/lib/libc.so.6"
            ]
        );
        assert_eq!(maps.ranges.len(), 4);
    }

    #[test]
    fn build_ids_are_those_of_the_files() {
        let mut table = ModuleTable::new();
        table.refresh().expect("maps");
        let here = build_ids_are_those_of_the_files as *const () as usize as u64;
        let own = table.find(here).expect("own module");
        let data = std::fs::read(&*own.path).expect("read own binary");
        let file = object::File::parse(&*data).expect("ELF");
        use object::Object as _;
        let want = file
            .build_id()
            .expect("notes")
            .map(|id| id.iter().map(|b| format!("{b:02x}")).collect::<String>());
        assert!(
            want.is_some(),
            "the test binary has a build-id (ld --build-id)"
        );
        assert_eq!(own.build_id.as_deref(), want.as_deref());
        // Notes padded to 8, the build-id after another note.
        let mut notes = Vec::new();
        for (name, kind, desc) in [
            (&b"GNU\0"[..], 5u32, &[1u8; 12][..]),
            (b"GNU\0", 3, &[0xab, 0xcd]),
        ] {
            notes.extend_from_slice(&(name.len() as u32).to_le_bytes());
            notes.extend_from_slice(&(desc.len() as u32).to_le_bytes());
            notes.extend_from_slice(&kind.to_le_bytes());
            notes.extend_from_slice(name);
            notes.resize(notes.len().next_multiple_of(8), 0);
            notes.extend_from_slice(desc);
            notes.resize(notes.len().next_multiple_of(8), 0);
        }
        assert_eq!(gnu_build_id(&notes, 8).as_deref(), Some("abcd"));
        assert_eq!(
            gnu_build_id(&notes[..20], 8),
            None,
            "cut short: nothing, no panic"
        );
    }

    #[test]
    fn finds_own_module_with_unwind_tables() {
        let mut table = ModuleTable::new();
        table.refresh().expect("maps");
        let here = finds_own_module_with_unwind_tables as *const () as usize as u64;
        let m = table.find(here).expect("own module");
        assert!(m.range.contains(&here));
        assert!(table.modules().len() >= 2);
        assert!(table.find(8).is_none());
    }

    #[test]
    fn eh_frame_end_stops_at_terminator() {
        let mut eh = Vec::new();
        eh.extend_from_slice(&8u32.to_le_bytes());
        eh.extend_from_slice(&[1; 8]);
        eh.extend_from_slice(&0u32.to_le_bytes());
        eh.extend_from_slice(&[9; 16]);
        assert_eq!(eh_frame_end(&eh), 16);
    }
}
