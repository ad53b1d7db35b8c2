//! The Lua scripts that make each multi-step change one atomic step in Redis, and their
//! invocation: the take (the reveal's one round trip), the burn, the failed-attempt count, the
//! record's state as its receipt sees it, and the sliding-window rate limit. The scripts of the
//! previous key layout are `legacy`'s.
//!
//! Never: name a key (the caller passes names from `keys`), or touch keys of more than one hash
//! tag in one script (a Redis Cluster refuses a script across slots).

use std::time::Duration;

use burnbox_store::{Lease, StoreError, UnixSeconds};
use redis::Script;

use crate::connection::{Connection, classify};
use crate::keys::SecretKeys;
use crate::{millis, now_micros};

/// The Lua every record script starts with: its flags, and `bury`, which turns the live record
/// in KEYS[1] into the tombstone of `state` (`R` received, `B` burned, as `keys` reads them) at
/// `at`, kept as long as the receipt (the record's TTL plus the seconds the record says the
/// receipt outlives it); `live`, whether a record key's value is a record, not a tombstone.
///
/// `allow-oom`: a Redis at `maxmemory` (policy `noeviction`) refuses a script's first write that
/// may grow memory. The tombstone replaces a larger record, so taking and burning free memory; a
/// full store must still reveal (and so drain), and count failed passphrases (else filling Redis
/// would open unlimited guessing; the counter is a few bytes).
macro_rules! record_script {
    ($body:literal) => {
        concat!(
            "#!lua flags=allow-oom\n",
            r#"
local function live(value)
  local first = string.byte(value, 1)
  return first ~= 82 and first ~= 66
end
local function bury(record, state, at)
  local a, b, c, d = string.byte(record, 2, 5)
  local outlives = ((a * 256 + b) * 256 + c) * 256 + d
  local ttl = redis.call('PTTL', KEYS[1])
  redis.call('SET', KEYS[1], state .. at, 'PX', math.max(ttl, 1) + outlives * 1000)
end
"#,
            $body
        )
    };
}

/// Takes a record atomically, leaving the tombstone that marks its receipt received.
///
/// KEYS[1] record; ARGV[1] "unprotected" to leave protected records in place (returned
/// untouched) or "any"; ARGV[2] the time of the take (Unix seconds).
/// Returns nil when there is no record, else {"taken" | "protected", record}.
pub(crate) const TAKE_SCRIPT: &str = record_script!(
    r#"
local record = redis.call('GET', KEYS[1])
if not record or not live(record) then return false end
if ARGV[1] == 'unprotected' and string.byte(record, 1) % 2 == 1 then
  return {'protected', record}
end
bury(record, 'R', ARGV[2])
return {'taken', record}
"#
);

/// Burns a record unread, leaving the tombstone that marks its receipt burned.
///
/// KEYS[1] record; ARGV[1] the time of the burn. Returns 1 if burned, else 0.
pub(crate) const BURN_SCRIPT: &str = record_script!(
    r#"
local record = redis.call('GET', KEYS[1])
if not record or not live(record) then return 0 end
bury(record, 'B', ARGV[1])
return 1
"#
);

/// Counts a failed passphrase attempt; burns the secret at the limit.
///
/// KEYS[1] record, KEYS[2] failure count; ARGV[1] max failures, ARGV[2] now.
/// Returns -1 if the record is gone, 0 if this failure burned it, else the failures left.
pub(crate) const FAIL_ATTEMPT_SCRIPT: &str = record_script!(
    r#"
local record = redis.call('GET', KEYS[1])
if not record or not live(record) then return -1 end
local ttl = redis.call('PTTL', KEYS[1])
if ttl <= 0 then return -1 end
local failures = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ttl)
local max = tonumber(ARGV[1])
if failures < max then return max - failures end
bury(record, 'B', ARGV[2])
redis.call('DEL', KEYS[2])
return 0
"#
);

/// What a receipt or a status look-up needs of a record: the record key's first byte and TTL
/// while the record is live (never its sealed bytes), its tombstone once taken or burned.
///
/// KEYS[1] record. Returns {"", -2} when the key is gone, {tombstone, ttl} or {flag byte, ttl}.
/// A script so that the two reads see one state, the sealed bytes stay in Redis, and only
/// commands the documented ACL grants are used (`GETRANGE` is not among them).
pub(crate) const RECORD_STATE_SCRIPT: &str = r#"#!lua flags=no-writes
local value = redis.call('GET', KEYS[1])
if not value then return {'', -2} end
local ttl = redis.call('PTTL', KEYS[1])
local first = string.byte(value, 1)
if first == 82 or first == 66 then return {value, ttl} end
return {string.sub(value, 1, 1), ttl}
"#;

