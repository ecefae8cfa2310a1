//! `digest(algorithm [, seed])`: message digests, or HMACs keyed from a seed
//! exactly as the original derived them, so hashed identifiers stay equal
//! across a migration.
//!
//! The original's seeded key is PBKDF2-HMAC-<alg> over the seed with a fixed
//! salt and 100,000 rounds, asking for the MAC length in *bits* where it
//! meant bytes: the key is only `mac_len / 8` bytes (4 for SHA-256). That is
//! weak but it is what every existing digest was made with; it is kept and
//! documented in `docs/compatibility.md`.

use ::digest::{block_api::BlockSizeUser, Digest, KeyInit, Mac};
use hmac::SimpleHmac;

/// The original's fixed PBKDF2 salt: `divolte` and eight random bytes.
const SALT: &[u8] = b"divolte\xb6\x87\xe2\xd9\xaa\x06\x03\x72";
/// The original's round count. Fuzzing builds derive with one round: at
/// 100,000 the key derivation was most of the time of every fuzzed script
/// that seeds a digest, and the count changes no path through the code.
const ROUNDS: u32 = if cfg!(fuzzing) { 1 } else { 100_000 };

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Algorithm {
    Md5,
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
    Sha512_224,
    Sha512_256,
    Sha3_224,
    Sha3_256,
    Sha3_384,
    Sha3_512,
}

/// A configured digest: algorithm and, when seeded, the HMAC key.
#[derive(Debug, Clone)]
pub struct Digester {
    algorithm: Algorithm,
    key: Option<Vec<u8>>,
}

fn hash<D: Digest>(parts: &[&[u8]]) -> Vec<u8> {
    let mut d = D::new();
    for p in parts {
        d.update(p);
    }
    d.finalize().to_vec()
}

fn hmac<D: Digest + BlockSizeUser + Clone>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut m = <SimpleHmac<D> as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().to_vec()
}

fn derive_key<D: Digest + BlockSizeUser + Clone + Sync>(seed: &str) -> Vec<u8> {
    let mut key = vec![0u8; <D as Digest>::output_size() / 8];
    pbkdf2::pbkdf2::<SimpleHmac<D>>(seed.as_bytes(), SALT, ROUNDS, &mut key).expect("HMAC takes keys of any length");
    key
}

macro_rules! dispatch {
    ($alg:expr, $f:ident, $($arg:expr),*) => {
        match $alg {
            Algorithm::Md5 => $f::<md5::Md5>($($arg),*),
            Algorithm::Sha1 => $f::<sha1::Sha1>($($arg),*),
            Algorithm::Sha224 => $f::<sha2::Sha224>($($arg),*),
            Algorithm::Sha256 => $f::<sha2::Sha256>($($arg),*),
            Algorithm::Sha384 => $f::<sha2::Sha384>($($arg),*),
            Algorithm::Sha512 => $f::<sha2::Sha512>($($arg),*),
            Algorithm::Sha512_224 => $f::<sha2::Sha512_224>($($arg),*),
            Algorithm::Sha512_256 => $f::<sha2::Sha512_256>($($arg),*),
            Algorithm::Sha3_224 => $f::<sha3::Sha3_224>($($arg),*),
            Algorithm::Sha3_256 => $f::<sha3::Sha3_256>($($arg),*),
            Algorithm::Sha3_384 => $f::<sha3::Sha3_384>($($arg),*),
            Algorithm::Sha3_512 => $f::<sha3::Sha3_512>($($arg),*),
        }
    };
}

impl Digester {
    /// A digester for a JCA algorithm name (case-insensitive: `SHA-256`,
    /// `sha-256`, `SHA256`), keyed from `seed` when one is given.
    ///
    /// # Errors
    /// A message naming the algorithm when it is not supported.
    pub fn new(name: &str, seed: Option<&str>) -> Result<Self, String> {
        let algorithm = match name.to_ascii_uppercase().as_str() {
            "MD5" => Algorithm::Md5,
            "SHA" | "SHA1" | "SHA-1" => Algorithm::Sha1,
            "SHA224" | "SHA-224" => Algorithm::Sha224,
            "SHA256" | "SHA-256" => Algorithm::Sha256,
            "SHA384" | "SHA-384" => Algorithm::Sha384,
            "SHA512" | "SHA-512" => Algorithm::Sha512,
            "SHA-512/224" | "SHA512/224" => Algorithm::Sha512_224,
            "SHA-512/256" | "SHA512/256" => Algorithm::Sha512_256,
            "SHA3-224" => Algorithm::Sha3_224,
            "SHA3-256" => Algorithm::Sha3_256,
            "SHA3-384" => Algorithm::Sha3_384,
            "SHA3-512" => Algorithm::Sha3_512,
            _ => {
                return Err(format!(
                    "digest algorithm {name:?} is not supported (use SHA-224, SHA-256, SHA-384, SHA-512, SHA-1, MD5, SHA-512/224, SHA-512/256 or SHA3-*)"
                ))
            }
        };
        let key = seed.map(|s| dispatch!(algorithm, derive_key, s));
        Ok(Self { algorithm, key })
    }

    /// The digest (or HMAC) of the pieces, concatenated.
    pub fn digest(&self, parts: &[&[u8]]) -> Vec<u8> {
        match &self.key {
            None => dispatch!(self.algorithm, hash, parts),
            Some(key) => dispatch!(self.algorithm, hmac, key, parts),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_digests() {
        let d = Digester::new("sha-256", None).unwrap();
        assert_eq!(
            hex::encode(d.digest(&[b"aLiteral", b"String"])),
            "b93e514de9769112599e389019442a14823bd19574a16113892156b3528660c6"
        );
        assert_eq!(hex::encode(d.digest(&[])), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert!(Digester::new("whirlpool", None).unwrap_err().contains("whirlpool"));
    }

    #[test]
    fn seeded_digests_match_the_original_key_derivation() {
        // Keys and HMACs as the original's JVM code derives them.
        let foo = Digester::new("SHA-256", Some("foo")).unwrap();
        assert_eq!(hex::encode(foo.key.as_ref().unwrap()), "6b3d6ace");
        assert_eq!(hex::encode(Digester::new("sha-256", Some("bar")).unwrap().key.unwrap()), "a23775e0");
        let event_id: &[u8] = b"0:OxVC1WJ4PZNEGIUuzdXPsy_bztnKMuoH0";
        assert_eq!(
            hex::encode(foo.digest(&[event_id])),
            "7ddaa94df52084ef8c16af73099041353c00f7225aa07ae90021b9cb8e6dc869"
        );
        assert_eq!(Digester::new("sha-512", Some("x")).unwrap().key.unwrap().len(), 8);
        assert_eq!(Digester::new("sha-224", Some("x")).unwrap().key.unwrap().len(), 3);
    }
}
