//! Unwinding a captured stack on the reporting thread: framehop, DWARF CFI from `.eh_frame`
//! with frame-pointer fallback, reading only the bytes the handler copied. A bad unwind table or
//! a corrupt stack can only end the stack early: every read outside the copy fails cleanly.

use framehop::Unwinder;

use super::handler::Regs;
use super::modules::ModuleTable;
use super::{RawFrame, Truncation};

/// The framehop rule cache (persists across reports: stacks repeat).
pub(crate) type NativeCache = framehop::CacheNative<framehop::MayAllocateDuringUnwind>;

/// Unwinds from `regs` over `stack` (the bytes at `regs.sp`; never empty: an empty copy is
/// reported as such, not unwound into a one-frame stack).
pub(crate) fn unwind(
    modules: &ModuleTable,
    cache: &mut NativeCache,
    regs: Regs,
    stack: &[u8],
    max_frames: usize,
) -> (Vec<RawFrame>, Option<Truncation>) {
    let base = regs.sp;
    // Set when the unwinder asks for a word above a full copy: the stack goes on past the
    // window, so an unwinding error there means "cut at the window", not "bad unwind info".
    let past_window = std::cell::Cell::new(false);
    let window_full = stack.len() >= super::handler::STACK_WINDOW;
    let mut read_stack = |addr: u64| -> Result<u64, ()> {
        let off = usize::try_from(addr.checked_sub(base).ok_or(())?).map_err(|_| ())?;
        let end = off.checked_add(8).ok_or(())?;
        if window_full && end > stack.len() {
            past_window.set(true);
        }
        let bytes = stack.get(off..end).ok_or(())?;
        Ok(u64::from_le_bytes(bytes.try_into().map_err(|_| ())?))
    };
    let unwinder = modules.unwinder();
    #[cfg(target_arch = "x86_64")]
    let start = framehop::x86_64::UnwindRegsX86_64::new(regs.pc, regs.sp, regs.fp);
    #[cfg(target_arch = "aarch64")]
    let start = framehop::aarch64::UnwindRegsAarch64::new_with_ptr_auth_mask(
        framehop::aarch64::PtrAuthMask::from_max_known_address(unwinder.max_known_code_address()),
        regs.lr,
        regs.sp,
        regs.fp,
    );
    let mut iter = unwinder.iter_frames(regs.pc, start, cache, &mut read_stack);
    let mut frames = Vec::new();
    let mut truncation = None;
    loop {
        match iter.next() {
            Ok(Some(addr)) => {
                if frames.len() >= max_frames {
                    truncation = Some(Truncation::MaxFrames(max_frames));
                    break;
                }
                frames.push(RawFrame {
                    lookup: addr.address_for_lookup(),
                });
            }
            Ok(None) => break,
            Err(e) => {
                // framehop also ends "normally" with an error on many well-formed stacks (e.g.
                // at a thread's start routine without CFI): only flag it when the stack ends
                // outside the usual roots.
                if past_window.get() {
                    truncation = Some(Truncation::Window(super::handler::STACK_WINDOW));
                } else if frames.len() <= 1 {
                    truncation = Some(Truncation::Unwinder(e.to_string()));
                }
                break;
            }
        }
    }
    (frames, truncation)
}
