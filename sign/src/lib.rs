//! Request signing and verification for the clouds Tollgate speaks to.
//!
//! Contract: every function here is pure (no clock, no randomness, no I/O), takes
//! *decoded* names and values, and produces exactly the strings the providers'
//! own SDKs produce — the public examples in `tests/vectors/` are the judge.
//! Callers own the policy (which headers to sign, timestamp windows, nonce
//! replay); this crate owns the bytes.
//!
//! | module | scheme | key |
//! |---|---|---|
//! | [`aliyun_rpc`] | Alibaba RPC, `HMAC-SHA1`, SignatureVersion 1.0 | `secret + "&"` |
//! | [`aliyun_v3`] | Alibaba `ACS3-HMAC-SHA256` | bare secret |
//! | [`aliyun_roa`] | Alibaba ROA, `Authorization: acs AK:sig` | bare secret |
//! | [`huawei`] | Huawei APIG `SDK-HMAC-SHA256` | bare secret |
//!
//! Verification compares signatures in constant time ([`constant_time_eq`]).

pub mod aliyun_roa;
pub mod aliyun_rpc;
pub mod aliyun_v3;
mod canonical;
pub mod encode;
pub mod huawei;

#[cfg(test)]
mod tests;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Hex-encoded SHA-256 of `data` (lower case), as used for payload hashes.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// HMAC-SHA256 of `msg` under `key`.
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for HMAC.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

/// HMAC-SHA1 of `msg` under `key`.
pub fn hmac_sha1(key: &[u8], msg: &[u8]) -> [u8; 20] {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

/// An HMAC-SHA1 keyed with the concatenation of `key_parts` (no
/// intermediate allocation), ready for streamed `update`s.
pub fn hmac_sha1_keyed(key_parts: &[&[u8]]) -> Hmac<sha1::Sha1> {
    // Keys longer than the block are hashed first, as HMAC requires; only
    // then is the concatenation needed in one piece.
    let len: usize = key_parts.iter().map(|p| p.len()).sum();
    if len <= 64 {
        let mut key = [0u8; 64];
        let mut at = 0;
        for p in key_parts {
            key[at..at + p.len()].copy_from_slice(p);
            at += p.len();
        }
        Hmac::<sha1::Sha1>::new_from_slice(&key[..len]).unwrap_or_else(|_| unreachable!())
    } else {
        Hmac::<sha1::Sha1>::new_from_slice(&key_parts.concat()).unwrap_or_else(|_| unreachable!())
    }
}

/// Compares two signatures without leaking where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}