/// A sliding-window rate limit on Redis's clock, so every replica counts alike, counting a lease
/// of several requests at once.
///
/// KEYS[1] the grants (sorted set: member `<count>:<unique>`, score the ms at which the grant
/// stops counting), KEYS[2] their sum; ARGV[1] limit, ARGV[2] window in ms, ARGV[3] requests
/// wanted, ARGV[4] hold in ms (how long the caller may go on spending them), ARGV[5] a unique
/// member suffix. Returns {granted, 0} if at least one was counted, else {0, the ms until the
/// oldest grant stops counting}. A grant counts for window + hold, so each request spent from it
/// is still counted a whole window after it was spent.
///
/// Only commands the documented ACL grants (`k8s/overlays/production/redis-user.acl`): the sum is
/// read and written whole (`GET`, `SET`), and ended grants found with `ZRANGE … BYSCORE`.
///
/// `allow-oom`: a Redis at `maxmemory` (policy `noeviction`) would refuse the `ZADD`, and with it
/// every reveal, status and burn, so the store could not drain; a grant is a few bytes.
const RATE_LIMIT_SCRIPT: &str = r#"#!lua flags=allow-oom
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local limit = tonumber(ARGV[1])
local counted_for = tonumber(ARGV[2]) + tonumber(ARGV[4])
local total = tonumber(redis.call('GET', KEYS[2]) or '0')
local ended = redis.call('ZRANGE', KEYS[1], '-inf', now, 'BYSCORE')
if #ended > 0 then
  for _, member in ipairs(ended) do
    total = total - tonumber(string.match(member, '^%d+'))
  end
  total = math.max(0, total)
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
end
if total >= limit then
  if #ended > 0 then redis.call('SET', KEYS[2], total, 'KEEPTTL') end
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  local ends = tonumber(oldest[2] or now)
  return {0, math.max(1, ends - now)}
end
local granted = math.min(tonumber(ARGV[3]), limit - total)
redis.call('ZADD', KEYS[1], now + counted_for, granted .. ':' .. ARGV[5])
local zset_ttl = redis.call('PTTL', KEYS[1])
if zset_ttl < counted_for then redis.call('PEXPIRE', KEYS[1], counted_for) end
redis.call('SET', KEYS[2], total + granted, 'PX', math.max(zset_ttl, counted_for))
return {granted, 0}
"#;

/// Which records [`Scripts::take`] takes.
#[derive(Clone, Copy, Debug)]
pub(crate) enum TakeMode {
    /// Only unprotected records; a protected one is returned untouched.
    Unprotected,
    /// Any record (its passphrase was verified).
    Any,
}

/// What the take script found: `None` when there is no record.
pub(crate) type Taken = Option<(TakeOutcome, Vec<u8>)>;

/// Whether the take script took the record or left a protected one in place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TakeOutcome {
    /// Deleted, its receipt marked received.
    Taken,
    /// Protected and asked to take only unprotected records: left as it was.
    Protected,
}

/// Reads the take script's answer (the legacy one answers alike).
pub(crate) fn read_taken(taken: Option<(String, Vec<u8>)>) -> Result<Taken, StoreError> {
    taken
        .map(|(kind, bytes)| {
            let outcome = match kind.as_str() {
                "taken" => TakeOutcome::Taken,
                "protected" => TakeOutcome::Protected,
                other => {
                    return Err(StoreError::Internal(format!(
                        "unexpected take result {other:?}"
                    )));
                }
            };
            Ok((outcome, bytes))
        })
        .transpose()
}

/// The take script's first argument for `mode` (the legacy one reads it alike).
pub(crate) fn mode_arg(mode: TakeMode) -> &'static str {
    match mode {
        TakeMode::Unprotected => "unprotected",
        TakeMode::Any => "any",
    }
}

