//! The receipt fields fixed at share time ([`SealedReceiptFields`]) and the plaintext they are
//! sealed as: a compact, versioned binary layout, which also reads the JSON of receipts written
//! before it.
//!
//! Why binary: a receipt lives in the store for twice its secret's ttl, one per secret, and the
//! JSON (`{"custid":"anon","secret_key":"…","created":…,"ttl":…,"passphrase_required":false}`)
//! spent ~105 bytes on names and punctuation around ~45 bytes of facts. The binary layout of an
//! anonymous receipt is 30 bytes: with the seal's 29, a sealed receipt takes 59 bytes instead of
//! ~134, which is what lets a secret with its receipt fit in ≤ 512 bytes of Redis.
//!
//! Layout, version 1 (every integer unsigned LEB128, a signed one zigzag-mapped first):
//!
//! ```text
//! [0x01 version][flags]
//! [created: zigzag][ttl: zigzag]
//! [secret key: 21 bytes, its 31 base-36 digits as one big-endian number]   flag PACKED_KEY
//!   or [length][UTF-8]                                                    otherwise
//! [length][custid UTF-8]                                                  flag CUSTOMER
//! [count]([length][masked address UTF-8])*                                flag RECIPIENTS
//! ```
//!
//! flags: bit 0 passphrase required, bit 1 CUSTOMER (else the anonymous custid), bit 2
//! PACKED_KEY, bit 3 RECIPIENTS; other bits are errors, as are trailing bytes. A JSON receipt
//! starts with `{` (0x7b), never 0x01, so the first byte tells the two apart; JSON receipts
//! are still read until the last of them expires (twice the longest ttl after the upgrade), and
//! never written.
//!
//! Never: hold anything but the receipt's fixed fields (state lives in the store); panic on a
//! malformed plaintext.

use serde::Deserialize;
use zeroize::Zeroizing;

use crate::Error;
use crate::keys::{KEY_LENGTH, is_well_formed};
use crate::model::ANONYMOUS_CUSTID;

/// The receipt fields fixed at share time, sealed under the metadata key.
#[derive(Debug, Deserialize, PartialEq, Eq)]
pub(crate) struct SealedReceiptFields {
    pub(crate) custid: String,
    pub(crate) secret_key: String,
    pub(crate) created: i64,
    pub(crate) ttl: i64,
    pub(crate) passphrase_required: bool,
    /// The address the link was emailed to, masked: the address itself is never stored.
    /// Receipts written before there was email delivery have none.
    #[serde(default)]
    pub(crate) recipient: Vec<String>,
}

/// The first byte of a version 1 binary receipt.
const BINARY_V1: u8 = 1;
/// The first byte of every JSON receipt (an object).
const JSON_OBJECT: u8 = b'{';

const PASSPHRASE: u8 = 1;
const CUSTOMER: u8 = 2;
const PACKED_KEY: u8 = 4;
const RECIPIENTS: u8 = 8;

/// Bytes of a packed secret key: 31 base-36 digits are below 36^31 < 2^161, so 21 bytes.
const PACKED_KEY_BYTES: usize = 21;
/// The digits of a secret key, in the order of their values.
const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

impl SealedReceiptFields {
    /// The plaintext to seal: the binary layout, version 1.
    pub(crate) fn encode(&self) -> Zeroizing<Vec<u8>> {
        let packed = pack_key(&self.secret_key);
        let customer = self.custid != ANONYMOUS_CUSTID;
        let flags = if self.passphrase_required {
            PASSPHRASE
        } else {
            0
        } | if customer { CUSTOMER } else { 0 }
            | if packed.is_some() { PACKED_KEY } else { 0 }
            | if self.recipient.is_empty() {
                0
            } else {
                RECIPIENTS
            };
        // Allocated once at a size that holds every field: growing would leave unzeroized
        // copies of the secret key behind.
        let capacity = 2
            + 2 * 10
            + 10
            + self.secret_key.len()
            + 10
            + self.custid.len()
            + 10
            + self
                .recipient
                .iter()
                .map(|address| 10 + address.len())
                .sum::<usize>();
        let mut plain = Zeroizing::new(Vec::with_capacity(capacity));
        plain.push(BINARY_V1);
        plain.push(flags);
        put_varint(&mut plain, zigzag(self.created));
        put_varint(&mut plain, zigzag(self.ttl));
        match &packed {
            Some(packed) => plain.extend_from_slice(packed.as_slice()),
            None => put_text(&mut plain, &self.secret_key),
        }
        if customer {
            put_text(&mut plain, &self.custid);
        }
        if !self.recipient.is_empty() {
            put_varint(&mut plain, self.recipient.len() as u64);
            for address in &self.recipient {
                put_text(&mut plain, address);
            }
        }
        plain
    }

