//! Random keys: secret keys (they reveal a secret) and metadata keys (they read a receipt).

use rand::RngExt;

/// Lowercase letters and digits: URL-safe, case-insensitive-safe, like Onetime Secret's keys.
const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// 31 characters of base 36 carry log2(36^31) ≈ 160 bits of entropy, well over 128.
pub const KEY_LENGTH: usize = 31;

/// A freshly generated key from the thread-local CSPRNG (ChaCha, seeded by the OS).
pub(crate) fn generate_key() -> String {
    let mut rng = rand::rng();
    (0..KEY_LENGTH)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// Whether `text` could be a key this service generated. Anything else cannot exist, so it is
/// answered as not found without touching the store.
pub(crate) fn is_well_formed(text: &str) -> bool {
    text.len() == KEY_LENGTH && text.bytes().all(|byte| ALPHABET.contains(&byte))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_well_formed_and_distinct() {
        let first = generate_key();
        let second = generate_key();
        assert!(is_well_formed(&first), "{first}");
        assert_ne!(first, second);
    }

    #[test]
    fn foreign_shapes_are_rejected() {
        assert!(!is_well_formed(""));
        assert!(!is_well_formed(&"A".repeat(KEY_LENGTH)));
        assert!(!is_well_formed(&"a".repeat(KEY_LENGTH + 1)));
        assert!(!is_well_formed("../../etc/passwd"));
    }
}
