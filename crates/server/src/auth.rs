//! Authentication. Customers authenticate with an API token: HTTP Basic `custid:token` on REST,
//! the same `authorization: Basic …` value in gRPC metadata. Tokens come from the file named by
//! `BURNBOX_API_TOKENS_FILE` (one `custid:token` per line; a token written `sha256:HEX` is known
//! by its hash only), are held as SHA-256 digests, compared in constant time, and re-read on
//! SIGHUP. Wrong credentials are always 401, never treated as anonymous. Whether a caller without
//! credentials may do something is the gate's decision.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use base64::Engine;
use burnbox_core::{ANONYMOUS_CUSTID, Caller, Error};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

type TokenDigest = [u8; 32];

/// Customer ids and the digests of their tokens.
#[derive(Default)]
struct Tokens(HashMap<String, TokenDigest>);

/// Parses a tokens file. Errors name the line, never its content (it holds tokens).
fn parse_tokens(text: &str) -> Result<Tokens, String> {
    let mut tokens = HashMap::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((custid, token)) = line.split_once(':') else {
            return Err(format!("line {number}: expected custid:token"));
        };
        let custid = custid.trim();
        if custid.is_empty()
            || custid.chars().any(char::is_whitespace)
            || custid == ANONYMOUS_CUSTID
        {
            return Err(format!(
                "line {number}: the customer id must be non-empty, without spaces, and not `{ANONYMOUS_CUSTID}`"
            ));
        }
        let digest = match token.trim().strip_prefix("sha256:") {
            Some(hex_digest) => {
                let mut digest = [0u8; 32];
                hex::decode_to_slice(hex_digest, &mut digest).map_err(|_| {
                    format!("line {number}: sha256: must be followed by 64 hex digits")
                })?;
                digest
            }
            None if token.trim().is_empty() => return Err(format!("line {number}: empty token")),
            None => Sha256::digest(token.trim().as_bytes()).into(),
        };
        if tokens.insert(custid.to_owned(), digest).is_some() {
            return Err(format!("line {number}: customer {custid} appears twice"));
        }
    }
    Ok(Tokens(tokens))
}

/// Decides who a request comes from.
pub struct Authenticator {
    tokens_file: Option<PathBuf>,
    tokens: RwLock<Arc<Tokens>>,
}

impl Authenticator {
    /// Reads the tokens file (if any).
    pub fn load(tokens_file: Option<PathBuf>) -> Result<Self, String> {
        let authenticator = Self {
            tokens_file,
            tokens: RwLock::new(Arc::default()),
        };
        authenticator.reload()?;
        Ok(authenticator)
    }

    /// Re-reads the tokens file; on error the tokens in force stay. Returns how many customers
    /// the file holds.
    pub fn reload(&self) -> Result<usize, String> {
        let Some(path) = &self.tokens_file else {
            return Ok(0);
        };
        let text = std::fs::read_to_string(path)
            .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
        let tokens =
            parse_tokens(&text).map_err(|problem| format!("{}: {problem}", path.display()))?;
        let customers = tokens.0.len();
        *self
            .tokens
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(tokens);
        Ok(customers)
    }

    /// The customer `authorization` (the raw Authorization header or metadata value) proves,
    /// `None` without credentials, or 401 for credentials that prove nobody.
    pub fn identify(&self, authorization: Option<&str>) -> Result<Option<Caller>, Error> {
        authorization.map(|value| self.verify(value)).transpose()
    }

    fn verify(&self, authorization: &str) -> Result<Caller, Error> {
        let wrong = || Error::not_authorized("invalid credentials");
        let (scheme, encoded) = authorization.trim().split_once(' ').ok_or_else(wrong)?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(Error::not_authorized(
                "unsupported authorization scheme (HTTP Basic only)",
            ));
        }
        let decoded = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|_| wrong())?,
        );
        let decoded = std::str::from_utf8(&decoded).map_err(|_| wrong())?;
        let (custid, token) = decoded.split_once(':').ok_or_else(wrong)?;
        let presented: TokenDigest = Sha256::digest(token.as_bytes()).into();
        let tokens = self
            .tokens
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        // Compare against a dummy digest for unknown customers so timing tells nothing.
        let (known, expected) = match tokens.0.get(custid) {
            Some(digest) => (true, *digest),
            None => (false, [0u8; 32]),
        };
        if known && bool::from(presented.ct_eq(&expected)) {
            Ok(Caller::customer(custid, token))
        } else {
            Err(wrong())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(credentials: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(credentials)
        )
    }

    fn authenticator(file: &str) -> Authenticator {
        Authenticator {
            tokens_file: None,
            tokens: RwLock::new(Arc::new(parse_tokens(file).expect("valid file"))),
        }
    }

    fn customer(auth: &Authenticator, authorization: &str) -> Result<Caller, Error> {
        auth.identify(Some(authorization))
            .map(|caller| caller.expect("credentials identify someone or fail"))
    }

    #[test]
    fn plain_and_hashed_tokens_verify() {
        let hashed = hex::encode(Sha256::digest(b"hashed-token"));
        let auth = authenticator(&format!(
            "# customers\nalice:plain-token\n\nbob:sha256:{hashed}\n"
        ));
        assert_eq!(
            customer(&auth, &basic("alice:plain-token"))
                .expect("alice")
                .custid(),
            "alice"
        );
        assert_eq!(
            customer(&auth, &basic("bob:hashed-token"))
                .expect("bob")
                .custid(),
            "bob"
        );
        for wrong in [
            basic("alice:nope"),
            basic("carol:plain-token"),
            basic("alice"),
            "Bearer x".into(),
            "Basic !!".into(),
        ] {
            let err = customer(&auth, &wrong).expect_err("refused");
            assert_eq!(err.kind(), burnbox_core::ErrorKind::Unauthorized, "{wrong}");
            assert!(!err.message().contains("plain-token"));
        }
    }

    #[test]
    fn no_credentials_identify_nobody() {
        assert!(
            authenticator("alice:t\n")
                .identify(None)
                .expect("no error")
                .is_none()
        );
    }

    #[test]
    fn malformed_files_name_the_line_not_the_token() {
        for (file, line) in [
            ("alice:t\nbroken-line-secret", "line 2"),
            ("alice:t\nalice:u", "line 2"),
            ("anon:t", "line 1"),
            ("bob:sha256:xyz-secret", "line 1"),
            ("bob:", "line 1"),
        ] {
            let problem = parse_tokens(file).err().expect("refused");
            assert!(problem.contains(line), "{problem}");
            assert!(!problem.contains("secret"), "{problem}");
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_authorization_values_are_refused(value in ".{0,200}") {
            let auth = authenticator("alice:plain-token\n");
            proptest::prop_assert!(auth.identify(Some(&value)).is_err());
        }

        #[test]
        fn only_the_right_token_passes(token in "[ -~]{1,40}") {
            let auth = authenticator("alice:plain-token\n");
            let accepted = customer(&auth, &basic(&format!("alice:{token}"))).is_ok();
            proptest::prop_assert_eq!(accepted, token == "plain-token");
        }
    }
}