    /// The fields from an opened receipt: the binary layout, or the JSON of older receipts.
    pub(crate) fn decode(plain: &[u8]) -> Result<Self, Error> {
        match plain.first() {
            Some(&BINARY_V1) => decode_binary(plain.get(1..).unwrap_or_default()),
            Some(&JSON_OBJECT) => serde_json::from_slice(plain)
                .map_err(|err| Error::internal(format!("receipt decoding: {err}"))),
            Some(_) | None => Err(malformed()),
        }
    }
}

fn malformed() -> Error {
    Error::internal("receipt decoding: malformed receipt")
}

fn decode_binary(bytes: &[u8]) -> Result<SealedReceiptFields, Error> {
    let mut reader = Reader(bytes);
    let flags = reader.byte()?;
    if flags & !(PASSPHRASE | CUSTOMER | PACKED_KEY | RECIPIENTS) != 0 {
        return Err(malformed());
    }
    let created = unzigzag(reader.varint()?);
    let ttl = unzigzag(reader.varint()?);
    let secret_key = if flags & PACKED_KEY != 0 {
        let packed = reader
            .take(PACKED_KEY_BYTES)?
            .try_into()
            .map_err(|_| malformed())?;
        unpack_key(&packed).ok_or_else(malformed)?
    } else {
        reader.text()?
    };
    let custid = if flags & CUSTOMER != 0 {
        reader.text()?
    } else {
        ANONYMOUS_CUSTID.to_owned()
    };
    let mut recipient = Vec::new();
    if flags & RECIPIENTS != 0 {
        let count = reader.varint()?;
        for _ in 0..count {
            // Each address takes at least its length byte: a count beyond the bytes left
            // ends here as malformed rather than looping on.
            recipient.push(reader.text()?);
        }
    }
    if !reader.0.is_empty() {
        return Err(malformed());
    }
    Ok(SealedReceiptFields {
        custid,
        secret_key,
        created,
        ttl,
        passphrase_required: flags & PASSPHRASE != 0,
        recipient,
    })
}

/// The bytes not read yet.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, Error> {
        let (&byte, rest) = self.0.split_first().ok_or_else(malformed)?;
        self.0 = rest;
        Ok(byte)
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], Error> {
        let (taken, rest) = self.0.split_at_checked(len).ok_or_else(malformed)?;
        self.0 = rest;
        Ok(taken)
    }

    fn varint(&mut self) -> Result<u64, Error> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            let bits = u64::from(byte & 0x7f);
            // The tenth byte holds bit 63 alone: anything above it would be lost.
            if shift == 63 && bits > 1 {
                return Err(malformed());
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(malformed())
    }

    fn text(&mut self) -> Result<String, Error> {
        let len = usize::try_from(self.varint()?).map_err(|_| malformed())?;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| malformed())
    }
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value & 0x7f) as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_text(out: &mut Vec<u8>, text: &str) {
    put_varint(out, text.len() as u64);
    out.extend_from_slice(text.as_bytes());
}

/// A signed integer as an unsigned one whose LEB128 is short for small magnitudes of either
/// sign (0, -1, 1, -2, … map to 0, 1, 2, 3, …).
fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

/// A generated secret key as the big-endian number its base-36 digits spell; `None` for any
/// other text (kept as text instead).
fn pack_key(key: &str) -> Option<[u8; PACKED_KEY_BYTES]> {
    if !is_well_formed(key) {
        return None;
    }
    let mut number = [0u8; PACKED_KEY_BYTES];
    for byte in key.bytes() {
        let digit = DIGITS.iter().position(|&digit| digit == byte)?;
        let mut carry = digit as u32;
        for limb in number.iter_mut().rev() {
            let value = u32::from(*limb) * 36 + carry;
            *limb = (value & 0xff) as u8;
            carry = value >> 8;
        }
        // 31 digits always fit in 21 bytes.
        if carry != 0 {
            return None;
        }
    }
    Some(number)
}

