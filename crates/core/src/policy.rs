//! What a valid request is: TTL bounds, size caps, passphrase rules. Every transport's input
//! passes through here, so REST and gRPC accept and refuse exactly the same things.

use std::time::Duration;

use zeroize::Zeroizing;

use crate::Error;

/// The shortest lifetime a secret may be given.
pub const MIN_TTL_SECONDS: i64 = 60;
/// The longest passphrase accepted, in characters.
pub const MAX_PASSPHRASE_CHARS: usize = 128;
/// Length of a generated password when the request names none.
pub const DEFAULT_PASSWORD_LENGTH: usize = 12;
/// Shortest and longest generated passwords.
pub const PASSWORD_LENGTHS: std::ops::RangeInclusive<usize> = 4..=128;

/// Operator-set limits on shared secrets.
#[derive(Clone, Debug)]
pub struct Policy {
    default_ttl: i64,
    max_ttl: i64,
    max_secret_bytes: usize,
}

impl Policy {
    /// Checks the limits against each other; the error names the setting at fault.
    pub fn new(default_ttl: i64, max_ttl: i64, max_secret_bytes: usize) -> Result<Self, String> {
        if max_ttl < MIN_TTL_SECONDS {
            return Err(format!(
                "max TTL must be at least {MIN_TTL_SECONDS} seconds, got {max_ttl}"
            ));
        }
        if !(MIN_TTL_SECONDS..=max_ttl).contains(&default_ttl) {
            return Err(format!(
                "default TTL must be between {MIN_TTL_SECONDS} and the max TTL ({max_ttl}) seconds, got {default_ttl}"
            ));
        }
        if max_secret_bytes == 0 {
            return Err("max secret size must be at least 1 byte".into());
        }
        Ok(Self {
            default_ttl,
            max_ttl,
            max_secret_bytes,
        })
    }

    /// The largest secret accepted, in bytes (transports size their body caps from it).
    pub fn max_secret_bytes(&self) -> usize {
        self.max_secret_bytes
    }

    pub(crate) fn ttl(&self, requested: Option<i64>) -> Result<Duration, Error> {
        let seconds = requested.unwrap_or(self.default_ttl);
        if !(MIN_TTL_SECONDS..=self.max_ttl).contains(&seconds) {
            return Err(Error::validation(
                "ttl",
                format!(
                    "ttl must be between {MIN_TTL_SECONDS} and {} seconds",
                    self.max_ttl
                ),
            ));
        }
        // In range, so positive: the conversion cannot fail.
        Ok(Duration::from_secs(seconds.unsigned_abs()))
    }

    pub(crate) fn secret(&self, secret: Option<String>) -> Result<Zeroizing<String>, Error> {
        let secret = Zeroizing::new(secret.unwrap_or_default());
        if secret.is_empty() {
            return Err(Error::validation(
                "secret",
                "secret is required and must not be empty",
            ));
        }
        if secret.len() > self.max_secret_bytes {
            return Err(Error::validation(
                "secret",
                format!("secret must be at most {} bytes", self.max_secret_bytes),
            ));
        }
        Ok(secret)
    }
}

/// The length of a generated password.
pub(crate) fn password_length(requested: Option<i64>) -> Result<usize, Error> {
    let Some(requested) = requested else {
        return Ok(DEFAULT_PASSWORD_LENGTH);
    };
    usize::try_from(requested)
        .ok()
        .filter(|length| PASSWORD_LENGTHS.contains(length))
        .ok_or_else(|| {
            Error::validation(
                "length",
                format!(
                    "length must be between {} and {}",
                    PASSWORD_LENGTHS.start(),
                    PASSWORD_LENGTHS.end()
                ),
            )
        })
}

/// An optional passphrase: absent and empty mean none (web forms send empty fields).
pub(crate) fn passphrase(passphrase: Option<String>) -> Result<Option<Zeroizing<String>>, Error> {
    let passphrase = passphrase
        .map(Zeroizing::new)
        .filter(|text| !text.is_empty());
    if let Some(text) = &passphrase
        && text.chars().count() > MAX_PASSPHRASE_CHARS
    {
        return Err(Error::validation(
            "passphrase",
            format!("passphrase must be at most {MAX_PASSPHRASE_CHARS} characters"),
        ));
    }
    Ok(passphrase)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn policy() -> Policy {
        Policy::new(3600, 86_400, 10).expect("valid policy")
    }

    #[test]
    fn ttl_defaults_and_bounds() {
        assert_eq!(
            policy().ttl(None).expect("default"),
            Duration::from_secs(3600)
        );
        assert_eq!(
            policy().ttl(Some(60)).expect("min"),
            Duration::from_secs(60)
        );
        assert_eq!(
            policy().ttl(Some(86_400)).expect("max"),
            Duration::from_secs(86_400)
        );
        for bad in [59, 86_401, 0, -5, i64::MIN, i64::MAX] {
            let err = policy().ttl(Some(bad)).expect_err("out of range");
            assert_eq!(
                (err.kind(), err.field()),
                (ErrorKind::Validation, Some("ttl"))
            );
        }
    }

    #[test]
    fn secret_must_be_present_and_within_size() {
        assert_eq!(
            policy()
                .secret(Some("0123456789".into()))
                .expect("fits")
                .as_str(),
            "0123456789"
        );
        for bad in [None, Some(String::new()), Some("01234567890".into())] {
            let err = policy().secret(bad).expect_err("rejected");
            assert_eq!(err.field(), Some("secret"));
        }
    }

    #[test]
    fn passphrase_empty_is_none_and_long_is_rejected() {
        assert!(passphrase(Some(String::new())).expect("empty").is_none());
        assert!(
            passphrase(Some("é".repeat(128)))
                .expect("128 chars")
                .is_some()
        );
        let err = passphrase(Some("a".repeat(129))).expect_err("too long");
        assert_eq!(err.field(), Some("passphrase"));
    }

    #[test]
    fn password_length_defaults_and_bounds() {
        assert_eq!(password_length(None).expect("default"), 12);
        assert_eq!(password_length(Some(4)).expect("min"), 4);
        assert_eq!(password_length(Some(128)).expect("max"), 128);
        for bad in [3, 129, 0, -1, i64::MAX] {
            assert_eq!(
                password_length(Some(bad)).expect_err("bad").field(),
                Some("length")
            );
        }
    }

    #[test]
    fn inconsistent_limits_are_refused() {
        assert!(Policy::new(3600, 59, 10).is_err());
        assert!(Policy::new(30, 3600, 10).is_err());
        assert!(Policy::new(7200, 3600, 10).is_err());
        assert!(Policy::new(3600, 3600, 0).is_err());
    }
}
