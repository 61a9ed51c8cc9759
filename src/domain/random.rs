//! Random values: DNS tokens, environment tokens, client secrets and verification codes.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

const LOWER_ALNUM: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// `bytes` random bytes as unpadded base64url (a 32-byte token carries 256 bits).
pub fn random_base64url(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    fill(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// `len` characters from `[a-z0-9]`, uniformly (rejection sampling avoids modulo bias).
pub fn random_lower_alnum(len: usize) -> String {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        fill(&mut buf);
        for &b in &buf {
            // 252 = 7 * 36: bytes at or above it would favour the first letters.
            if b < 252 && out.len() < len {
                out.push(char::from(LOWER_ALNUM[usize::from(b % 36)]));
            }
        }
    }
    out
}

pub(super) fn fill(buf: &mut [u8]) {
    // The system RNG failing is not something a request can recover from.
    #[allow(clippy::expect_used)]
    SystemRandom::new()
        .fill(buf)
        .expect("the system random number generator failed");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_the_promised_alphabet_and_length() {
        let t = random_lower_alnum(32);
        assert_eq!(t.len(), 32);
        assert!(
            t.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        );
        let b = random_base64url(32);
        assert_eq!(b.len(), 43);
        assert!(
            b.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert_ne!(random_base64url(32), b);
    }
}
