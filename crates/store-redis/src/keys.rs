//! The key layout in Redis and the bytes stored under each key. Two keys per secret:
//!
//! - `burnbox:{T}` string, the record; `T` is the base64url (no padding) of the first 15 bytes
//!   of the secret id, 20 characters. Until the secret is taken: one flag byte (bit 0
//!   protected, bit 1 end-to-end), how long the receipt outlives the record (u32 big-endian,
//!   seconds, plus one), the sealed record. Once taken or burned, a *tombstone* in its place:
//!   `R` or `B` and the Unix seconds of the take or burn, kept until the receipt has expired.
//!   The tombstone is the receipt's state; a record that expired unread is simply gone, which
//!   the receipt reads as "new, secret expired".
//! - `burnbox:p:R` string, the receipt; `R` is the base64url of the first 15 bytes of the
//!   receipt id. One layout byte (1), the whole secret id (32 bytes: the sealed receipt is bound
//!   to it), the creation time (i64 big-endian, Unix seconds: the receipt's `updated` until the
//!   state changes), the sealed receipt fields. Written once, never changed.
//! - `burnbox:{T}f` integer: failed passphrase attempts, expiring with the record (only
//!   protected secrets that were given a wrong passphrase have one).
//! - `burnbox:rate:{<keyed rate key>}` sorted set: one caller's grants of one action class,
//!   scored by when each stops counting; `…:sum` integer: how many requests they count
//! - `burnbox:key-check` string: a known text sealed with the master key (no TTL)
//! - `burnbox:recent:<keyed owner id>` sorted set: sealed entries scored by creation time (µs)
//!
//! Why two keys and not three (record, receipt, pointer, as before): Redis 7.0 spends about 140
//! bytes on a key with a TTL before its value (the main and expires dictionary entries, 32 bytes
//! each; the value object, 16; the name, 32 at best; a slot in each dictionary's table), so
//! three keys cost 420 bytes with empty values, and a 64-byte secret's sealed record alone
//! takes 112. The receipt's state (new, received, burned, and when) must change in the same
//! script as the record and so share its slot, while the receipt itself is found by the receipt
//! id, in another slot: the state therefore lives where the record was, as its tombstone, and
//! the receipt key holds only what never changes (and takes the old pointer's place). A 64-byte
//! secret with its receipt takes ~490 bytes instead of ~1,250.
//!
//! Why these names: a name of at most 30 characters is stored in a 32-byte allocation, one of
//! 31 to 46 in a 48-byte one; `burnbox:` stays because operators' ACLs grant `~burnbox:*`. That
//! leaves 20 characters for the hash tag, 15 bytes of the id: ids are SHA-256 digests of keys
//! the server draws at random, nobody can choose them, and two secrets would share a name only
//! with a chance of 2^-60 per pair stored at once (a birthday bound at 2^60 secrets). Base64url
//! has no braces, so the tag is exactly `T` (Redis hashes what lies between the first `{` and
//! the first `}` after it), and the record and its failure count share one Cluster slot.
//!
//! Keys written by the previous layout (three keys, 64-hex-digit names) are read by `legacy`
//! only; nothing here names them.
//!
//! A keyed name is the HMAC-SHA256 of the id under a [`NamingKey`] (from the master key):
//! customer ids and client addresses are guessable, their plain hashes would not hide them.
//!
//! Never: put a secret key, a metadata key, a customer id or a client address in a name (only
//! hashes of them, keyed where guessable); talk to Redis.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use burnbox_store::{
    NamingKey, OwnerId, RateKey, ReceiptId, ReceiptState, SecretId, SecretRecord, StoreError,
    UnixSeconds,
};

/// Bytes of an id that name its keys: 15, encoded in 20 base64url characters.
const NAME_ID_BYTES: usize = 15;
const NAME_ID_CHARS: usize = 20;

/// `prefix`, the base64url of the first [`NAME_ID_BYTES`] of an id, then `suffix`: a key's
/// name, built in one allocation of its final size (a reveal names a key on every call).
fn name_with_id(prefix: &str, id: &[u8; 32], suffix: &str) -> String {
    let mut name = String::with_capacity(prefix.len() + NAME_ID_CHARS + suffix.len());
    name.push_str(prefix);
    URL_SAFE_NO_PAD.encode_string(&id[..NAME_ID_BYTES], &mut name);
    name.push_str(suffix);
    name
}

