//! The key layout in Redis and the bytes stored under it. Every name is derived from hashes,
//! never from a key itself:
//!
//! - `burnbox:{<secret id>}:record`   string: one flag byte (bit 0 protected, bit 1 end-to-end)
//!   + the sealed record
//! - `burnbox:{<secret id>}:receipt`  hash: `sealed`, `state`, `updated`, `received`, `burned`
//! - `burnbox:pointer:<receipt id>`   string: the secret id (hex) of the receipt's secret
//! - `burnbox:{<secret id>}:failures` integer: failed passphrase attempts, expiring with the record
//! - `burnbox:rate:{<keyed rate key>}` sorted set: one caller's grants of one action class,
//!   scored by when each stops counting; `…:sum` integer: how many requests they count
//! - `burnbox:key-check`             string: a known text sealed with the master key (no TTL)
//! - `burnbox:recent:<keyed owner id>` sorted set: sealed entries scored by creation time (µs)
//!
//! A keyed name is the HMAC-SHA256 of the id under a [`NamingKey`] (from the master key):
//! customer ids and client addresses are guessable, their plain hashes would not hide them.
//!
//! The record, its receipt and its failure count share a hash tag, so the scripts that touch
//! them stay inside one Redis Cluster slot.
//!
//! Never: put a secret key, a metadata key, a customer id or a client address in a name (only
//! hashes of them, keyed where guessable); talk to Redis.

use std::collections::HashMap;

use burnbox_store::{
    NamingKey, OwnerId, RateKey, ReceiptId, ReceiptState, SecretId, SecretRecord, StoreError,
    UnixSeconds,
};

/// The names of one secret's keys, all under one hash tag (so one cluster slot): the id's hex,
/// encoded once for all of them.
pub(crate) struct SecretKeys(String);

impl SecretKeys {
    pub(crate) fn of(id: &SecretId) -> Self {
        Self(hex32(id.as_bytes()))
    }

    pub(crate) fn record(&self) -> String {
        format!("burnbox:{{{}}}:record", self.0)
    }

    pub(crate) fn receipt(&self) -> String {
        format!("burnbox:{{{}}}:receipt", self.0)
    }

    pub(crate) fn failures(&self) -> String {
        format!("burnbox:{{{}}}:failures", self.0)
    }
}

pub(crate) fn pointer_key(id: &ReceiptId) -> String {
    format!("burnbox:pointer:{}", hex32(id.as_bytes()))
}

/// What a receipt pointer holds: the id of its secret, as hex.
pub(crate) fn pointer_value(id: &SecretId) -> String {
    hex32(id.as_bytes())
}

/// The secret id a receipt pointer holds; `None` if it is not one.
pub(crate) fn parse_pointer(hex_id: &str) -> Option<SecretId> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(hex_id, &mut bytes).ok()?;
    Some(SecretId::from_bytes(bytes))
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
fn hex32(bytes: &[u8; 32]) -> String {
    let mut text = [0u8; 64];
    // Cannot fail: the buffer is exactly twice the input.
    let _ = hex::encode_to_slice(bytes, &mut text);
    text.iter().map(|&digit| char::from(digit)).collect()
}

/// The record's flag byte: bit 0 protected (the take script reads it), bit 1 end-to-end.
const PROTECTED: u8 = 1;
const END_TO_END: u8 = 2;

pub(crate) fn record_to_bytes(record: SecretRecord) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(record.sealed.len() + 1);
    let flags = if record.protected { PROTECTED } else { 0 }
        | if record.end_to_end { END_TO_END } else { 0 };
    bytes.push(flags);
    bytes.extend_from_slice(&record.sealed);
    bytes
}

/// `(protected, end_to_end)` from a flag byte; an unknown bit means a record this version
/// cannot have written.
pub(crate) fn decode_flags(flags: u8) -> Result<(bool, bool), StoreError> {
    if flags & !(PROTECTED | END_TO_END) != 0 {
        return Err(StoreError::Internal("malformed secret record".into()));
    }
    Ok((flags & PROTECTED != 0, flags & END_TO_END != 0))
}

pub(crate) fn record_from_bytes(bytes: Vec<u8>) -> Result<SecretRecord, StoreError> {
    let Some((&flags, sealed)) = bytes.split_first() else {
        return Err(StoreError::Internal("malformed secret record".into()));
    };
    let (protected, end_to_end) = decode_flags(flags)?;
    Ok(SecretRecord {
        protected,
        end_to_end,
        sealed: sealed.to_vec(),
    })
}

/// The receipt hash's `state` field for `state` (the scripts write the same words).
pub(crate) fn state_to_text(state: ReceiptState) -> &'static str {
    match state {
        ReceiptState::New => "new",
        ReceiptState::Received => "received",
        ReceiptState::Burned => "burned",
    }
}

/// The state a receipt hash's `state` field names; `None` for a word this version never writes.
pub(crate) fn state_from_text(text: &str) -> Option<ReceiptState> {
    match text {
        "new" => Some(ReceiptState::New),
        "received" => Some(ReceiptState::Received),
        "burned" => Some(ReceiptState::Burned),
        _ => None,
    }
}

/// A timestamp field of a receipt hash (decimal Unix seconds); `None` when it is not set.
pub(crate) fn parse_timestamp(
    fields: &HashMap<String, Vec<u8>>,
    name: &str,
) -> Result<Option<UnixSeconds>, StoreError> {
    fields
        .get(name)
        .map(|raw| {
            std::str::from_utf8(raw)
                .ok()
                .and_then(|text| text.parse().ok())
                .ok_or_else(|| StoreError::Internal(format!("malformed receipt field {name}")))
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

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
            let record = SecretRecord {
                protected,
                end_to_end,
                sealed: b"sealed bytes".to_vec(),
            };
            let bytes = record_to_bytes(record.clone());
            // The take script leaves a record in place when its first byte is odd.
            assert_eq!(bytes.first().map(|flags| flags % 2 == 1), Some(protected));
            assert_eq!(record_from_bytes(bytes).expect("decodes"), record);
        }
        assert!(
            record_from_bytes(vec![4, 0]).is_err(),
            "an unknown flag bit"
        );
        assert!(record_from_bytes(Vec::new()).is_err(), "no flag byte");
    }

    #[test]
    fn receipt_states_read_back_from_their_words() {
        for state in [
            ReceiptState::New,
            ReceiptState::Received,
            ReceiptState::Burned,
        ] {
            assert_eq!(state_from_text(state_to_text(state)), Some(state));
        }
        assert_eq!(state_from_text("gone"), None);
    }

    #[test]
    fn a_secrets_keys_share_one_hash_tag_and_hold_only_its_hex_id() {
        let id = SecretId::from_secret_key("a secret key");
        let keys = SecretKeys::of(&id);
        let tag = format!("{{{}}}", hex32(id.as_bytes()));
        for name in [keys.record(), keys.receipt(), keys.failures()] {
            assert!(name.contains(&tag), "{name}");
            assert!(!name.contains("a secret key"), "{name}");
        }
        assert_eq!(parse_pointer(&pointer_value(&id)), Some(id));
        assert_eq!(parse_pointer("not hex"), None);
    }
}
