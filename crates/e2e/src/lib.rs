//! The `bbx1` text format of end-to-end encrypted secrets (specified in `docs/end-to-end.md`):
//! one crate, so the server and every client agree on it, free of any server dependency.
//!
//! A client (the web page, the CLI) encrypts the secret with a fresh AES-256-GCM key that
//! travels only in the link's fragment, and shares `bbx1:` + base64url(nonce ‖ ciphertext ‖ tag)
//! as the secret's value. The server never holds the key and never decrypts; it only recognises
//! the format, so the pages can tell before a reveal that only a client holding the link's key
//! can show the secret.

/// What every `bbx1` value starts with.
pub const PREFIX: &str = "bbx1:";

/// AES-GCM nonce (12 bytes) plus tag (16 bytes): the shortest payload, that of an empty text.
const MIN_PAYLOAD_BYTES: usize = 12 + 16;

/// The longest text a client can encrypt into a `bbx1` value of at most `max_value_bytes`
/// (the server's largest secret): base64 turns 3 bytes into 4.
pub fn max_plaintext_bytes(max_value_bytes: usize) -> usize {
    (max_value_bytes.saturating_sub(PREFIX.len()) * 3 / 4).saturating_sub(MIN_PAYLOAD_BYTES)
}

/// Whether `value` is a well-formed `bbx1` text: the prefix, then base64url without padding of
/// at least a nonce and a tag.
pub fn is_end_to_end(value: &str) -> bool {
    let Some(payload) = value.strip_prefix(PREFIX) else {
        return false;
    };
    let alphabet_only = payload
        .bytes()
        .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_');
    // Base64 never ends with a single leftover character.
    alphabet_only && payload.len() % 4 != 1 && payload.len() * 3 / 4 >= MIN_PAYLOAD_BYTES
}

#[cfg(test)]
mod tests {
    use aes_gcm::aead::{Aead, KeyInit};
    use aes_gcm::{Aes256Gcm, Nonce};
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    /// The worked example in `docs/end-to-end.md` decrypts as the document says, so the
    /// document and every client built from it agree with the page.
    #[test]
    fn the_documented_example_decrypts() {
        let doc = include_str!("../../../docs/end-to-end.md");
        let value = doc
            .lines()
            .rfind(|line| line.starts_with(PREFIX))
            .expect("the example value in the document");
        assert!(is_end_to_end(value));
        let payload = URL_SAFE_NO_PAD
            .decode(&value[PREFIX.len()..])
            .expect("base64url");
        let key: Vec<u8> = (0..32).collect();
        assert!(doc.contains("`AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8`"));
        let (nonce, sealed) = payload.split_at(12);
        assert_eq!(nonce, (0..12).collect::<Vec<u8>>());
        let cipher = Aes256Gcm::new_from_slice(&key).expect("32-byte key");
        let plain = cipher
            .decrypt(&Nonce::try_from(nonce).expect("a 12-byte nonce"), sealed)
            .expect("the tag checks");
        assert_eq!(plain, b"hello");
    }

    #[test]
    fn recognises_well_formed_texts_only() {
        let shortest = format!("{PREFIX}{}", "A".repeat(38));
        assert!(is_end_to_end(&shortest));
        assert!(is_end_to_end(&format!("{PREFIX}{}-_x", "A".repeat(40))));
        for not in [
            String::new(),
            "bbx1:".into(),
            format!("{PREFIX}{}", "A".repeat(37)),
            format!("{PREFIX}{}", "A".repeat(41)),
            format!("{PREFIX}{}=", "A".repeat(39)),
            format!("{PREFIX}{}+/", "A".repeat(40)),
            format!("bbx2:{}", "A".repeat(40)),
            format!("BBX1:{}", "A".repeat(40)),
            format!("{PREFIX} {}", "A".repeat(40)),
            "a plain password".into(),
        ] {
            assert!(!is_end_to_end(&not), "{not:?}");
        }
    }
}
