//! The duplicate memory: has this event (party, session, event id) been
//! seen recently?
//!
//! One table of 64-bit signatures shared by every shard: a retried request
//! often arrives on a new connection, which `SO_REUSEPORT` may give to
//! another core, and it must still be caught. Each lookup is a single
//! atomic swap, so there is no lock and no cross-shard message. The table
//! costs 8 bytes per slot (`duplicate_memory_size`, default 1,000,000 =
//! 8 MB for the whole process; the original kept one such table per mapper
//! thread).
//!
//! Hashing is the original's, so the same events collide the same way:
//! MurmurHash3 x64 128 (seed 0) over the UTF-16LE code units of the party
//! id, session id and event id; the slot is the first four hash bytes read
//! big-endian (sign bit cleared) modulo the table size, the signature the
//! last eight read big-endian. An event is a duplicate when its slot
//! already holds its signature; the slot then holds it either way. Like the
//! original this forgets events whose slot was overwritten (false
//! negatives) and, rarely, confuses two events with one signature.

use std::sync::atomic::{AtomicU64, Ordering};

/// The shared table.
#[derive(Debug)]
pub struct DuplicateMemory {
    slots: Box<[AtomicU64]>,
}

/// Slot and signature of an event, as the original computes them.
fn slot_and_signature(key: &[u8], slots: usize) -> (usize, u64) {
    let hash = fastmurmur3::murmur3_x64_128(key, 0);
    let bytes = hash.to_le_bytes();
    let first = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) & 0x7fff_ffff;
    let signature =
        u64::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]]);
    (first as usize % slots, signature)
}

impl DuplicateMemory {
    /// A memory of `slots` (at least one) signatures.
    pub fn new(slots: usize) -> Self {
        // Validation refuses 0; a table needs one slot to hash into.
        let slots = slots.max(1);
        let mut table = Vec::with_capacity(slots);
        advise_huge_pages(table.as_ptr(), table.capacity() * std::mem::size_of::<AtomicU64>());
        table.extend((0..slots).map(|_| AtomicU64::new(0)));
        Self { slots: table.into_boxed_slice() }
    }

    /// Records the event and says whether it was seen before. `scratch`
    /// holds the UTF-16 key (one per shard, so this allocates nothing).
    pub fn seen_before(&self, party: &str, session: &str, event: &str, scratch: &mut Vec<u8>) -> bool {
        self.check(self.probe(party, session, event, scratch))
    }

    /// The first half of [`seen_before`](Self::seen_before): hashes the
    /// event and starts loading its slot. The table is far larger than the
    /// caches, so the slot is a cache miss nearly every time; work done
    /// before [`check`](Self::check) runs while the line is on its way.
    pub fn probe(&self, party: &str, session: &str, event: &str, scratch: &mut Vec<u8>) -> Probe {
        scratch.clear();
        for part in [party, session, event] {
            // The common case is ASCII: each byte is one UTF-16 unit.
            if !push_widened(scratch, part.as_bytes()) {
                for unit in part.encode_utf16() {
                    scratch.extend_from_slice(&unit.to_le_bytes());
                }
            }
        }
        let (slot, signature) = slot_and_signature(scratch, self.slots.len());
        prefetch(&self.slots[slot]);
        Probe { slot, signature }
    }

    /// The second half: records the probed event and says whether it was
    /// seen before.
    pub fn check(&self, probe: Probe) -> bool {
        self.slots[probe.slot].swap(probe.signature, Ordering::Relaxed) == probe.signature
    }
}

/// Appends `text` as UTF-16LE when it is ASCII, each byte followed by a
/// zero byte, sixteen bytes at a time, and says whether it was; leaves
/// `out` as it was when not. Whether it is ASCII comes from the widening's
/// own loads, where a separate check read the text again.
fn push_widened(out: &mut Vec<u8>, text: &[u8]) -> bool {
    let start = out.len();
    out.resize(start + 2 * text.len().next_multiple_of(16), 0);
    let mut blocks = text.chunks_exact(16);
    let mut wide = out[start..].chunks_exact_mut(32);
    let mut ascii = true;
    // Blocks first: `zip` asks its first iterator before the second.
    for (from, to) in (&mut blocks).zip(&mut wide) {
        ascii &= widen(from.try_into().unwrap_or(&[0; 16]), to.try_into().unwrap_or(&mut [0; 32]));
    }
    let rest = blocks.remainder();
    if let Some(to) = wide.next() {
        let mut last = [0; 16];
        last[..rest.len()].copy_from_slice(rest);
        ascii &= widen(&last, to.try_into().unwrap_or(&mut [0; 32]));
    }
    out.truncate(if ascii { start + 2 * text.len() } else { start });
    ascii
}

/// Sixteen bytes spread into the low bytes of sixteen 16-bit lanes
/// (`ab..` to `a0b0..`): sixteen ASCII characters as UTF-16LE. Says
/// whether they were ASCII. Two SSE2 interleaves with zero, where widening
/// a word at a time took about 550 instructions per event.
#[cfg(target_arch = "x86_64")]
fn widen(block: &[u8; 16], wide: &mut [u8; 32]) -> bool {
    use std::arch::x86_64::{
        _mm_loadu_si128, _mm_movemask_epi8, _mm_setzero_si128, _mm_storeu_si128, _mm_unpackhi_epi8, _mm_unpacklo_epi8,
    };
    // SAFETY: SSE2 is part of every x86_64 target; the load reads the
    // sixteen bytes of `block` and the stores write the two halves of
    // `wide` (all unaligned).
    unsafe {
        let v = _mm_loadu_si128(block.as_ptr().cast());
        let zero = _mm_setzero_si128();
        _mm_storeu_si128(wide.as_mut_ptr().cast(), _mm_unpacklo_epi8(v, zero));
        _mm_storeu_si128(wide.as_mut_ptr().add(16).cast(), _mm_unpackhi_epi8(v, zero));
        // A byte's high bit is set exactly when it is not ASCII.
        _mm_movemask_epi8(v) == 0
    }
}

