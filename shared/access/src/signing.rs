//! HMAC-SHA256 (RFC 2104) for links that carry their own authorisation: a signed photo link is
//! checked without a token, so its signature is the whole of its security.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const BLOCK: usize = 64;

/// HMAC-SHA256 of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|k| k ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// Whether `signature` is the HMAC of `message` under `key`, compared in constant time.
pub fn verify(key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    bool::from(hmac_sha256(key, message).as_slice().ct_eq(signature))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231's test cases 2 (a short key) and 6 (a key longer than a block).
    #[test]
    fn matches_rfc_4231() {
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex::encode(hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
        let signature = hmac_sha256(b"key", b"message");
        assert!(verify(b"key", b"message", &signature));
        assert!(!verify(b"key", b"massage", &signature));
        assert!(!verify(b"kez", b"message", &signature));
        assert!(!verify(b"key", b"message", &signature[..31]));
    }
}
