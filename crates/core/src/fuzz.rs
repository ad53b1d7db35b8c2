//! Property tests: parsing and validation hold for any input, never panic, and accept exactly
//! what the rules say.

use proptest::prelude::*;

use crate::crypto::{Keyring, MasterKey, Purpose};
use crate::keys::{KEY_LENGTH, generate_key, is_well_formed};
use crate::policy::{
    MAX_PASSPHRASE_CHARS, MIN_TTL_SECONDS, Policy, given_passphrase, password_length,
};
use crate::receipt_fields::SealedReceiptFields;
use crate::secrets::{decode_record_plaintext, encode_record_plaintext};

fn policy() -> Policy {
    Policy::new(3600, 86_400, 1024).expect("valid policy")
}

proptest! {
    #[test]
    fn keys_are_recognised_exactly(text in ".{0,64}") {
        // The oracle spells the alphabet out; the implementation tests ranges.
        let alphabet = b"0123456789abcdefghijklmnopqrstuvwxyz";
        let expected = text.len() == KEY_LENGTH && text.bytes().all(|byte| alphabet.contains(&byte));
        prop_assert_eq!(is_well_formed(&text), expected);
    }

    #[test]
    fn generated_keys_are_always_well_formed(_round in 0..64u8) {
        prop_assert!(is_well_formed(&generate_key()));
    }

    #[test]
    fn ttls_are_kept_within_bounds_and_clamped_outside(ttl in any::<i64>()) {
        let given = i64::try_from(policy().ttl(Some(ttl)).as_secs()).expect("fits");
        prop_assert_eq!(given, ttl.clamp(MIN_TTL_SECONDS, 86_400));
    }

    #[test]
    fn secrets_are_accepted_exactly_within_size(secret in ".{0,1100}") {
        let accepted = policy().secret(Some(secret.clone())).is_ok();
        prop_assert_eq!(accepted, !secret.is_empty() && secret.len() <= 1024);
    }

    #[test]
    fn passphrases_are_bounded_in_characters(passphrase in ".{0,140}") {
        let given = given_passphrase(Some(passphrase.clone()));
        prop_assert_eq!(given.is_ok(), passphrase.chars().count() <= MAX_PASSPHRASE_CHARS);
    }

    #[test]
    fn password_lengths_are_bounded(length in any::<i64>()) {
        prop_assert_eq!(password_length(Some(length)).is_ok(), (4..=128).contains(&length));
    }

    #[test]
    fn records_round_trip(hash in proptest::option::of("[ -~]{1,200}"), value in ".{0,300}") {
        let plain = encode_record_plaintext(hash.as_deref(), &value).expect("encodes");
        let opened = decode_record_plaintext(&plain).expect("decodes");
        prop_assert_eq!(opened.passphrase_hash, hash);
        prop_assert_eq!(opened.value.as_str(), value.as_str());
    }

    #[test]
    fn arbitrary_records_and_blobs_are_errors_not_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode_record_plaintext(&bytes);
        let keyring = Keyring::new(MasterKey::generate(), None);
        prop_assert!(keyring.open(Purpose::Record, "key", &[0; 32], &bytes).is_err());
    }

    #[test]
    fn receipts_round_trip(
        custid in ".{0,40}",
        secret_key in prop_oneof![Just(generate_key()), ".{0,40}"],
        created in any::<i64>(),
        ttl in any::<i64>(),
        passphrase_required in any::<bool>(),
        recipient in proptest::collection::vec(".{0,30}", 0..3),
    ) {
        let body = SealedReceiptFields {
            custid,
            secret_key,
            created,
            ttl,
            passphrase_required,
            recipient,
        };
        prop_assert_eq!(SealedReceiptFields::decode(&body.encode()).expect("decodes"), body);
    }

    #[test]
    fn arbitrary_receipts_are_errors_not_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = SealedReceiptFields::decode(&bytes);
        let mut binary = bytes;
        binary.insert(0, 1);
        let _ = SealedReceiptFields::decode(&binary);
    }
}
