//! Passphrase hashing with argon2id, always on the blocking pool: a hash costs tens of
//! milliseconds of CPU, which must never stall the async runtime.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use crate::Error;

/// At most one argon2 run per CPU at a time: each holds 19 MiB, and more runs than CPUs only
/// queue inside the blocking pool while holding their memory. A burst of passphrase requests
/// waits here instead of growing the process.
fn hashing_slots() -> &'static Semaphore {
    static SLOTS: OnceLock<Semaphore> = OnceLock::new();
    SLOTS
        .get_or_init(|| Semaphore::new(std::thread::available_parallelism().map_or(2, usize::from)))
}

/// Runs `work` on the blocking pool once a hashing slot is free.
async fn on_blocking_pool<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Error> {
    let _slot = hashing_slots()
        .acquire()
        .await
        .map_err(|_| Error::internal("passphrase hashing is shut down"))?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| Error::internal(format!("hashing task failed: {err}")))
}

/// Hashes `passphrase` with argon2id and the crate's default parameters (19 MiB, 2 passes,
/// 1 lane: OWASP's recommendation) into a PHC string.
pub(crate) async fn hash(passphrase: Zeroizing<String>) -> Result<String, Error> {
    on_blocking_pool(move || {
        Argon2::default()
            .hash_password(passphrase.as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|err| Error::internal(format!("argon2 hashing failed: {err}")))
    })
    .await?
}

/// Whether `passphrase` matches the PHC string `hash` (argon2 compares in constant time).
pub(crate) async fn verify(passphrase: Zeroizing<String>, hash: String) -> Result<bool, Error> {
    on_blocking_pool(move || {
        let parsed = PasswordHash::new(&hash).map_err(|err| {
            Error::internal(format!("stored passphrase hash is malformed: {err}"))
        })?;
        Ok(Argon2::default()
            .verify_password(passphrase.as_bytes(), &parsed)
            .is_ok())
    })
    .await?
}
