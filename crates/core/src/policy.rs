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

/// Operator-set rules for passphrases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PassphraseRules {
    /// Shortest passphrase accepted when sharing, in characters (0: any).
    pub min_length: usize,
    /// Whether every shared secret must have a passphrase.
    pub required: bool,
    /// Failed attempts after which a protected secret is burned.
    pub max_attempts: u32,
}

impl Default for PassphraseRules {
    fn default() -> Self {
        Self {
            min_length: 0,
            required: false,
            max_attempts: 5,
        }
    }
}

/// Operator-set limits on shared secrets.
#[derive(Clone, Debug)]
pub struct Policy {
    default_ttl: i64,
    max_ttl: i64,
    max_secret_bytes: usize,
    passphrase: PassphraseRules,
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
            passphrase: PassphraseRules::default(),
        })
    }

    /// The same limits with these passphrase rules; the error names the rule at fault.
    pub fn with_passphrase_rules(self, rules: PassphraseRules) -> Result<Self, String> {
        if rules.min_length > MAX_PASSPHRASE_CHARS {
            return Err(format!(
                "passphrase min length must be at most {MAX_PASSPHRASE_CHARS}, got {}",
                rules.min_length
            ));
        }
        if rules.max_attempts == 0 {
            return Err("passphrase max attempts must be at least 1".into());
        }
        Ok(Self {
            passphrase: rules,
            ..self
        })
    }

    /// The passphrase rules in force.
    pub fn passphrase_rules(&self) -> PassphraseRules {
        self.passphrase
    }

    /// The passphrase of a new secret: within the length rules, and present when required.
    pub(crate) fn new_passphrase(
        &self,
        passphrase: Option<String>,
    ) -> Result<Option<Zeroizing<String>>, Error> {
        let passphrase = given_passphrase(passphrase)?;
        let rules = self.passphrase;
        match &passphrase {
            None if rules.required => Err(Error::validation(
                "passphrase",
                "A passphrase is required for all secrets",
            )),
            Some(text) if text.chars().count() < rules.min_length => Err(Error::validation(
                "passphrase",
                format!(
                    "Passphrase must be at least {} characters long",
                    rules.min_length
                ),
            )),
            None | Some(_) => Ok(passphrase),
        }
    }

    /// The lifetime of a secret shared without a ttl, in seconds.
    pub fn default_ttl(&self) -> i64 {
        self.default_ttl
    }

    /// The longest lifetime a secret may be given, in seconds.
    pub fn max_ttl(&self) -> i64 {
        self.max_ttl
    }

    /// The largest secret accepted, in bytes.
    pub fn max_secret_bytes(&self) -> usize {
        self.max_secret_bytes
    }

    /// The largest request body or message a transport should read: room for a maximal secret
    /// (form-encoded, every byte may triple) and the other fields, so an oversized secret still
    /// reaches validation and gets its field error, while a body far beyond is refused unread.
    pub fn max_request_bytes(&self) -> usize {
        self.max_secret_bytes
            .saturating_mul(3)
            .saturating_add(64 * 1024)
    }

    /// The lifetime of a new secret: the default when none is asked for, else the one asked
    /// for clamped into [`MIN_TTL_SECONDS`, max TTL], as Onetime Secret does (its clients ask
    /// for `ttl=1` or `ttl=99999999` and expect a secret, not an error). The receipt shows the
    /// lifetime given.
    pub(crate) fn ttl(&self, requested: Option<i64>) -> Duration {
        let seconds = requested
            .unwrap_or(self.default_ttl)
            .clamp(MIN_TTL_SECONDS, self.max_ttl);
        // Clamped to at least MIN_TTL_SECONDS, so positive.
        Duration::from_secs(seconds.unsigned_abs())
    }

    pub(crate) fn secret(&self, secret: Option<String>) -> Result<Zeroizing<String>, Error> {
        let secret = Zeroizing::new(secret.unwrap_or_default());
        if secret.is_empty() {
            return Err(Error::validation(
                "secret",
                "You did not provide anything to share",
            ));
        }
        if secret.len() > self.max_secret_bytes {
            return Err(Error::validation(
                "secret",
                format!(
                    "Secret value exceeds the maximum size of {} bytes",
                    self.max_secret_bytes
                ),
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
                    "Generated password length must be between {} and {} characters",
                    PASSWORD_LENGTHS.start(),
                    PASSWORD_LENGTHS.end()
                ),
            )
        })
}

/// A passphrase given to open a secret: absent and empty mean none (web forms send empty
/// fields); longer than any accepted passphrase is refused before it costs an argon2 run.
pub(crate) fn given_passphrase(
    passphrase: Option<String>,
) -> Result<Option<Zeroizing<String>>, Error> {
    let passphrase = passphrase
        .map(Zeroizing::new)
        .filter(|text| !text.is_empty());
    if let Some(text) = &passphrase
        && text.chars().count() > MAX_PASSPHRASE_CHARS
    {
        return Err(Error::validation(
            "passphrase",
            format!("Passphrase must be no more than {MAX_PASSPHRASE_CHARS} characters long"),
        ));
    }
    Ok(passphrase)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy::new(3600, 86_400, 10).expect("valid policy")
    }

    #[test]
    fn ttl_defaults_and_clamps_into_bounds() {
        let policy = policy();
        for (requested, given) in [
            (None, 3600),
            (Some(60), 60),
            (Some(86_400), 86_400),
            (Some(59), 60),
            (Some(1), 60),
            (Some(0), 60),
            (Some(-5), 60),
            (Some(i64::MIN), 60),
            (Some(86_401), 86_400),
            (Some(99_999_999), 86_400),
            (Some(i64::MAX), 86_400),
        ] {
            assert_eq!(
                policy.ttl(requested),
                Duration::from_secs(given),
                "{requested:?}"
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
        assert!(
            given_passphrase(Some(String::new()))
                .expect("empty")
                .is_none()
        );
        assert!(
            given_passphrase(Some("é".repeat(128)))
                .expect("128 chars")
                .is_some()
        );
        let err = given_passphrase(Some("a".repeat(129))).expect_err("too long");
        assert_eq!(err.field(), Some("passphrase"));
    }

    #[test]
    fn new_passphrases_follow_the_rules() {
        let rules = PassphraseRules {
            min_length: 8,
            required: true,
            max_attempts: 3,
        };
        let strict = policy().with_passphrase_rules(rules).expect("valid rules");
        for bad in [None, Some(String::new()), Some("seven77".into())] {
            let err = strict.new_passphrase(bad).expect_err("refused");
            assert_eq!(err.field(), Some("passphrase"));
        }
        assert!(
            strict
                .new_passphrase(Some("eight888".into()))
                .expect("ok")
                .is_some()
        );
        assert!(
            policy()
                .new_passphrase(None)
                .expect("optional by default")
                .is_none()
        );
        let no_attempts = PassphraseRules {
            max_attempts: 0,
            ..rules
        };
        assert!(policy().with_passphrase_rules(no_attempts).is_err());
        let too_long = PassphraseRules {
            min_length: 129,
            ..rules
        };
        assert!(policy().with_passphrase_rules(too_long).is_err());
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
