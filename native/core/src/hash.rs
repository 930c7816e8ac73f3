//! Keyed hashing for `hash` rules and `{hash}` replacements: HMAC-SHA256 with the policy's
//! key, or plain SHA-256 when the policy says `algorithm: sha256` (the collector's
//! compatible, unkeyed form), as lower-case hex -- the same digest as
//! `redact_proxy/policy/compile.py`'s `_hasher`.
//!
//! Strategy: the keyed inner/outer state is built once (`Hasher::new`); each value clones
//! it, so hashing a value never re-derives the key pads. A `Hasher` holds no mutable state
//! and is shared by every thread.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The algorithm and, for HMAC, its key (the policy's key bytes, already stripped).
pub enum HashAlg {
    HmacSha256(Vec<u8>),
    Sha256,
}

enum Keyed {
    Hmac(Hmac<Sha256>),
    Plain,
}

pub struct Hasher(Keyed);

const HEX: &[u8; 16] = b"0123456789abcdef";

impl Hasher {
    pub fn new(alg: HashAlg) -> Self {
        match alg {
            // HMAC takes a key of any length (longer ones are hashed first): no error case.
            HashAlg::HmacSha256(key) => Hasher(Keyed::Hmac(
                <Hmac<Sha256> as Mac>::new_from_slice(&key).expect("HMAC accepts keys of any length"),
            )),
            HashAlg::Sha256 => Hasher(Keyed::Plain),
        }
    }

    /// The 32-byte digest of `data`.
    pub fn digest(&self, data: &[u8]) -> [u8; 32] {
        match &self.0 {
            Keyed::Hmac(base) => {
                let mut mac = base.clone();
                mac.update(data);
                mac.finalize().into_bytes().into()
            }
            Keyed::Plain => Sha256::digest(data).into(),
        }
    }

    /// The digest of `data` as 64 lower-case hex digits, appended to `out`.
    pub fn hex_into(&self, data: &[u8], out: &mut Vec<u8>) {
        for byte in self.digest(data) {
            out.push(HEX[usize::from(byte >> 4)]);
            out.push(HEX[usize::from(byte & 15)]);
        }
    }

    /// The digest of `data` as 64 lower-case hex digits.
    pub fn hex(&self, data: &[u8]) -> String {
        let mut out = Vec::with_capacity(64);
        self.hex_into(data, &mut out);
        out.into_iter().map(char::from).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_the_known_digest() {
        let hasher = Hasher::new(HashAlg::Sha256);
        assert_eq!(hasher.hex(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(hasher.hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let hasher = Hasher::new(HashAlg::HmacSha256(b"Jefe".to_vec()));
        assert_eq!(
            hasher.hex(b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // The keyed state is cloned per value: a second value is not affected by the first.
        assert_eq!(
            hasher.hex(b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_long_key_is_hashed_first_as_rfc_2104_says() {
        let key = vec![0xaa; 131];
        let hasher = Hasher::new(HashAlg::HmacSha256(key));
        assert_eq!(
            hasher.hex(b"Test Using Larger Than Block-Size Key - Hash Key First"),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }
}