/// The key whose digits [`pack_key`] packed; `None` if the number has more than 31 digits.
fn unpack_key(packed: &[u8; PACKED_KEY_BYTES]) -> Option<String> {
    let mut number = *packed;
    let mut digits = [0u8; KEY_LENGTH];
    for slot in digits.iter_mut().rev() {
        let mut remainder = 0u32;
        for limb in number.iter_mut() {
            let value = (remainder << 8) | u32::from(*limb);
            *limb = (value / 36) as u8;
            remainder = value % 36;
        }
        *slot = *DIGITS.get(remainder as usize)?;
    }
    if number.iter().any(|&limb| limb != 0) {
        return None;
    }
    String::from_utf8(digits.to_vec()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::generate_key;

    fn fields(custid: &str, recipient: Vec<String>) -> SealedReceiptFields {
        SealedReceiptFields {
            custid: custid.to_owned(),
            secret_key: generate_key(),
            created: 1_700_000_000,
            ttl: 3600,
            passphrase_required: false,
            recipient,
        }
    }

    #[test]
    fn an_anonymous_receipt_is_30_bytes_and_reads_back() {
        let body = fields(ANONYMOUS_CUSTID, Vec::new());
        let plain = body.encode();
        // Version, flags, created (5), ttl (2), the packed key (21).
        assert_eq!(plain.len(), 1 + 1 + 5 + 2 + 21);
        assert_eq!(SealedReceiptFields::decode(&plain).expect("decodes"), body);
    }

    #[test]
    fn every_field_reads_back() {
        let mut body = fields("alice@example.com", vec!["a***@example.com".to_owned()]);
        body.passphrase_required = true;
        body.created = -5;
        body.ttl = i64::MAX;
        assert_eq!(
            SealedReceiptFields::decode(&body.encode()).expect("decodes"),
            body
        );
        // A key that is not a generated one is kept as text.
        body.secret_key = "Not A Key".to_owned();
        body.created = i64::MIN;
        assert_eq!(
            SealedReceiptFields::decode(&body.encode()).expect("decodes"),
            body
        );
    }

    #[test]
    fn secret_keys_pack_into_21_bytes_and_back() {
        for key in [
            "0".repeat(KEY_LENGTH),
            "z".repeat(KEY_LENGTH),
            "0123456789abcdefghijklmnopqrstu".to_owned(),
            generate_key(),
        ] {
            let packed = pack_key(&key).expect("a generated key packs");
            assert_eq!(unpack_key(&packed).as_deref(), Some(key.as_str()));
        }
        assert_eq!(pack_key("z".repeat(KEY_LENGTH + 1).as_str()), None);
        assert_eq!(pack_key("Z".repeat(KEY_LENGTH).as_str()), None);
        // 36^31 - 1 is the largest key; 2^168 - 1 is more than 31 digits.
        assert_eq!(unpack_key(&[0xff; PACKED_KEY_BYTES]), None);
    }

    #[test]
    fn json_receipts_from_before_still_read() {
        let old = br#"{"custid":"anon","secret_key":"k","created":1,"ttl":60,"passphrase_required":false}"#;
        let body = SealedReceiptFields::decode(old).expect("an old receipt reads");
        assert_eq!(
            body,
            SealedReceiptFields {
                custid: "anon".to_owned(),
                secret_key: "k".to_owned(),
                created: 1,
                ttl: 60,
                passphrase_required: false,
                recipient: Vec::new(),
            }
        );
        let emailed = br#"{"custid":"c","secret_key":"k","created":1,"ttl":60,"passphrase_required":true,"recipient":["a***@b.c"]}"#;
        let body = SealedReceiptFields::decode(emailed).expect("an emailed receipt reads");
        assert_eq!(body.recipient, ["a***@b.c"]);
    }

    #[test]
    fn malformed_receipts_are_errors_not_panics() {
        let body = fields("alice", vec!["x".to_owned(), "y".to_owned()]);
        let plain = body.encode();
        for len in 0..plain.len() {
            assert!(
                SealedReceiptFields::decode(&plain[..len]).is_err(),
                "length {len}"
            );
        }
        let mut trailing = plain.to_vec();
        trailing.push(0);
        assert!(SealedReceiptFields::decode(&trailing).is_err());
        let mut unknown_flag = plain.to_vec();
        unknown_flag[1] |= 0x10;
        assert!(SealedReceiptFields::decode(&unknown_flag).is_err());
        assert!(
            SealedReceiptFields::decode(&[2]).is_err(),
            "an unknown version"
        );
        // A varint running past 64 bits.
        assert!(
            SealedReceiptFields::decode(&[
                1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f
            ])
            .is_err()
        );
    }
}
