//! The `bbx1` text format of end-to-end encrypted secrets (specified in `docs/end-to-end.md`):
//! one crate, so the server and every client agree on it, free of any server dependency.
//!
//! A client (the web page, the CLI) encrypts the secret with a fresh AES-256-GCM key that
//! travels only in the link's fragment, and shares `bbx1:` + base64url(nonce ‖ ciphertext ‖ tag)
//! as the secret's value. The server never holds the key and never decrypts; it only recognises
//! the format, so the pages can tell before a reveal that only a client holding the link's key
//! can show the secret.
//!
//! [`seal`] and [`open`] are the client side (the CLI); the server uses only [`is_end_to_end`].

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, Generate, Key, KeyInit, Nonce};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

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

/// A secret sealed for end-to-end sharing: the value to share, and the key for the link's
/// fragment (never sent to a server).
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    /// `bbx1:` + base64url(nonce ‖ ciphertext ‖ tag): what the server stores.
    pub value: String,
    /// The 32-byte key as base64url without padding (43 characters): the link's fragment.
    pub key_fragment: String,
}

// The key opens the secret: it must not end up in a log line through `{:?}`.
impl std::fmt::Debug for Sealed {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Sealed")
            .field("value", &self.value)
            .field("key_fragment", &"<redacted>")
            .finish()
    }
}

/// Encrypts `plaintext` into a `bbx1` value under a fresh key and nonce from the operating
/// system's CSPRNG.
pub fn seal(plaintext: &str) -> Sealed {
    let key = Key::<Aes256Gcm>::generate();
    let nonce = Nonce::<Aes256Gcm>::generate();
    let cipher = Aes256Gcm::new(&key);
    // Encryption into a Vec fails only for texts beyond GCM's 64 GiB limit, which no server
    // accepts; an empty value then fails the server's validation instead of a panic here.
    let sealed = cipher
        .encrypt(&nonce, plaintext.as_bytes())
        .unwrap_or_default();
    let mut payload = Vec::with_capacity(nonce.len() + sealed.len());
    payload.extend_from_slice(&nonce);
    payload.extend_from_slice(&sealed);
    Sealed {
        value: format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(payload)),
        key_fragment: URL_SAFE_NO_PAD.encode(key),
    }
}

/// Why a `bbx1` value could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenError {
    /// The value is not a well-formed `bbx1` text.
    NotEndToEnd,
    /// The key is not 32 bytes of base64url.
    MalformedKey,
    /// The tag does not check: a wrong key, or a changed value.
    WrongKeyOrTampered,
    /// The decrypted bytes are not UTF-8 (a client that did not follow the format).
    NotUtf8,
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(match self {
            Self::NotEndToEnd => "the value is not an end-to-end (bbx1) secret",
            Self::MalformedKey => "the link's key (after #) is not a 43-character base64url key",
            Self::WrongKeyOrTampered => {
                "the secret does not decrypt with the link's key: a wrong key, or a changed value"
            }
            Self::NotUtf8 => "the decrypted secret is not UTF-8 text",
        })
    }
}

impl std::error::Error for OpenError {}

/// Decrypts a `bbx1` `value` with the link's `key_fragment` (base64url, 32 bytes), following
/// the steps of `docs/end-to-end.md`: never partial text.
pub fn open(value: &str, key_fragment: &str) -> Result<String, OpenError> {
    if !is_end_to_end(value) {
        return Err(OpenError::NotEndToEnd);
    }
    let payload = URL_SAFE_NO_PAD
        .decode(&value[PREFIX.len()..])
        .map_err(|_| OpenError::NotEndToEnd)?;
    let key = URL_SAFE_NO_PAD
        .decode(key_fragment)
        .map_err(|_| OpenError::MalformedKey)?;
    let cipher = Aes256Gcm::new_from_slice(&key).map_err(|_| OpenError::MalformedKey)?;
    let (nonce, sealed) = payload.split_at(12);
    let nonce = Nonce::<Aes256Gcm>::try_from(nonce).map_err(|_| OpenError::NotEndToEnd)?;
    let plain = cipher
        .decrypt(&nonce, sealed)
        .map_err(|_| OpenError::WrongKeyOrTampered)?;
    String::from_utf8(plain).map_err(|_| OpenError::NotUtf8)
}

#[cfg(test)]
mod tests {
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
            .decrypt(
                &Nonce::<Aes256Gcm>::try_from(nonce).expect("a 12-byte nonce"),
                sealed,
            )
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

    /// `open` of the document's example, through the public API.
    #[test]
    fn open_reads_the_documented_example() {
        let doc = include_str!("../../../docs/end-to-end.md");
        let value = doc
            .lines()
            .rfind(|line| line.starts_with(PREFIX))
            .expect("the example value in the document");
        assert_eq!(
            open(value, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"),
            Ok("hello".to_owned())
        );
    }

    #[test]
    fn seal_then_open_round_trips() {
        for text in [
            "",
            "hello",
            "line one\nline two\n",
            "ünïcødé 🔥",
            &"x".repeat(100_000),
        ] {
            let sealed = seal(text);
            assert!(is_end_to_end(&sealed.value), "{}", sealed.value);
            assert_eq!(sealed.key_fragment.len(), 43);
            assert_eq!(
                open(&sealed.value, &sealed.key_fragment).as_deref(),
                Ok(text)
            );
        }
        // Fresh key and nonce every time.
        let (one, two) = (seal("same"), seal("same"));
        assert_ne!(one.value, two.value);
        assert_ne!(one.key_fragment, two.key_fragment);
        assert!(!format!("{one:?}").contains(&one.key_fragment));
    }

    #[test]
    fn a_wrong_key_or_a_changed_value_opens_nothing() {
        let sealed = seal("the launch codes");
        let other = seal("x");
        assert_eq!(
            open(&sealed.value, &other.key_fragment),
            Err(OpenError::WrongKeyOrTampered)
        );
        // Flip one character of the payload (keeping it base64url).
        let mut tampered = sealed.value.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).expect("ASCII");
        assert_eq!(
            open(&tampered, &sealed.key_fragment),
            Err(OpenError::WrongKeyOrTampered)
        );
        for key in ["", "short", "!!!!", &"A".repeat(44)] {
            assert_eq!(
                open(&sealed.value, key),
                Err(OpenError::MalformedKey),
                "{key}"
            );
        }
        assert_eq!(
            open("plain text", &sealed.key_fragment),
            Err(OpenError::NotEndToEnd)
        );
    }
}