/// The scripts, each loaded once per Redis (by SHA, falling back to the source when a Redis
/// does not know it yet).
#[derive(Clone)]
pub(crate) struct Scripts {
    take: Script,
    burn: Script,
    fail_attempt: Script,
    record_state: Script,
    rate_limit: Script,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        Self {
            take: Script::new(TAKE_SCRIPT),
            burn: Script::new(BURN_SCRIPT),
            fail_attempt: Script::new(FAIL_ATTEMPT_SCRIPT),
            record_state: Script::new(RECORD_STATE_SCRIPT),
            rate_limit: Script::new(RATE_LIMIT_SCRIPT),
        }
    }

    /// Takes the record of `keys` at `at` (Unix seconds), as `mode` allows.
    pub(crate) async fn take(
        &self,
        connection: &Connection,
        keys: &SecretKeys,
        mode: TakeMode,
        at: UnixSeconds,
    ) -> Result<Taken, StoreError> {
        let mut connection = connection.clone();
        let taken: Option<(String, Vec<u8>)> = self
            .take
            .key(keys.record())
            .arg(mode_arg(mode))
            .arg(at)
            .invoke_async(&mut connection)
            .await
            .map_err(classify)?;
        read_taken(taken)
    }

    /// Burns the record of `keys` at `at`; `true` if there was one to burn.
    pub(crate) async fn burn(
        &self,
        connection: &Connection,
        keys: &SecretKeys,
        at: UnixSeconds,
    ) -> Result<bool, StoreError> {
        let mut connection = connection.clone();
        let burned: i64 = self
            .burn
            .key(keys.record())
            .arg(at)
            .invoke_async(&mut connection)
            .await
            .map_err(classify)?;
        Ok(burned == 1)
    }

    /// Counts a failed attempt on the record of `keys`: the script's answer, -1 if the record is
    /// gone, 0 if this failure burned it, else the failures left.
    pub(crate) async fn fail_attempt(
        &self,
        connection: &Connection,
        keys: &SecretKeys,
        max_attempts: u32,
        at: UnixSeconds,
    ) -> Result<i64, StoreError> {
        let mut connection = connection.clone();
        self.fail_attempt
            .key(keys.record())
            .key(keys.failures())
            .arg(max_attempts)
            .arg(at)
            .invoke_async(&mut connection)
            .await
            .map_err(classify)
    }

    /// What the record key named `record` holds (of either layout: a record of each starts
    /// with its flag byte): its first byte and TTL while live, its tombstone once taken or
    /// burned, nothing (and -2) when gone.
    pub(crate) async fn record_state(
        &self,
        connection: &Connection,
        record: &str,
    ) -> Result<(Vec<u8>, i64), StoreError> {
        let mut connection = connection.clone();
        self.record_state
            .key(record)
            .invoke_async(&mut connection)
            .await
            .map_err(classify)
    }

    /// Counts up to `lease.count` requests in the window named by `window_keys` (grants, sum)
    /// if fewer than `limit` are counted in `window`: the number counted, else zero and the
    /// milliseconds until a grant stops counting.
    pub(crate) async fn rate_limit(
        &self,
        connection: &Connection,
        window_keys: (String, String),
        limit: u32,
        window: Duration,
        lease: Lease,
    ) -> Result<(u32, u64), StoreError> {
        let mut connection = connection.clone();
        let member = format!("{}-{}", now_micros(), unique_member());
        self.rate_limit
            .key(window_keys.0)
            .key(window_keys.1)
            .arg(limit)
            .arg(millis(window))
            .arg(lease.count.max(1))
            .arg(u64::try_from(lease.hold.as_millis()).unwrap_or(u64::MAX))
            .arg(member)
            .invoke_async(&mut connection)
            .await
            .map_err(classify)
    }
}

/// A member unique to this request among those counted in the same microsecond: the process id
/// and a counter (not random: unique is all a sliding-window member needs).
fn unique_member() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    u64::from(std::process::id()) << 32 | (COUNTER.fetch_add(1, Ordering::Relaxed) & 0xffff_ffff)
}

#[cfg(test)]
mod tests {
    use burnbox_store::ReceiptState;

    use super::*;
    use crate::keys::tombstone_letter;

    #[test]
    fn scripts_write_the_tombstones_keys_reads() {
        for (script, state) in [
            (TAKE_SCRIPT, ReceiptState::Received),
            (BURN_SCRIPT, ReceiptState::Burned),
            (FAIL_ATTEMPT_SCRIPT, ReceiptState::Burned),
        ] {
            let letter = tombstone_letter(state).expect("a tombstone state");
            let written = format!("bury(record, '{letter}'");
            assert!(script.contains(&written), "{written} not in {script}");
        }
        // And tell them from records by the same letters' codes.
        for letter in ['R', 'B'] {
            let code = format!("~= {}", u32::from(letter));
            assert!(TAKE_SCRIPT.contains(&code), "{code}");
            let code = format!("== {}", u32::from(letter));
            assert!(RECORD_STATE_SCRIPT.contains(&code), "{code}");
        }
    }

    #[test]
    fn take_answers_read_back() {
        assert_eq!(read_taken(None).expect("none"), None);
        assert_eq!(
            read_taken(Some(("taken".into(), vec![1]))).expect("taken"),
            Some((TakeOutcome::Taken, vec![1]))
        );
        assert_eq!(
            read_taken(Some(("protected".into(), vec![1]))).expect("protected"),
            Some((TakeOutcome::Protected, vec![1]))
        );
        assert!(read_taken(Some(("other".into(), Vec::new()))).is_err());
    }
}
