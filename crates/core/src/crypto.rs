//! Encryption at rest. Each stored blob is sealed with AES-256-GCM under a key derived
//! (HKDF-SHA256) from the server master key AND the key the caller holds (the secret key for a
//! record, the metadata key for a receipt): a Redis dump alone, or the master key alone, opens
//! nothing. The storage id is bound as associated data, so a blob moved to another slot fails.
//!
//! Why AES-256-GCM: with AES-NI and carry-less multiplication it opened a 100-byte record in
//! 0.39 µs where XChaCha20-Poly1305 (its AVX2 backends) took 1.43 µs, and a 64 KiB one in 19 µs
//! against 54 µs; every reveal opens one record and every share seals three blobs. Its 96-bit
//! random nonces are safe here: a record or receipt key seals one blob, and a customer's
//! recent-list key (from the API token) would need billions of shares to come near the 2^32
//! messages per key that random nonces allow.
//!
//! Records are padded before sealing, so a Redis reader learns a secret's size bucket, not its
//! length: the plaintext is prefixed with its length (4 bytes, big-endian) and filled with zeros
//! up to at least [`MIN_PADDED`] bytes and beyond that to its Padmé bucket (Nikitin et al.,
//! "Reducing Metadata Leakage from Encrypted Files and Communication with PURBs", 2019): a size
//! whose low bits are cleared so that it leaks O(log log n) bits of the length and costs at most
//! 12 % more. Small secrets (up to 57 bytes without a passphrase) therefore all seal to one size,
//! and a 64 KiB secret grows by 2 KiB, not to 128 KiB. Receipts, recent-list entries and the key check are not padded: they
//! hold no secret value.

use aes_gcm::aead::{Aead, Generate, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use burnbox_store::{NamingKey, NamingKeys};
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::Error;

/// Format tag of a sealed blob: version 2 = AES-256-GCM, 12-byte nonce first. (Version 1 was
/// XChaCha20-Poly1305, never released; such a blob does not open, and a store holding one fails
/// the startup master key check rather than being read wrongly.)
const FORMAT_V2: u8 = 2;
/// Format tag of a padded sealed blob: as version 2, but the sealed plaintext is the padded one
/// (length prefix, plaintext, zeros up to the size bucket). Records are written so since padding
/// came in; version 2 records from before still open.
const FORMAT_V3_PADDED: u8 = 3;
const NONCE_LEN: usize = 12;
/// The length prefix of a padded plaintext.
const LENGTH_PREFIX: usize = 4;
/// The smallest padded plaintext, the bucket of every small secret.
const MIN_PADDED: usize = 64;

/// A 32-byte server master key. Never printed, zeroized on drop.
#[derive(Clone)]
pub struct MasterKey(Zeroizing<[u8; 32]>);

impl MasterKey {
    /// Wraps 32 bytes of key material.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// A fresh random key (for the memory store when none is configured).
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::fill(&mut bytes);
        Self::from_bytes(bytes)
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

/// The master keys in force: new data is sealed with `current`; `previous` still opens data
/// written before a rotation.
#[derive(Clone, Debug)]
pub struct Keyring {
    current: MasterKey,
    previous: Option<MasterKey>,
}

impl Keyring {
    /// A keyring sealing with `current` and also opening with `previous`.
    pub fn new(current: MasterKey, previous: Option<MasterKey>) -> Self {
        Self { current, previous }
    }

    /// The keys the store names guessable ids with (customer ids, client addresses), one per
    /// master key: a rotation gives new names, and the previous key's names stay readable.
    pub fn naming_keys(&self) -> NamingKeys {
        NamingKeys {
            current: naming_key(&self.current),
            previous: self.previous.as_ref().map(naming_key),
        }
    }
}

/// The HKDF label of the naming key: its own, so the naming key is independent of every
/// sealing key (whose labels are the purposes').
const NAMING_KEY_LABEL: &[u8] = b"burnbox/v1/naming-key";

fn naming_key(master: &MasterKey) -> NamingKey {
    let hkdf = Hkdf::<Sha256>::new(None, master.0.as_slice());
    let mut key = Zeroizing::new([0u8; 32]);
    // 32 bytes is far below HKDF-SHA256's 8160-byte limit, so expand cannot fail.
    let _ = hkdf.expand(NAMING_KEY_LABEL, key.as_mut_slice());
    NamingKey::from_bytes(*key)
}

/// Which master key opened a blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WhichKey {
    Current,
    Previous,
}

/// What a blob is, so a record can never be opened as a receipt or the reverse.
#[derive(Clone, Copy)]
pub(crate) enum Purpose {
    Record,
    Receipt,
    RecentEntry,
    KeyCheck,
}

impl Purpose {
    /// Whether blobs of this purpose are padded to a size bucket: only records hold a value
    /// whose length is worth hiding.
    fn padded(self) -> bool {
        match self {
            Self::Record => true,
            Self::Receipt | Self::RecentEntry | Self::KeyCheck => false,
        }
    }

    fn label(self) -> &'static [u8] {
        match self {
            Self::Record => b"burnbox/v1/record",
            Self::Receipt => b"burnbox/v1/receipt",
            Self::RecentEntry => b"burnbox/v1/recent-entry",
            Self::KeyCheck => b"burnbox/v1/key-check",
        }
    }
}

