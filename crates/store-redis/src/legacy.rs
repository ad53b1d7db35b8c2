//! The previous key layout, three keys per secret, read and changed (never created) so that
//! secrets, receipts and failure counts written before the upgrade, or by replicas still
//! running the previous version during a rolling upgrade, stay revealable, readable, burnable
//! and counted until they expire. All of it is here: nothing else names these keys.
//!
//! The layout, exactly as the previous version wrote it:
//!
//! - `burnbox:{<secret id, 64 hex digits>}:record` string: one flag byte (bit 0 protected, bit 1
//!   end-to-end) + the sealed record; TTL the secret's.
//! - `burnbox:{<secret id hex>}:receipt` hash: `sealed` (the sealed receipt fields), `state`
//!   (`new`, `received` or `burned`), `updated`, and once set `received` or `burned` (decimal
//!   Unix seconds); TTL the receipt's (twice the secret's).
//! - `burnbox:pointer:<receipt id, 64 hex digits>` string: the secret id as hex; TTL the
//!   receipt's.
//! - `burnbox:{<secret id hex>}:failures` integer: failed passphrase attempts, expiring with the
//!   record.
//!
//! The store comes here only when the current layout has no key for the id asked: a new secret
//! costs nothing more, an old one (or one that does not exist) one more round trip. The scripts
//! are the previous version's, byte for byte, so that an old and a new replica change an old
//! secret identically, and exactly once between them.
//!
//! Delete this module, its calls in the store and its test (`tests/tests/legacy_layout.rs`)
//! once no replica of a version before the compact layout has run for twice the longest ttl
//! (`BURNBOX_MAX_TTL`, 30 days by default, so 60 days): by then the last receipt it wrote has
//! expired. Until then a secret written by an old replica stays readable here, and one written
//! by a new replica is not seen by an old one (a rolling upgrade should be short).

use std::collections::HashMap;

use burnbox_store::{
    ReceiptId, ReceiptState, RecordStatus, SecretId, SecretRecord, StoreError, StoredReceipt,
    UnixSeconds,
};
use redis::{AsyncCommands, Script};

use crate::connection::{Connection, classify};
use crate::keys::{decode_flags, hex32};
use crate::scripts::{Scripts, TakeMode, TakeOutcome, Taken, mode_arg, read_taken};
use crate::{record_status, remaining};

/// The previous take script: takes a record and marks its receipt hash received.
///
/// KEYS[1] record, KEYS[2] receipt; ARGV[1] "unprotected" or "any"; ARGV[2] the time of the
/// take. Returns nil when there is no record, else {"taken" | "protected", record}.
const TAKE_SCRIPT: &str = r#"
if ARGV[1] == 'unprotected' then
  local peeked = redis.call('GET', KEYS[1])
  if not peeked then return false end
  if string.byte(peeked, 1) % 2 == 1 then return {'protected', peeked} end
end
local record = redis.call('GETDEL', KEYS[1])
if not record then return false end
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HSET', KEYS[2], 'state', 'received', 'received', ARGV[2], 'updated', ARGV[2])
end
return {'taken', record}
"#;

/// The previous burn script. KEYS[1] record, KEYS[2] receipt; ARGV[1] the time of the burn.
/// Returns 1 if burned, else 0.
const BURN_SCRIPT: &str = r#"
if redis.call('DEL', KEYS[1]) == 0 then return 0 end
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HSET', KEYS[2], 'state', 'burned', 'burned', ARGV[1], 'updated', ARGV[1])
end
return 1
"#;

/// The previous failed-attempt script. KEYS[1] record, KEYS[2] receipt, KEYS[3] failure count;
/// ARGV[1] max failures, ARGV[2] now. Returns -1 if the record is gone, 0 if this failure
/// burned it, else the failures left. (`allow-oom`: see the current script.)
const FAIL_ATTEMPT_SCRIPT: &str = r#"#!lua flags=allow-oom
local ttl = redis.call('PTTL', KEYS[1])
if ttl <= 0 then return -1 end
local failures = redis.call('INCR', KEYS[3])
redis.call('PEXPIRE', KEYS[3], ttl)
local max = tonumber(ARGV[1])
if failures < max then return max - failures end
redis.call('DEL', KEYS[1], KEYS[3])
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HSET', KEYS[2], 'state', 'burned', 'burned', ARGV[2], 'updated', ARGV[2])
end
return 0
"#;

