//! The event checksum (parameter `x`): MurmurHash3 x86_32, seed 0, over the
//! canonical form of every other parameter, compared as a signed number.
//!
//! Canonical form: parameter names in sorted order, each as `name=` followed
//! by every value (in arrival order) and `,`, then `;`. Values are the
//! decoded strings, hashed as UTF-8. Hashing the real UTF-8 bytes matches the
//! tag for every character; the original's Guava version hashed characters
//! outside the BMP (emoji) wrongly and flagged such events as corrupt.

/// MurmurHash3 x86_32 with seed 0, as a signed number like Guava's `asInt()`.
pub fn murmur3_signed(bytes: &[u8]) -> i32 {
    murmurhash32::murmurhash3_with_seed::<0>(bytes) as i32
}

/// Appends the canonical form of `len` parameters (`param(i)` gives the
/// i-th name and value in arrival order), leaving out `x`, to `out`.
/// `order` is scratch space. The tag's events take
/// [`canonical_form_of_sections`] instead; this is for the rest: names
/// used twice or longer than a letter, a name without `=`, values whose
/// UTF-8 was repaired.
pub fn canonical_form<'p>(
    len: usize,
    param: impl Fn(usize) -> (&'p [u8], &'p [u8]),
    order: &mut Vec<u32>,
    out: &mut Vec<u8>,
) {
    let start = out.len();
    // Stable: values of one name keep their arrival order.
    order.clear();
    order.extend((0..len as u32).filter(|&i| param(i as usize).0 != b"x"));
    order.sort_by(|&a, &b| param(a as usize).0.cmp(param(b as usize).0));
    for (n, &i) in order.iter().enumerate() {
        let same_name = n > 0 && param(order[n - 1] as usize).0 == param(i as usize).0;
        let (name, value) = param(i as usize);
        append_value(out, start, same_name, name, value);
    }
    if out.len() > start {
        out.push(b';');
    }
}

/// Bytes that [`canonical_form_of_sections`] may read past the end of a
/// section: the slice it lies in must reach this far beyond it.
pub const SECTION_SLACK: usize = 32;

/// Appends the canonical form of parameters whose names are all
/// different: `sections` yields each one's `name=value,` in name order,
/// leaving out `x`, as `(start, end)` offsets into `text`, which extends at
/// least [`SECTION_SLACK`] bytes past each.
///
/// Each section moves in whole 32-byte copies, which compile to a few
/// vector moves, into the buffer's spare room: a `memcpy` call per
/// section cost more than the copying, and with a bounds check on every
/// copy (as slices) the copy of the sections cost 773 instructions per
/// event against 652 without (`benches/stages.sh`).
///
/// # Panics
/// When a section is not within `text` with its slack.
pub fn canonical_form_of_sections(text: &[u8], sections: impl IntoIterator<Item = (usize, usize)>, out: &mut Vec<u8>) {
    // Sections are parts of `text` apart from each other, so the room for
    // `text` and a `;` per letter is enough unless the caller's are not.
    out.reserve(text.len() + 26 + SECTION_SLACK);
    let mut to = out.len();
    for (start, end) in sections {
        // Compared without an addition that could wrap.
        assert!(start <= end && end <= text.len().saturating_sub(SECTION_SLACK), "a section beyond its text");
        let len = end - start;
        if out.capacity() - to < len + 1 + SECTION_SLACK {
            // SAFETY: every byte up to `to` was written (see the end).
            unsafe { out.set_len(to) };
            out.reserve(len + 1 + SECTION_SLACK);
        }
        // SAFETY: the 32 bytes read from each offset below `end` lie within
        // `text` (asserted above), and the bytes written, below
        // `to + len + 32`, within the room just checked. Whole-block reads
        // and writes, not `copy_nonoverlapping`, which the compiler turns
        // into a `memcpy` call per section.
        unsafe {
            let (src, dst) = (text.as_ptr().add(start), out.as_mut_ptr().add(to));
            let mut at = 0;
            while at < len {
                let block = src.add(at).cast::<[u8; SECTION_SLACK]>().read_unaligned();
                dst.add(at).cast::<[u8; SECTION_SLACK]>().write_unaligned(block);
                at += SECTION_SLACK;
            }
            dst.add(len).write(b';');
        }
        to += len + 1;
    }
    // SAFETY: every byte up to `to` was written: each section's bytes by
    // its copies, which end after it, and the `;` after each overwrites
    // what the copy wrote past the section; the next section starts after
    // it.
    unsafe { out.set_len(to) };
}

