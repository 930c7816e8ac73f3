//! The policy's value hash: HMAC-SHA256 under the policy's key (or, for policies that ask
//! for it, plain SHA-256), as lower-case hex, the same bytes as `policy/compile.py`'s
//! `_hasher`.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

pub enum HashAlg {
    HmacSha256(Vec<u8>),
    Sha256,
}

pub struct Hasher {
    // The keyed state, built once: each value clones it (no re-keying per value).
    keyed: Option<Hmac<Sha256>>,
}

impl Hasher {
    pub fn new(alg: HashAlg) -> Result<Hasher, String> {
        let keyed = match alg {
            HashAlg::HmacSha256(key) => {
                Some(Hmac::<Sha256>::new_from_slice(&key).map_err(|_| "bad hash key".to_string())?)
            }
            HashAlg::Sha256 => None,
        };
        Ok(Hasher { keyed })
    }

    pub fn hex(&self, data: &[u8]) -> String {
        let digest: [u8; 32] = match &self.keyed {
            Some(base) => {
                let mut mac = base.clone();
                mac.update(data);
                mac.finalize().into_bytes().into()
            }
            None => Sha256::digest(data).into(),
        };
        let mut out = String::with_capacity(64);
        for b in digest {
            out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
            out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests() {
        // RFC 4231 test case 2 and the SHA-256 of "abc".
        let h = Hasher::new(HashAlg::HmacSha256(b"Jefe".to_vec())).unwrap();
        assert_eq!(h.hex(b"what do ya want for nothing?"),
                   "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        let s = Hasher::new(HashAlg::Sha256).unwrap();
        assert_eq!(s.hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
