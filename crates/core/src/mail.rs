//! Emailing a secret's link to the one person it is for (Onetime Secret's `recipient`): who may
//! ask for it, which addresses are accepted, and how a receipt shows the address. Sending is the
//! server's business, behind [`LinkMailer`]: this crate never speaks SMTP. Only the link is ever
//! mailed, never the value or the passphrase.

use lettre::Address;

use crate::{Caller, Error};

/// Why a link could not be emailed. Its text goes to the log only, so a mailer keeps the
/// address and the link out of it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct MailError(pub String);

/// Sends secret links by email, for [`crate::Secrets::share`] with a recipient.
#[async_trait::async_trait]
pub trait LinkMailer: Send + Sync + std::fmt::Debug {
    /// Emails `link` (the page that reveals a secret once) to `to`, an address that parsed,
    /// saying whether the secret needs a passphrase. Returns once the mail server has accepted
    /// the message.
    async fn send_link(&self, to: &str, link: &str, has_passphrase: bool) -> Result<(), MailError>;
}

/// The answer to an anonymous share with a recipient (Onetime Secret's text).
pub const ACCOUNT_REQUIRED: &str = "An account is required to send emails.";

/// The answer to a recipient that is not an email address (Onetime Secret's text). It never
/// repeats the address.
pub const UNDELIVERABLE: &str = "Undeliverable email address";

/// The answer to a share whose link could not be emailed: the secret was burned at once, so no
/// link to it exists anywhere.
pub const NOT_EMAILED: &str =
    "The link could not be emailed; the secret was burned and nothing can be revealed. Try again.";

/// The address a share asks its link to be emailed to, checked in Onetime Secret's order: none
/// (absent, or only empty strings, as its web form sends); an account is needed; this server
/// must send mail (`can_send`); one address; one that parses.
pub(crate) fn recipient(
    caller: &Caller,
    addresses: Vec<String>,
    can_send: bool,
) -> Result<Option<Address>, Error> {
    let mut addresses: Vec<String> = addresses
        .into_iter()
        .map(|address| address.trim().to_owned())
        .filter(|address| !address.is_empty())
        .collect();
    if addresses.is_empty() {
        return Ok(None);
    }
    if caller.is_anonymous() {
        return Err(Error::validation("recipient", ACCOUNT_REQUIRED));
    }
    if !can_send {
        return Err(Error::validation(
            "recipient",
            "Email delivery is not configured on this server; share the link yourself",
        ));
    }
    let (Some(address), None) = (addresses.pop(), addresses.pop()) else {
        return Err(Error::validation(
            "recipient",
            "A secret's link can be emailed to one recipient only",
        ));
    };
    address
        .parse::<Address>()
        .map(Some)
        .map_err(|_| Error::validation("recipient", UNDELIVERABLE))
}

/// `address` as a receipt shows it, masked as Onetime Secret does: the local part's first two
/// characters (all of it when that short) then `***`, `@`, the domain's first character then
/// `***`, and the domain's last label (`alice@example.com` gives `al***@e***.com`). The last
/// label is kept as it is, without a public-suffix list: `.co.uk` shows as `.uk`.
pub(crate) fn mask(address: &Address) -> String {
    let user = address.user();
    let domain = address.domain();
    let user = if user.chars().count() <= 2 {
        user.to_owned()
    } else {
        format!("{}***", user.chars().take(2).collect::<String>())
    };
    let first: String = domain.chars().take(1).collect();
    match domain.rsplit_once('.') {
        Some((_, last)) => format!("{user}@{first}***.{last}"),
        // A single-label domain (`root@localhost`) has no suffix to show.
        None => format!("{user}@{first}***"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn masked(address: &str) -> String {
        mask(&address.parse().expect("an address"))
    }

    #[test]
    fn masks_as_onetime_secret_does() {
        for (address, shown) in [
            ("alice@example.com", "al***@e***.com"),
            ("a@mail.example.org", "a@m***.org"),
            ("bo@example.com", "bo@e***.com"),
            ("bob@example.com", "bo***@e***.com"),
            ("first.last+tag@sub.domain.co.uk", "fi***@s***.uk"),
            ("root@localhost", "ro***@l***"),
            ("éloïse@exämple.de", "él***@e***.de"),
        ] {
            assert_eq!(masked(address), shown, "{address}");
        }
    }

    #[test]
    fn the_mask_hides_what_it_must() {
        let shown = masked("alice.secretname@private-company.example");
        assert!(!shown.contains("secretname"), "{shown}");
        assert!(!shown.contains("private-company"), "{shown}");
    }

    fn customer() -> Caller {
        Caller::customer("alice", "token")
    }

    fn refusal(caller: &Caller, addresses: &[&str], can_send: bool) -> String {
        let addresses = addresses
            .iter()
            .map(|&address| address.to_owned())
            .collect();
        let err = recipient(caller, addresses, can_send).expect_err("refused");
        assert_eq!(
            (err.kind(), err.field()),
            (ErrorKind::Validation, Some("recipient"))
        );
        err.message().to_owned()
    }

    #[test]
    fn no_address_asks_for_nothing() {
        for addresses in [vec![], vec![String::new()], vec![" ".into(), String::new()]] {
            assert!(
                recipient(&Caller::anonymous(), addresses, false)
                    .expect("accepted")
                    .is_none()
            );
        }
    }

    #[test]
    fn addresses_are_checked_in_order() {
        let anonymous = Caller::anonymous();
        assert_eq!(
            refusal(&anonymous, &["bob@example.com"], true),
            ACCOUNT_REQUIRED
        );
        assert!(refusal(&customer(), &["bob@example.com"], false).contains("not configured"));
        assert!(
            refusal(&customer(), &["bob@example.com", "carol@example.com"], true)
                .contains("one recipient")
        );
        assert_eq!(
            refusal(&customer(), &["not an address"], true),
            UNDELIVERABLE
        );
        assert_eq!(refusal(&customer(), &["a@b.c, d@e.f"], true), UNDELIVERABLE);
        let address = recipient(
            &customer(),
            vec![String::new(), " bob@example.com ".into()],
            true,
        )
        .expect("accepted")
        .expect("an address");
        assert_eq!(address.to_string(), "bob@example.com");
    }
}
