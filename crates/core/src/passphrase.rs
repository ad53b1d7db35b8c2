//! Passphrase hashing with argon2id, always on the blocking pool: a hash costs tens of
//! milliseconds of CPU, which must never stall the async runtime.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use zeroize::Zeroizing;

use crate::Error;

/// Hashes `passphrase` with argon2id and the crate's default parameters (19 MiB, 2 passes,
/// 1 lane: OWASP's recommendation) into a PHC string.
pub(crate) async fn hash(passphrase: Zeroizing<String>) -> Result<String, Error> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(passphrase.as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|err| Error::internal(format!("argon2 hashing failed: {err}")))
    })
    .await
    .map_err(|err| Error::internal(format!("hashing task failed: {err}")))?
}

/// Whether `passphrase` matches the PHC string `hash` (argon2 compares in constant time).
pub(crate) async fn verify(passphrase: Zeroizing<String>, hash: String) -> Result<bool, Error> {
    tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&hash).map_err(|err| {
            Error::internal(format!("stored passphrase hash is malformed: {err}"))
        })?;
        Ok(Argon2::default()
            .verify_password(passphrase.as_bytes(), &parsed)
            .is_ok())
    })
    .await
    .map_err(|err| Error::internal(format!("verification task failed: {err}")))?
}
