//! burnbox's domain and its one handler, [`Secrets`]. The REST and gRPC adapters in the server
//! turn wire input into the input types here and call the same methods, so validation, policy,
//! key generation, encryption at rest and passphrase hashing exist once, in this crate. It never
//! depends on a transport or on Redis: storage goes through [`burnbox_store::SecretStore`] and
//! the master-key check through [`burnbox_store::KeyCheck`] (burnbox-store has no Redis in it;
//! the Redis store is burnbox-store-redis, which only the server depends on).

mod crypto;
mod error;
#[cfg(test)]
mod fuzz;
mod keys;
mod mail;
mod model;
mod passphrase;
mod policy;
mod receipt_fields;
mod secrets;

pub use burnbox_e2e as end_to_end;
pub use crypto::{Keyring, MasterKey};
pub use error::{Error, ErrorKind, NOT_AUTHORIZED, RATE_LIMITED, UNKNOWN_SECRET};
pub use keys::KEY_LENGTH;
pub use mail::{ACCOUNT_REQUIRED, LinkMailer, MailError, NOT_EMAILED, UNDELIVERABLE};
pub use model::{
    ANONYMOUS_CUSTID, BurnInput, Burned, Caller, GenerateInput, Generated, Receipt, ReceiptState,
    RevealInput, Revealed, SecretStatus, ShareInput,
};
pub use policy::{
    DEFAULT_PASSWORD_LENGTH, MAX_PASSPHRASE_CHARS, MIN_TTL_SECONDS, PASSWORD_LENGTHS,
    PassphraseRules, Policy,
};
pub use secrets::{MasterKeyCheck, RECENT_LIMIT, RECENT_WINDOW, Secrets, Settings};