/// The names of one secret's keys in the previous layout.
struct LegacyKeys(String);

impl LegacyKeys {
    fn of(id: &SecretId) -> Self {
        Self(hex32(id.as_bytes()))
    }

    fn record(&self) -> String {
        format!("burnbox:{{{}}}:record", self.0)
    }

    fn receipt(&self) -> String {
        format!("burnbox:{{{}}}:receipt", self.0)
    }

    fn failures(&self) -> String {
        format!("burnbox:{{{}}}:failures", self.0)
    }
}

fn pointer_key(id: &ReceiptId) -> String {
    format!("burnbox:pointer:{}", hex32(id.as_bytes()))
}

/// The secret id a pointer holds; `None` if it is not one.
fn parse_pointer(hex_id: &str) -> Option<SecretId> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(hex_id, &mut bytes).ok()?;
    Some(SecretId::from_bytes(bytes))
}

/// A record of the previous layout: flag byte, sealed bytes.
fn record_from_bytes(bytes: Vec<u8>) -> Result<SecretRecord, StoreError> {
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

/// The state a receipt hash's `state` field names; `None` for a word never written.
fn state_from_text(text: &str) -> Option<ReceiptState> {
    match text {
        "new" => Some(ReceiptState::New),
        "received" => Some(ReceiptState::Received),
        "burned" => Some(ReceiptState::Burned),
        _ => None,
    }
}

/// A timestamp field of a receipt hash (decimal Unix seconds); `None` when it is not set.
fn parse_timestamp(
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

/// The previous layout's operations, on the store's connection.
#[derive(Clone)]
pub(crate) struct Legacy {
    take: Script,
    burn: Script,
    fail_attempt: Script,
}

impl Legacy {
    pub(crate) fn new() -> Self {
        Self {
            take: Script::new(TAKE_SCRIPT),
            burn: Script::new(BURN_SCRIPT),
            fail_attempt: Script::new(FAIL_ATTEMPT_SCRIPT),
        }
    }

    /// Takes the record of `id` at `at`, as `mode` allows, marking its receipt received.
    pub(crate) async fn take(
        &self,
        connection: &Connection,
        id: &SecretId,
        mode: TakeMode,
        at: UnixSeconds,
    ) -> Result<Option<(TakeOutcome, SecretRecord)>, StoreError> {
        let keys = LegacyKeys::of(id);
        let mut connection = connection.clone();
        let taken: Option<(String, Vec<u8>)> = self
            .take
            .key(keys.record())
            .key(keys.receipt())
            .arg(mode_arg(mode))
            .arg(at)
            .invoke_async(&mut connection)
            .await
            .map_err(classify)?;
        let taken: Taken = read_taken(taken)?;
        taken
            .map(|(outcome, bytes)| Ok((outcome, record_from_bytes(bytes)?)))
            .transpose()
    }

    /// Burns the record of `id` at `at`; `true` if there was one.
    pub(crate) async fn burn(
        &self,
        connection: &Connection,
        id: &SecretId,
        at: UnixSeconds,
    ) -> Result<bool, StoreError> {
        let keys = LegacyKeys::of(id);
        let mut connection = connection.clone();
        let burned: i64 = self
            .burn
            .key(keys.record())
            .key(keys.receipt())
            .arg(at)
            .invoke_async(&mut connection)
            .await
            .map_err(classify)?;
        Ok(burned == 1)
    }

    /// Counts a failed attempt on the record of `id`: -1 if it is gone, 0 if this failure
    /// burned it, else the failures left.
    pub(crate) async fn fail_attempt(
        &self,
        connection: &Connection,
        id: &SecretId,
        max_attempts: u32,
        at: UnixSeconds,
    ) -> Result<i64, StoreError> {
        let keys = LegacyKeys::of(id);
        let mut connection = connection.clone();
        self.fail_attempt
            .key(keys.record())
            .key(keys.receipt())
            .key(keys.failures())
            .arg(max_attempts)
            .arg(at)
            .invoke_async(&mut connection)
            .await
            .map_err(classify)
    }

    /// The record of `id`, untouched.
    pub(crate) async fn peek(
        &self,
        connection: &Connection,
        id: &SecretId,
    ) -> Result<Option<SecretRecord>, StoreError> {
        let mut connection = connection.clone();
        let bytes: Option<Vec<u8>> = connection
            .get(LegacyKeys::of(id).record())
            .await
            .map_err(classify)?;
        bytes.map(record_from_bytes).transpose()
    }

    /// Whether the record of `id` is there, its flags and TTL, without its sealed bytes (the
    /// current layout's script reads a record of this one alike).
    pub(crate) async fn inspect(
        &self,
        connection: &Connection,
        scripts: &Scripts,
        id: &SecretId,
    ) -> Result<Option<RecordStatus>, StoreError> {
        let (head, pttl) = scripts
            .record_state(connection, &LegacyKeys::of(id).record())
            .await?;
        match head.first() {
            None => Ok(None),
            Some(&flags) => record_status(flags, pttl),
        }
    }

    /// The receipt `id` names through its pointer.
    pub(crate) async fn receipt(
        &self,
        connection: &Connection,
        id: &ReceiptId,
    ) -> Result<Option<StoredReceipt>, StoreError> {
        let mut connection = connection.clone();
        let pointer: Option<String> = connection.get(pointer_key(id)).await.map_err(classify)?;
        let Some(secret_id) = pointer.as_deref().and_then(parse_pointer) else {
            return Ok(None);
        };
        let keys = LegacyKeys::of(&secret_id);
        let receipt = keys.receipt();
        let (fields, receipt_pttl, record_pttl): (HashMap<String, Vec<u8>>, i64, i64) =
            redis::pipe()
                .hgetall(&receipt)
                .pttl(&receipt)
                .pttl(keys.record())
                .query_async(&mut connection)
                .await
                .map_err(classify)?;
        let (Some(receipt_ttl), Some(sealed), Some(state)) = (
            remaining(receipt_pttl),
            fields.get("sealed"),
            fields.get("state"),
        ) else {
            return Ok(None);
        };
        let state = std::str::from_utf8(state)
            .ok()
            .and_then(state_from_text)
            .ok_or_else(|| StoreError::Internal("malformed receipt state".into()))?;
        Ok(Some(StoredReceipt {
            secret_id,
            sealed: sealed.clone(),
            state,
            updated: parse_timestamp(&fields, "updated")?.unwrap_or_default(),
            received: parse_timestamp(&fields, "received")?,
            burned: parse_timestamp(&fields, "burned")?,
            receipt_ttl,
            secret_ttl: remaining(record_pttl),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_previous_versions() {
        let id = SecretId::from_bytes([0xab; 32]);
        let hex = "ab".repeat(32);
        let keys = LegacyKeys::of(&id);
        assert_eq!(keys.record(), format!("burnbox:{{{hex}}}:record"));
        assert_eq!(keys.receipt(), format!("burnbox:{{{hex}}}:receipt"));
        assert_eq!(keys.failures(), format!("burnbox:{{{hex}}}:failures"));
        assert_eq!(parse_pointer(&hex), Some(id));
        assert_eq!(parse_pointer("not hex"), None);
        let receipt = ReceiptId::from_metadata_key("m");
        assert_eq!(
            pointer_key(&receipt),
            format!("burnbox:pointer:{}", hex32(receipt.as_bytes()))
        );
    }

    #[test]
    fn records_and_receipt_states_read_back() {
        assert_eq!(
            record_from_bytes(vec![3, b's']).expect("a record"),
            SecretRecord {
                protected: true,
                end_to_end: true,
                sealed: b"s".to_vec()
            }
        );
        assert!(record_from_bytes(vec![4]).is_err(), "an unknown flag bit");
        assert!(record_from_bytes(Vec::new()).is_err());
        for (word, state) in [
            ("new", ReceiptState::New),
            ("received", ReceiptState::Received),
            ("burned", ReceiptState::Burned),
        ] {
            assert_eq!(state_from_text(word), Some(state));
        }
        // The scripts write the words read.
        assert!(TAKE_SCRIPT.contains("'state', 'received'"));
        assert!(BURN_SCRIPT.contains("'state', 'burned'"));
        assert!(FAIL_ATTEMPT_SCRIPT.contains("'state', 'burned'"));
        assert_eq!(state_from_text("gone"), None);
    }
}