/// The names of one secret's keys, under one hash tag (so one cluster slot).
pub(crate) struct SecretKeys {
    record: String,
}

impl SecretKeys {
    pub(crate) fn of(id: &SecretId) -> Self {
        Self {
            record: name_with_id("burnbox:{", id.as_bytes(), "}"),
        }
    }

    /// The record, and its tombstone once it is taken or burned.
    pub(crate) fn record(&self) -> &str {
        &self.record
    }

    pub(crate) fn failures(&self) -> String {
        format!("{}f", self.record)
    }
}

/// The name of a receipt.
pub(crate) fn receipt_key(id: &ReceiptId) -> String {
    name_with_id("burnbox:p:", id.as_bytes(), "")
}

/// The one key without a TTL: it must outlive every secret.
pub(crate) const KEY_CHECK: &str = "burnbox:key-check";

/// The names of one caller's rate-limit window, its grants and their sum, under one hash tag so
/// one script updates both.
pub(crate) fn rate_keys(naming: &NamingKey, key: &RateKey) -> (String, String) {
    let tag = hex32(&naming.name(key.as_bytes()));
    (
        format!("burnbox:rate:{{{tag}}}"),
        format!("burnbox:rate:{{{tag}}}:sum"),
    )
}

pub(crate) fn recent_key(naming: &NamingKey, owner: &OwnerId) -> String {
    format!("burnbox:recent:{}", hex32(&naming.name(owner.as_bytes())))
}

/// Where recent lists were kept before their names were keyed: read (never written) so that
/// lists from before the upgrade stay whole until their entries expire, 30 days after it.
pub(crate) fn unkeyed_recent_key(owner: &OwnerId) -> String {
    format!("burnbox:recent:{}", hex32(owner.as_bytes()))
}

/// Lower-case hex of a 32-byte id. Ids name Redis keys on every request: encoded into a fixed
/// buffer, then copied into a string of the right size, where `hex::encode` builds it through a
/// char iterator of unknown length.
pub(crate) fn hex32(bytes: &[u8; 32]) -> String {
    let mut text = [0u8; 64];
    // Cannot fail: the buffer is exactly twice the input.
    let _ = hex::encode_to_slice(bytes, &mut text);
    text.iter().map(|&digit| char::from(digit)).collect()
}

/// The record's flag byte: bit 0 protected (the take script reads it), bit 1 end-to-end.
const PROTECTED: u8 = 1;
const END_TO_END: u8 = 2;
/// The first byte of a tombstone (the scripts write the same letters), never a flag byte.
const RECEIVED: u8 = b'R';
const BURNED: u8 = b'B';
/// Flag byte and how long the receipt outlives the record.
const RECORD_HEADER: usize = 1 + 4;

/// The record's value: flags, how long the receipt outlives it, the sealed bytes. The time is in
/// whole seconds, rounded up and one more: the record and the receipt are written by two
/// commands, milliseconds apart, and the tombstone (the receipt's state) must not leave before
/// the receipt; a second longer costs nothing.
pub(crate) fn record_value(record: SecretRecord, outlives: Duration) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(RECORD_HEADER + record.sealed.len());
    bytes.push(flags_byte(&record));
    let seconds = outlives
        .as_secs()
        .saturating_add(u64::from(outlives.subsec_nanos() > 0) + 1);
    bytes.extend_from_slice(&u32::try_from(seconds).unwrap_or(u32::MAX).to_be_bytes());
    bytes.extend_from_slice(&record.sealed);
    bytes
}

/// A record's flag byte (in this layout and the previous one alike).
pub(crate) fn flags_byte(record: &SecretRecord) -> u8 {
    let protected = if record.protected { PROTECTED } else { 0 };
    protected | if record.end_to_end { END_TO_END } else { 0 }
}

/// `(protected, end_to_end)` from a flag byte; an unknown bit means a record this version
/// cannot have written.
pub(crate) fn decode_flags(flags: u8) -> Result<(bool, bool), StoreError> {
    if flags & !(PROTECTED | END_TO_END) != 0 {
        return Err(StoreError::Internal("malformed secret record".into()));
    }
    Ok((flags & PROTECTED != 0, flags & END_TO_END != 0))
}

/// What a record key holds.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RecordSlot {
    /// The secret, not taken yet.
    Live(SecretRecord),
    /// The tombstone of a taken (received) or burned secret: the state and when.
    Gone(ReceiptState, UnixSeconds),
}

