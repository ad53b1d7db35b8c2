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

/// The character classes of a generated password; every password holds at least one of each.
const PASSWORD_CLASSES: [&[u8]; 4] = [
    b"abcdefghijkmnopqrstuvwxyz",
    b"ABCDEFGHJKLMNPQRSTUVWXYZ",
    b"23456789",
    b"!#$%&*+-=?@^_~",
];

/// A random password of `length` (at least 4) characters: letters, digits and symbols (without
/// the look-alikes l, I, O, 0 and 1), at least one of each class, from the thread-local CSPRNG.
pub(crate) fn generate_password(length: usize) -> zeroize::Zeroizing<String> {
    let alphabet: Vec<u8> = PASSWORD_CLASSES.concat();
    let mut rng = rand::rng();
    loop {
        let candidate: zeroize::Zeroizing<String> = zeroize::Zeroizing::new(
            (0..length)
                .map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())]))
                .collect(),
        );
        // Rejection keeps the distribution uniform over passwords that have every class.
        let complete = PASSWORD_CLASSES
            .iter()
            .all(|class| candidate.bytes().any(|byte| class.contains(&byte)));
        if complete {
            return candidate;
        }
    }
}

/// Whether `text` could be a key this service generated. Anything else cannot exist, so it is
/// answered as not found without touching the store.
pub(crate) fn is_well_formed(text: &str) -> bool {
    // A range test, not a search of ALPHABET: this runs on every reveal.
    text.len() == KEY_LENGTH
        && text
            .bytes()
            .all(|byte| byte.is_ascii_digit() || byte.is_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alphabet_is_what_the_key_check_accepts() {
        // is_well_formed tests ranges rather than searching ALPHABET: the two must agree.
        let accepted: Vec<u8> = (0..=u8::MAX)
            .filter(|byte| byte.is_ascii_digit() || byte.is_ascii_lowercase())
            .collect();
        assert_eq!(accepted, ALPHABET.to_vec());
    }

    #[test]
    fn generated_keys_are_well_formed_and_distinct() {
        let first = generate_key();
        let second = generate_key();
        assert!(is_well_formed(&first), "{first}");
        assert_ne!(first, second);
    }

    #[test]
    fn passwords_have_the_length_and_every_class() {
        for length in [4, 12, 128] {
            let password = generate_password(length);
            assert_eq!(password.chars().count(), length);
            for class in PASSWORD_CLASSES {
                assert!(
                    password.bytes().any(|byte| class.contains(&byte)),
                    "{length}"
                );
            }
        }
        assert_ne!(*generate_password(12), *generate_password(12));
    }

    #[test]
    fn foreign_shapes_are_rejected() {
        assert!(!is_well_formed(""));
        assert!(!is_well_formed(&"A".repeat(KEY_LENGTH)));
        assert!(!is_well_formed(&"a".repeat(KEY_LENGTH + 1)));
        assert!(!is_well_formed("../../etc/passwd"));
    }
}