/// [`widen`] a byte at a time, for other targets (and to check the SIMD
/// version against).
#[cfg(any(not(target_arch = "x86_64"), test))]
fn widen_bytewise(block: &[u8; 16], wide: &mut [u8; 32]) -> bool {
    for (pair, &b) in wide.chunks_exact_mut(2).zip(block) {
        pair.copy_from_slice(&[b, 0]);
    }
    block.is_ascii()
}

#[cfg(not(target_arch = "x86_64"))]
use widen_bytewise as widen;

/// An event's place in the [`DuplicateMemory`], from [`DuplicateMemory::probe`].
#[derive(Debug, Clone, Copy)]
pub struct Probe {
    slot: usize,
    signature: u64,
}

/// Asks the kernel to back the table with 2 MiB pages where it can (before
/// the first write, so that the pages fault in huge). With 4 KiB pages the
/// default 8 MB table spans 2,048 of them, and nearly every lookup missed
/// the TLB as well as the cache.
fn advise_huge_pages(start: *const AtomicU64, bytes: usize) {
    const HUGE: usize = 2 << 20;
    let begin = (start as usize).next_multiple_of(HUGE);
    let end = (start as usize + bytes) / HUGE * HUGE;
    if end > begin {
        // SAFETY: advice only: [begin, end) lies inside the table's own
        // allocation, and MADV_HUGEPAGE changes neither its contents nor
        // its ownership. Failure (no transparent huge pages) is harmless.
        unsafe { libc::madvise(begin as *mut libc::c_void, end - begin, libc::MADV_HUGEPAGE) };
    }
}

/// Asks the CPU to start loading `slot`'s cache line, without waiting.
fn prefetch(slot: &AtomicU64) {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: a prefetch is a hint: it never faults, whatever the
        // address, and changes no memory. SSE, which provides it, is part
        // of every x86_64 target.
        unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(slot.as_ptr().cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = slot;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_like_the_original() {
        // MurmurHash3 x64 128 of the UTF-16LE key, from Python's mmh3
        // (an independent implementation): 2449cf75d0b6b996 3228e94b869eeca1.
        let key: Vec<u8> =
            "0:i1t84hgy:party0:i1t84hgy:session0:eventId0".encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
        let (slot, signature) = slot_and_signature(&key, 1_000_000);
        assert_eq!(slot, 0x2449_cf75 % 1_000_000);
        assert_eq!(signature, 0x3228_e94b_869e_eca1);
    }

    #[test]
    fn non_ascii_ids_are_keyed_as_utf16() {
        let memory = DuplicateMemory::new(64);
        let mut fast = Vec::new();
        memory.seen_before("0:a:pärty😀", "0:a:s", "e", &mut fast);
        let expected: Vec<u8> = "0:a:pärty😀0:a:se".encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
        assert_eq!(fast, expected);
        memory.seen_before("0:a:party", "0:a:s", "e", &mut fast);
        let ascii: Vec<u8> = "0:a:party0:a:se".encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
        assert_eq!(fast, ascii);
        // Every length, so that the sixteen-byte widening and its tail both run.
        let text = "0:i1t84hgy:5AF359Zjq5kUy98u4wQjlIZzWGhN~GlG";
        for len in 0..text.len() {
            memory.seen_before(&text[..len], &text[len..], "é", &mut fast);
            let want: Vec<u8> = format!("{text}é").encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
            assert_eq!(fast, want, "{len}");
            // Found in a whole block or in the tail, after an ASCII part.
            let session = format!("{}é{}", &text[..len], &text[len..]);
            memory.seen_before(text, &session, "e", &mut fast);
            let want: Vec<u8> = format!("{text}{session}e").encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
            assert_eq!(fast, want, "{len}");
        }
    }

    #[test]
    fn the_vector_widening_matches_the_bytewise_one() {
        let block: [u8; 16] = std::array::from_fn(|i| b"0:i1t84hgy:5AF35"[i]);
        let (mut vector, mut bytewise) = ([0xaa; 32], [0x55; 32]);
        assert!(widen(&block, &mut vector) && widen_bytewise(&block, &mut bytewise));
        assert_eq!(vector, bytewise);
        assert_eq!(&vector[..4], b"0\0:\0");
        for at in 0..16 {
            for byte in [0x80, 0xc3, 0xff] {
                let mut other = block;
                other[at] = byte;
                assert!(!widen(&other, &mut vector) && !widen_bytewise(&other, &mut bytewise), "{at} {byte}");
            }
        }
    }

    #[test]
    fn flags_repeats_and_forgets_overwritten_slots() {
        let memory = DuplicateMemory::new(1);
        let mut scratch = Vec::new();
        assert!(!memory.seen_before("0:a:p", "0:a:s", "e1", &mut scratch));
        assert!(memory.seen_before("0:a:p", "0:a:s", "e1", &mut scratch));
        assert!(!memory.seen_before("0:a:p", "0:a:s", "e2", &mut scratch), "another event");
        assert!(!memory.seen_before("0:a:p", "0:a:s", "e1", &mut scratch), "its one slot was overwritten");
        let big = DuplicateMemory::new(100_000);
        for i in 0..100 {
            assert!(!big.seen_before("0:a:p", "0:a:s", &format!("e{i}"), &mut scratch));
        }
        assert!((0..100).filter(|i| big.seen_before("0:a:p", "0:a:s", &format!("e{i}"), &mut scratch)).count() >= 98);
    }
}