/// Whether a record key's first byte starts a tombstone.
pub(crate) fn is_tombstone(first: u8) -> bool {
    first == RECEIVED || first == BURNED
}

/// Reads a record key's value.
pub(crate) fn parse_record_slot(bytes: &[u8]) -> Result<RecordSlot, StoreError> {
    let malformed = || StoreError::Internal("malformed secret record".into());
    let Some(&first) = bytes.first() else {
        return Err(malformed());
    };
    if is_tombstone(first) {
        return parse_tombstone(bytes)
            .map(|(state, at)| RecordSlot::Gone(state, at))
            .ok_or_else(malformed);
    }
    let (protected, end_to_end) = decode_flags(first)?;
    let sealed = bytes.get(RECORD_HEADER..).ok_or_else(malformed)?;
    Ok(RecordSlot::Live(SecretRecord {
        protected,
        end_to_end,
        sealed: sealed.to_vec(),
    }))
}

/// The state and time of a tombstone; `None` if `bytes` is not one.
pub(crate) fn parse_tombstone(bytes: &[u8]) -> Option<(ReceiptState, UnixSeconds)> {
    let (&first, time) = bytes.split_first()?;
    let state = match first {
        RECEIVED => ReceiptState::Received,
        BURNED => ReceiptState::Burned,
        _ => return None,
    };
    let at = std::str::from_utf8(time).ok()?.parse().ok()?;
    Some((state, at))
}

/// The tombstone letter the scripts write for `state` (a tombstone is never new): for the tests
/// that check the scripts write what is read here.
#[cfg(test)]
pub(crate) fn tombstone_letter(state: ReceiptState) -> Option<char> {
    match state {
        ReceiptState::New => None,
        ReceiptState::Received => Some(char::from(RECEIVED)),
        ReceiptState::Burned => Some(char::from(BURNED)),
    }
}

/// The first byte of a receipt's value: its layout.
const RECEIPT_LAYOUT_V1: u8 = 1;
const RECEIPT_HEADER: usize = 1 + 32 + 8;

/// The receipt's value: layout, the secret id, the creation time, the sealed fields.
pub(crate) fn receipt_value(secret_id: &SecretId, created: UnixSeconds, sealed: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(RECEIPT_HEADER + sealed.len());
    bytes.push(RECEIPT_LAYOUT_V1);
    bytes.extend_from_slice(secret_id.as_bytes());
    bytes.extend_from_slice(&created.to_be_bytes());
    bytes.extend_from_slice(sealed);
    bytes
}

/// A receipt's stored parts: its secret's id, its creation time and its sealed fields.
pub(crate) struct ReceiptValue {
    pub(crate) secret_id: SecretId,
    pub(crate) created: UnixSeconds,
    pub(crate) sealed: Vec<u8>,
}