fn cipher(master: &MasterKey, purpose: Purpose, caller_key: &str) -> Result<Aes256Gcm, Error> {
    let hkdf = Hkdf::<Sha256>::new(Some(caller_key.as_bytes()), master.0.as_slice());
    let mut key = Zeroizing::new([0u8; 32]);
    // 32 bytes is far below HKDF-SHA256's 8160-byte limit, so expand cannot fail.
    let _ = hkdf.expand(purpose.label(), key.as_mut_slice());
    Aes256Gcm::new_from_slice(key.as_slice()).map_err(|_| Error::internal("bad key length"))
}

fn associated_data(purpose: Purpose, storage_id: &[u8; 32]) -> Vec<u8> {
    [purpose.label(), b"\0".as_slice(), storage_id.as_slice()].concat()
}

/// The size a plaintext of `len` bytes is padded to: its length prefix included, at least
/// [`MIN_PADDED`], above that its Padmé bucket. For a size `L` with `E = floor(log2 L)`, Padmé
/// clears the lowest `E - floor(log2 E) - 1` bits, rounding up.
fn padded_size(len: usize) -> Result<usize, Error> {
    let with_prefix = len
        .checked_add(LENGTH_PREFIX)
        .ok_or_else(|| Error::internal("plaintext too large to pad"))?;
    if with_prefix <= MIN_PADDED {
        return Ok(MIN_PADDED);
    }
    let exponent = with_prefix.ilog2();
    let cleared_bits = exponent - exponent.ilog2() - 1;
    let mask = (1usize << cleared_bits) - 1;
    with_prefix
        .checked_add(mask)
        .map(|size| size & !mask)
        .ok_or_else(|| Error::internal("plaintext too large to pad"))
}

/// `plaintext` with its length in front and zeros behind, up to its size bucket.
fn pad(plaintext: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
    let len = u32::try_from(plaintext.len())
        .map_err(|_| Error::internal("plaintext too large to pad"))?;
    let size = padded_size(plaintext.len())?;
    // Allocated at its final size once: growing would leave unzeroized copies behind.
    let mut padded = Zeroizing::new(Vec::with_capacity(size));
    padded.extend_from_slice(&len.to_be_bytes());
    padded.extend_from_slice(plaintext);
    padded.resize(size, 0);
    Ok(padded)
}

/// The plaintext inside a padded one, taken out in place (no unzeroized copy is left behind).
fn unpad(mut padded: Zeroizing<Vec<u8>>) -> Result<Zeroizing<Vec<u8>>, Error> {
    let malformed = || Error::internal("padded plaintext is malformed");
    let (prefix, rest) = padded
        .split_first_chunk::<LENGTH_PREFIX>()
        .ok_or_else(malformed)?;
    let len = usize::try_from(u32::from_be_bytes(*prefix)).map_err(|_| malformed())?;
    if len > rest.len() {
        return Err(malformed());
    }
    padded.truncate(LENGTH_PREFIX + len);
    padded.drain(..LENGTH_PREFIX);
    Ok(padded)
}

