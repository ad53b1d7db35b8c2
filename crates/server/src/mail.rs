//! Emailing secret links over SMTP (`BURNBOX_SMTP_URL`, `BURNBOX_SMTP_FROM`): the server's
//! [`LinkMailer`]. The message says a secret was shared, gives the link, says it opens once and
//! whether a passphrase is needed; never the value, never the passphrase.

use std::time::Duration;

use burnbox_core::{LinkMailer, MailError};
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::config::{Config, ConfigError};

/// How long the SMTP server may take to accept a connection or answer a command: a share with a
/// recipient waits for the mail to be accepted, so a dead server must not hold it long.
const SMTP_TIMEOUT: Duration = Duration::from_secs(10);

/// The subject of every link mail.
const SUBJECT: &str = "A secret was shared with you";

/// Sends links through one SMTP server, over pooled connections.
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// Where mail goes, for logs: the URL's host, never its credentials.
    host: String,
}

impl SmtpMailer {
    /// The mailer of secret links, when BURNBOX_SMTP_URL is set (blank counts as unset).
    pub fn configured(config: &Config) -> Result<Option<Self>, ConfigError> {
        let Some(url) = config
            .smtp_url
            .as_deref()
            .map(str::trim)
            .filter(|url| !url.is_empty())
        else {
            return Ok(None);
        };
        let Some(from) = config
            .smtp_from
            .as_deref()
            .filter(|from| !from.trim().is_empty())
        else {
            return Err(ConfigError {
                setting: "BURNBOX_SMTP_FROM",
                problem: "required with BURNBOX_SMTP_URL: the address link emails are sent from"
                    .into(),
            });
        };
        Self::new(url, from).map(Some)
    }

    /// A mailer for `url` (`smtp://[user:password@]host[:port]`, with `?tls=required` for
    /// STARTTLS, or `smtps://` for TLS from the start) sending as `from`. Errors name the setting
    /// at fault and never repeat the URL (it may hold a password).
    pub fn new(url: &str, from: &str) -> Result<Self, ConfigError> {
        let from = from.trim().parse::<Mailbox>().map_err(|_| ConfigError {
            setting: "BURNBOX_SMTP_FROM",
            problem: "must be an email address (`burnbox@example.com` or `Burnbox <burnbox@example.com>`)".into(),
        })?;
        let host = url::Url::parse(url)
            .ok()
            .and_then(|url| url.host_str().map(str::to_owned))
            .ok_or_else(|| ConfigError {
                setting: "BURNBOX_SMTP_URL",
                problem: "must be a URL with a host: smtp://host:port, smtp://host:port?tls=required or smtps://host:port".into(),
            })?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|err| ConfigError {
                setting: "BURNBOX_SMTP_URL",
                problem: format!(
                    "{err} (expected smtp://host:port, smtp://host:port?tls=required or smtps://host:port)"
                ),
            })?
            .timeout(Some(SMTP_TIMEOUT))
            .build();
        Ok(Self {
            transport,
            from,
            host,
        })
    }
}

impl std::fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the transport: it holds the credentials.
        f.debug_struct("SmtpMailer")
            .field("host", &self.host)
            .field("from", &self.from.email.to_string())
            .finish()
    }
}

/// The text of a link mail. Its lines stay short so that it travels as plain 7-bit text,
/// readable as it is and with the link whole (a long line would be quoted-printable encoded).
fn body(link: &str, has_passphrase: bool) -> String {
    let passphrase = if has_passphrase {
        "It is protected by a passphrase: the person who shared it will give it\n\
         to you another way."
    } else {
        "No passphrase is needed to open it."
    };
    format!(
        "Someone shared a secret with you.\n\n\
         Open it here:\n{link}\n\n\
         The secret can be viewed once: after that it is gone for good, and so\n\
         is the link. Opening the page does not reveal it yet: you are asked\n\
         first.\n\n\
         {passphrase}\n\n\
         If you were not expecting this, you can ignore this email.\n"
    )
}

/// What went wrong, for the log: the kind of failure and the SMTP code, never the server's
/// answer text (which may quote the address).
fn describe(err: &lettre::transport::smtp::Error) -> String {
    if let Some(code) = err.status() {
        let kind = if err.is_permanent() {
            "permanently"
        } else {
            "for now"
        };
        format!("the SMTP server refused the message {kind} (code {code})")
    } else if err.is_response() {
        "the SMTP server's answer could not be read".to_owned()
    } else if err.is_timeout() {
        format!("the SMTP server did not answer within {SMTP_TIMEOUT:?}")
    } else {
        // Connection, network, TLS and client errors: causes from the socket, TLS or lettre.
        err.to_string()
    }
}

#[async_trait::async_trait]
impl LinkMailer for SmtpMailer {
    async fn send_link(&self, to: &str, link: &str, has_passphrase: bool) -> Result<(), MailError> {
        let to = to
            .parse::<Address>()
            .map_err(|_| MailError("the recipient's address does not parse".into()))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(None, to))
            .subject(SUBJECT)
            .message_id(None)
            .header(ContentType::TEXT_PLAIN)
            .body(body(link, has_passphrase))
            .map_err(|err| MailError(format!("the message could not be written: {err}")))?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|err| MailError(format!("via {}: {}", self.host, describe(&err))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // In a runtime: the connection pool starts its cleaning task when built.
    #[tokio::test]
    async fn settings_are_checked_without_repeating_the_url() {
        for (url, from, setting) in [
            ("smtp://mail.test:25", "not an address", "BURNBOX_SMTP_FROM"),
            ("mail.test:25", "burnbox@example.com", "BURNBOX_SMTP_URL"),
            (
                "imap://user:hunter2@mail.test",
                "burnbox@example.com",
                "BURNBOX_SMTP_URL",
            ),
            (
                "smtp://user:hunter2@mail.test?tls=sometimes",
                "burnbox@example.com",
                "BURNBOX_SMTP_URL",
            ),
        ] {
            let err = SmtpMailer::new(url, from).expect_err("refused");
            assert_eq!(err.setting, setting, "{url} {from}");
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
        for url in [
            "smtp://localhost:2525",
            "smtp://user:hunter2@mail.test:587?tls=required",
            "smtps://mail.test",
        ] {
            let mailer = SmtpMailer::new(url, "Burnbox <burnbox@example.com>").expect(url);
            assert!(!format!("{mailer:?}").contains("hunter2"));
        }
    }

    #[test]
    fn the_mail_says_what_it_must() {
        let link = "https://burnbox.test/secret/abc";
        let protected = body(link, true);
        assert!(protected.contains(link));
        assert!(protected.contains("viewed once"));
        assert!(protected.contains("protected by a passphrase"));
        assert!(body(link, false).contains("No passphrase is needed"));
        // Short lines: sent as 7-bit text, not quoted-printable.
        for text in [protected, body(link, false)] {
            assert!(text.lines().all(|line| line.len() <= 76), "{text}");
        }
    }
}