/// Reads a receipt's value.
pub(crate) fn parse_receipt_value(bytes: &[u8]) -> Result<ReceiptValue, StoreError> {
    let malformed = || StoreError::Internal("malformed receipt".into());
    let Some((&RECEIPT_LAYOUT_V1, rest)) = bytes.split_first() else {
        return Err(malformed());
    };
    let (id, rest) = rest.split_first_chunk::<32>().ok_or_else(malformed)?;
    let (created, sealed) = rest.split_first_chunk::<8>().ok_or_else(malformed)?;
    Ok(ReceiptValue {
        secret_id: SecretId::from_bytes(*id),
        created: i64::from_be_bytes(*created),
        sealed: sealed.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(protected: bool, end_to_end: bool) -> SecretRecord {
        SecretRecord {
            protected,
            end_to_end,
            sealed: b"sealed bytes".to_vec(),
        }
    }

    #[test]
    fn names_fit_a_32_byte_allocation_and_share_one_brace_free_tag() {
        for index in 0..=255u8 {
            // Every byte value, braces included, in every position of the named prefix.
            let mut bytes = [index; 32];
            bytes[index as usize % NAME_ID_BYTES] = b'{';
            bytes[(index as usize + 7) % NAME_ID_BYTES] = b'}';
            let id = SecretId::from_bytes(bytes);
            let keys = SecretKeys::of(&id);
            let tag = format!(
                "{{{}}}",
                URL_SAFE_NO_PAD.encode(&id.as_bytes()[..NAME_ID_BYTES])
            );
            assert_eq!(keys.record().len(), 30, "{}", keys.record());
            assert_eq!(keys.record(), format!("burnbox:{tag}"));
            assert_eq!(keys.failures(), format!("burnbox:{tag}f"));
            // The tag Redis hashes: between the first `{` and the first `}` after it.
            let name = keys.failures();
            let inner = name
                .split_once('{')
                .and_then(|(_, rest)| rest.split_once('}'))
                .map(|(inner, _)| inner);
            assert_eq!(inner.map(str::len), Some(NAME_ID_CHARS), "{name}");
            let receipt = receipt_key(&ReceiptId::from_metadata_key(&format!("m{index}")));
            assert_eq!(receipt.len(), 30, "{receipt}");
            assert!(!receipt.contains(['{', '}']), "{receipt}");
        }
    }

    #[test]
    fn names_hold_no_key() {
        let id = SecretId::from_secret_key("a secret key");
        let keys = SecretKeys::of(&id);
        for name in [keys.record().to_owned(), keys.failures()] {
            assert!(!name.contains("a secret key"), "{name}");
        }
        assert!(!receipt_key(&ReceiptId::from_metadata_key("a metadata key")).contains("key"));
    }

    #[test]
    fn ids_are_named_by_their_lower_case_hex() {
        let mut bytes = [0u8; 32];
        for (index, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::try_from(index * 8).unwrap_or(u8::MAX);
        }
        let expected: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
        assert_eq!(hex32(&bytes), expected);
        assert_eq!(hex32(&[0xff; 32]), "ff".repeat(32));
    }

    #[test]
    fn records_keep_their_flags_and_bit_0_is_what_the_take_script_reads() {
        for (protected, end_to_end) in [(false, false), (true, false), (false, true), (true, true)]
        {
            let record = record(protected, end_to_end);
            let bytes = record_value(record.clone(), Duration::from_secs(3600));
            // The take script leaves a record in place when its first byte is odd, and reads
            // a tombstone's letter as none of the flags.
            assert_eq!(bytes.first().map(|flags| flags % 2 == 1), Some(protected));
            assert!(bytes.first().is_some_and(|&first| !is_tombstone(first)));
            assert_eq!(
                parse_record_slot(&bytes).expect("decodes"),
                RecordSlot::Live(record)
            );
        }
        assert!(
            parse_record_slot(&[4, 0, 0, 0, 0]).is_err(),
            "an unknown flag bit"
        );
        assert!(parse_record_slot(&[0, 0, 0]).is_err(), "a cut header");
        assert!(parse_record_slot(&[]).is_err(), "nothing");
    }

    #[test]
    fn the_tombstone_outlives_the_record_by_a_second_more_than_the_receipt() {
        let outlives = |duration| {
            let bytes = record_value(record(false, false), duration);
            u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]])
        };
        assert_eq!(outlives(Duration::from_secs(3600)), 3601);
        assert_eq!(outlives(Duration::from_millis(1)), 2);
        assert_eq!(outlives(Duration::ZERO), 1);
        assert_eq!(outlives(Duration::MAX), u32::MAX);
    }

    #[test]
    fn tombstones_read_back_with_their_state_and_time() {
        for state in [ReceiptState::Received, ReceiptState::Burned] {
            let letter = tombstone_letter(state).expect("a tombstone state");
            let tombstone = format!("{letter}1700000000");
            assert_eq!(
                parse_record_slot(tombstone.as_bytes()).expect("decodes"),
                RecordSlot::Gone(state, 1_700_000_000)
            );
        }
        assert_eq!(tombstone_letter(ReceiptState::New), None);
        assert!(parse_record_slot(b"R").is_err(), "no time");
        assert!(parse_record_slot(b"Rsoon").is_err(), "no number");
        assert_eq!(parse_tombstone(b"X1"), None);
    }

    #[test]
    fn receipts_read_back() {
        let id = SecretId::from_secret_key("k");
        let bytes = receipt_value(&id, -1, b"sealed");
        assert_eq!(bytes.len(), RECEIPT_HEADER + 6);
        let read = parse_receipt_value(&bytes).expect("decodes");
        assert_eq!(
            (read.secret_id, read.created, read.sealed),
            (id, -1, b"sealed".to_vec())
        );
        assert!(parse_receipt_value(&bytes[..RECEIPT_HEADER - 1]).is_err());
        assert!(parse_receipt_value(&[2; 64]).is_err(), "an unknown layout");
        assert!(parse_receipt_value(&[]).is_err());
    }
}