impl Keyring {
    /// Encrypts `plaintext` for storage under `storage_id`, openable only with `caller_key`
    /// (padded to its size bucket if the purpose says so).
    pub(crate) fn seal(
        &self,
        purpose: Purpose,
        caller_key: &str,
        storage_id: &[u8; 32],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, Error> {
        self.seal_as(purpose.padded(), purpose, caller_key, storage_id, plaintext)
    }

    /// [`Keyring::seal`], padded or not whatever the purpose (tests write records as they were
    /// before padding).
    fn seal_as(
        &self,
        padded: bool,
        purpose: Purpose,
        caller_key: &str,
        storage_id: &[u8; 32],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let (format, padded_plaintext) = if padded {
            (FORMAT_V3_PADDED, Some(pad(plaintext)?))
        } else {
            (FORMAT_V2, None)
        };
        let nonce = Nonce::generate();
        let aad = associated_data(purpose, storage_id);
        let ciphertext = cipher(&self.current, purpose, caller_key)?
            .encrypt(
                &nonce,
                Payload {
                    msg: padded_plaintext.as_deref().map_or(plaintext, Vec::as_slice),
                    aad: &aad,
                },
            )
            .map_err(|_| Error::internal("encryption failed"))?;
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        sealed.push(format);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    /// Which configured master key opens `sealed`, if any.
    pub(crate) fn which_opens(
        &self,
        purpose: Purpose,
        caller_key: &str,
        storage_id: &[u8; 32],
        sealed: &[u8],
    ) -> Option<WhichKey> {
        let current = Keyring::new(self.current.clone(), None);
        if current
            .open(purpose, caller_key, storage_id, sealed)
            .is_ok()
        {
            return Some(WhichKey::Current);
        }
        self.open(purpose, caller_key, storage_id, sealed)
            .ok()
            .map(|_| WhichKey::Previous)
    }

    /// Decrypts a blob sealed by [`Keyring::seal`] with the current or the previous master key.
    pub(crate) fn open(
        &self,
        purpose: Purpose,
        caller_key: &str,
        storage_id: &[u8; 32],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        let (padded, rest) = match sealed.split_first() {
            Some((&FORMAT_V2, rest)) => (false, rest),
            Some((&FORMAT_V3_PADDED, rest)) => (true, rest),
            Some(_) | None => return Err(Error::internal("sealed blob has an unknown format")),
        };
        if rest.len() < NONCE_LEN {
            return Err(Error::internal("sealed blob is truncated"));
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_from(nonce).map_err(|_| Error::internal("bad nonce length"))?;
        let aad = associated_data(purpose, storage_id);
        std::iter::once(&self.current)
            .chain(self.previous.as_ref())
            .find_map(|master| {
                cipher(master, purpose, caller_key)
                    .ok()?
                    .decrypt(
                        &nonce,
                        Payload {
                            msg: ciphertext,
                            aad: &aad,
                        },
                    )
                    .ok()
            })
            .map(Zeroizing::new)
            .ok_or_else(|| {
                Error::internal("sealed blob does not open with any configured master key")
            })
            .and_then(|plaintext| {
                if padded {
                    unpad(plaintext)
                } else {
                    Ok(plaintext)
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> [u8; 32] {
        *burnbox_store::SecretId::from_secret_key("k").as_bytes()
    }

    #[test]
    fn round_trips_and_binds_key_purpose_and_id() {
        let keyring = Keyring::new(MasterKey::generate(), None);
        let sealed = keyring
            .seal(Purpose::Record, "k", &id(), b"hello")
            .expect("seal");
        let opened = keyring
            .open(Purpose::Record, "k", &id(), &sealed)
            .expect("open");
        assert_eq!(opened.as_slice(), b"hello");
        assert!(
            keyring
                .open(Purpose::Record, "other", &id(), &sealed)
                .is_err()
        );
        assert!(keyring.open(Purpose::Receipt, "k", &id(), &sealed).is_err());
        let other_id = *burnbox_store::SecretId::from_secret_key("x").as_bytes();
        assert!(
            keyring
                .open(Purpose::Record, "k", &other_id, &sealed)
                .is_err()
        );
    }

    #[test]
    fn previous_master_key_still_opens_after_rotation() {
        let old = MasterKey::generate();
        let sealed = Keyring::new(old.clone(), None)
            .seal(Purpose::Record, "k", &id(), b"v")
            .expect("seal");
        let rotated = Keyring::new(MasterKey::generate(), Some(old));
        assert_eq!(
            rotated
                .open(Purpose::Record, "k", &id(), &sealed)
                .expect("open")
                .as_slice(),
            b"v"
        );
        let forgotten = Keyring::new(MasterKey::generate(), None);
        assert!(
            forgotten
                .open(Purpose::Record, "k", &id(), &sealed)
                .is_err()
        );
    }

    /// Sealed size of a record whose plaintext is `len` bytes.
    fn sealed_record_len(keyring: &Keyring, len: usize) -> usize {
        keyring
            .seal(Purpose::Record, "k", &id(), &vec![b'x'; len])
            .expect("seal")
            .len()
    }

    #[test]
    fn records_seal_to_their_size_bucket_and_open_to_their_exact_bytes() {
        let keyring = Keyring::new(MasterKey::generate(), None);
        let overhead = 1 + NONCE_LEN + 16;
        // Everything up to 60 bytes (64 with the length prefix) is one bucket.
        for len in [0, 1, 30, 60] {
            assert_eq!(
                sealed_record_len(&keyring, len),
                overhead + MIN_PADDED,
                "{len}"
            );
        }
        for (len, bucket) in [
            (61, 72),
            (124, 128),
            (125, 144),
            (1000, 1024),
            (65_536, 67_584),
        ] {
            assert_eq!(sealed_record_len(&keyring, len), overhead + bucket, "{len}");
        }
        for len in [0, 1, 59, 60, 61, 124, 125, 4096] {
            let plaintext: Vec<u8> = (0..len).map(|index| (index % 251) as u8 + 1).collect();
            let sealed = keyring
                .seal(Purpose::Record, "k", &id(), &plaintext)
                .expect("seal");
            let opened = keyring
                .open(Purpose::Record, "k", &id(), &sealed)
                .expect("open");
            assert_eq!(opened.as_slice(), plaintext.as_slice(), "{len}");
        }
    }

    #[test]
    fn unpadded_records_from_before_padding_still_open() {
        let keyring = Keyring::new(MasterKey::generate(), None);
        let version_2 = keyring
            .seal_as(
                false,
                Purpose::Record,
                "k",
                &id(),
                b"written before padding",
            )
            .expect("seal");
        assert_eq!(version_2.first(), Some(&FORMAT_V2));
        assert_eq!(
            keyring
                .open(Purpose::Record, "k", &id(), &version_2)
                .expect("open")
                .as_slice(),
            b"written before padding"
        );
    }

    #[test]
    fn only_records_are_padded() {
        let keyring = Keyring::new(MasterKey::generate(), None);
        let receipt = keyring
            .seal(Purpose::Receipt, "k", &id(), b"receipt")
            .expect("seal");
        assert_eq!(receipt.len(), 1 + NONCE_LEN + b"receipt".len() + 16);
        assert_eq!(receipt.first(), Some(&FORMAT_V2));
    }

    #[test]
    fn a_length_prefix_beyond_the_padding_is_an_error_not_a_panic() {
        let mut padded = pad(b"abc").expect("pad");
        assert_eq!(padded.len(), MIN_PADDED);
        padded[..LENGTH_PREFIX].copy_from_slice(&61u32.to_be_bytes());
        assert!(unpad(padded).is_err());
        assert!(unpad(Zeroizing::new(vec![0, 0])).is_err());
        assert_eq!(
            unpad(pad(b"abc").expect("pad")).expect("unpad").as_slice(),
            b"abc"
        );
    }
}