/// Appends one value of the canonical form that starts at `out[start]`,
/// opening its name's section (and closing the one before) unless it
/// continues the same name.
fn append_value(out: &mut Vec<u8>, start: usize, same_name: bool, name: &[u8], value: &[u8]) {
    if !same_name {
        if out.len() > start {
            out.push(b';');
        }
        out.extend_from_slice(name);
        out.push(b'=');
    }
    out.extend_from_slice(value);
    out.push(b',');
}

/// Whether the checksum `x` (base 36) matches the canonical form's hash.
/// A missing, empty or unparsable `x` does not match.
pub fn verify(canonical: &[u8], x: Option<&str>) -> bool {
    let Some(expected) = x.and_then(super::ids::parse_base36_i64) else {
        return false;
    };
    expected == i64::from(murmur3_signed(canonical))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params_of(query: &str) -> Vec<(String, String)> {
        query
            .split('&')
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (k.to_owned(), v.to_owned())
            })
            .collect()
    }

    fn check(pairs: &[(&str, &str)]) -> Option<bool> {
        let mut order = Vec::new();
        let mut canon = Vec::new();
        canonical_form(pairs.len(), |i| (pairs[i].0.as_bytes(), pairs[i].1.as_bytes()), &mut order, &mut canon);
        let x = pairs.iter().find(|(k, _)| *k == "x").map(|(_, v)| *v);
        Some(verify(&canon, x))
    }

    const BASE: &str = "c=i1t8q2b6&e=0:1fF6GFGjDOQiEx_OxnTm_tl4BH91eGLF0&f=f&h=qd&i=1ak&j=sj&k=2&l=http://localhost:8290/&n=f&p=0:i1t84hgy:5AF359Zjq5kUy98u4wQjlIZzWGhN~GlG&s=0:i1t84hgy:95CbiPCYln_1e0a6rFvuRkDkeNnc6KC8&t=pageView&v=0:1fF6GFGjDOQiEx_OxnTm_tl4BH91eGLF&w=uq";

    fn with(query: &str, overrides: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut p = params_of(query);
        for (k, v) in overrides {
            match p.iter_mut().find(|(pk, _)| pk == k) {
                Some(slot) => slot.1 = (*v).to_owned(),
                None => p.push(((*k).to_owned(), (*v).to_owned())),
            }
        }
        p
    }

    fn borrowed(p: &[(String, String)]) -> Vec<(&str, &str)> {
        p.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }

    #[test]
    fn sections_are_copied_whole_even_beyond_the_room_first_reserved() {
        // One section given many times (no caller does that) outgrows the
        // room reserved for the text; each section of 1 to 70 bytes ends
        // at every offset of the 32-byte copies.
        let mut text = (0..100u8).map(|i| b'a' + i % 26).collect::<Vec<u8>>();
        text.resize(100 + SECTION_SLACK, 0);
        for len in 1..70 {
            let mut out = b"kept".to_vec();
            canonical_form_of_sections(&text, std::iter::repeat_n((3, 3 + len), 40), &mut out);
            let mut want = b"kept".to_vec();
            (0..40).for_each(|_| want.extend_from_slice(&[&text[3..3 + len], b";"].concat()));
            assert_eq!(out, want, "{len}");
        }
    }

    #[test]
    #[should_panic(expected = "a section beyond its text")]
    fn a_section_ending_near_the_top_of_the_address_space_is_refused() {
        // Its end plus the slack would wrap to a small number.
        canonical_form_of_sections(&[0; 64], [(0, usize::MAX - 31)], &mut Vec::new());
    }

    #[test]
    fn reference_vector_ascii() {
        let p = with(BASE, &[("x", "si9804")]);
        assert_eq!(check(&borrowed(&p)), Some(true));
        let bad = with(BASE, &[("x", "si9805")]);
        assert_eq!(check(&borrowed(&bad)), Some(false));
    }

    fn short_ids(t: &str, x: &str) -> Vec<(String, String)> {
        with(
            BASE,
            &[
                ("p", "0:i1t84hgy:party"),
                ("s", "0:i1t84hgy:session"),
                ("v", "0:pageView"),
                ("e", "0:eventId"),
                ("t", t),
                ("x", x),
            ],
        )
    }

    #[test]
    fn reference_vector_non_ascii() {
        let p = short_ids("ụñ⚕©ºḌℨ", "-ql2p2c");
        assert_eq!(check(&borrowed(&p)), Some(true));
    }

    #[test]
    fn reference_vector_sentinel() {
        let p = short_ids("sentinelEvent", "-y99lem");
        assert_eq!(check(&borrowed(&p)), Some(true));
    }

    #[test]
    fn missing_empty_or_garbage_checksum_is_corrupt() {
        let p = params_of(BASE);
        assert_eq!(check(&borrowed(&p)), Some(false));
        for x in ["", "not base36!"] {
            let p = with(BASE, &[("x", x)]);
            assert_eq!(check(&borrowed(&p)), Some(false), "x={x:?}");
        }
    }

    #[test]
    fn emoji_are_hashed_as_real_utf8() {
        // The hash of the canonical form with an emoji, computed over its
        // UTF-8 bytes, verifies; the same value stated for the UTF-16
        // surrogates encoded one by one (as the original hashed them) does not.
        let mut p = short_ids("😀 launch", "");
        let pairs = borrowed(&p);
        let mut order = Vec::new();
        let mut canon = Vec::new();
        canonical_form(pairs.len(), |i| (pairs[i].0.as_bytes(), pairs[i].1.as_bytes()), &mut order, &mut canon);
        let hash = murmur3_signed(&canon);
        let mut x = Vec::new();
        super::super::ids::push_base36(&mut x, i64::from(hash));
        p.iter_mut().find(|(k, _)| k == "x").unwrap().1 = String::from_utf8(x).unwrap();
        assert_eq!(check(&borrowed(&p)), Some(true));
        let cesu: Vec<u8> = {
            let s = String::from_utf8(canon.clone()).unwrap();
            let mut out = Vec::new();
            for unit in s.encode_utf16() {
                let c = char::from_u32(u32::from(unit))
                    .map_or([0xED, 0xA0 | ((unit >> 6) & 0x0F) as u8, 0x80 | (unit & 0x3F) as u8].to_vec(), |c| {
                        c.to_string().into_bytes()
                    });
                out.extend(c);
            }
            out
        };
        assert_ne!(murmur3_signed(&cesu), hash);
    }

    #[test]
    fn single_letter_names_give_the_form_of_a_stable_sort() {
        // The chained walk for single-byte names against the definition:
        // a stable sort by name, `x` left out.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for len in 0..40 {
            let pairs: Vec<(String, String)> = (0..len)
                .map(|i| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let name = ["a", "b", "x", "z", "0", "~", "A"][(seed % 7) as usize];
                    (name.to_owned(), format!("v{i}"))
                })
                .collect();
            let mut sorted: Vec<&(String, String)> = pairs.iter().filter(|(n, _)| n != "x").collect();
            sorted.sort_by(|a, b| a.0.cmp(&b.0));
            let mut want = String::new();
            for (i, (name, value)) in sorted.iter().enumerate() {
                if i == 0 || sorted[i - 1].0 != *name {
                    if i > 0 {
                        want.push(';');
                    }
                    want.push_str(&format!("{name}="));
                }
                want.push_str(&format!("{value},"));
            }
            if !sorted.is_empty() {
                want.push(';');
            }
            let (mut order, mut canon) = (Vec::new(), Vec::new());
            canonical_form(pairs.len(), |i| (pairs[i].0.as_bytes(), pairs[i].1.as_bytes()), &mut order, &mut canon);
            assert_eq!(String::from_utf8(canon).unwrap(), want, "{pairs:?}");
        }
    }

    #[test]
    fn repeated_parameters_hash_every_value_in_order() {
        let a = [("a", "1"), ("b", "2"), ("a", "3")];
        let mut order = Vec::new();
        let mut canon = Vec::new();
        canonical_form(a.len(), |i| (a[i].0.as_bytes(), a[i].1.as_bytes()), &mut order, &mut canon);
        assert_eq!(canon, b"a=1,3,;b=2,;");
    }
}
