//! `Secrets`, the one handler behind both transports: every REST route and every gRPC method
//! calls exactly one of its methods.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use burnbox_store::{
    FailedAttempt, KeyCheck, NewSecret, OwnerId, ReceiptId, ReceiptState as StoredState,
    RecentEntry, SecretId, SecretRecord, SecretStore, Take,
};
use futures_util::future::join_all;
use zeroize::Zeroizing;

use crate::crypto::{Keyring, Purpose, WhichKey};
use crate::keys::{generate_key, generate_password, is_well_formed};
use crate::mail::{self, LinkMailer, NOT_EMAILED};
use crate::model::{
    ANONYMOUS_CUSTID, BurnInput, Burned, Caller, GenerateInput, Generated, Receipt, ReceiptState,
    RevealInput, Revealed, SecretStatus, ShareInput,
};
use crate::policy::{self, Policy};
use crate::receipt_fields::SealedReceiptFields;
use crate::{Error, ErrorKind, passphrase};

/// How the handler is set up.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Limits on shared secrets.
    pub policy: Policy,
    /// Master keys for encryption at rest.
    pub keyring: Keyring,
    /// The base URL links are made with (`https://host[:port]`, no trailing slash): secret
    /// links, receipt links, and the reveal answer's `share_domain`.
    pub public_url: String,
    /// Emails secret links to a share's `recipient`; `None`: this server sends no mail, and a
    /// share with a recipient is refused.
    pub mailer: Option<Arc<dyn LinkMailer>>,
}

/// The one-time secret service, transport-free.
pub struct Secrets {
    store: Arc<dyn SecretStore>,
    /// Where the master-key check blob is kept: the same backend as `store`, so the check
    /// speaks for the secrets it guards.
    key_check: Arc<dyn KeyCheck>,
    settings: Settings,
    /// Set once the store's data proved to be sealed with a configured master key.
    master_key_checked: std::sync::OnceLock<()>,
}

/// Version tag of the record plaintext layout: [version][u16 hash length][hash][value].
const RECORD_V1: u8 = 1;

/// The host (with its port, if any) of a base URL: `https://burnbox.test:8443/x` gives
/// `burnbox.test:8443`.
fn host_of(url: &str) -> &str {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    after_scheme.split('/').next().unwrap_or(after_scheme)
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}

fn seconds(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

/// Whole seconds left, rounded up: a receipt read right after sharing shows the ttl it was
/// given, and 0 only once the time is really up.
fn seconds_left(duration: Duration) -> i64 {
    seconds(duration) + i64::from(duration.subsec_nanos() > 0)
}

pub(crate) fn encode_record_plaintext(
    passphrase_hash: Option<&str>,
    value: &str,
) -> Result<Zeroizing<Vec<u8>>, Error> {
    let hash = passphrase_hash.unwrap_or_default().as_bytes();
    let hash_len =
        u16::try_from(hash.len()).map_err(|_| Error::internal("passphrase hash too long"))?;
    let mut plain = Zeroizing::new(Vec::with_capacity(3 + hash.len() + value.len()));
    plain.push(RECORD_V1);
    plain.extend_from_slice(&hash_len.to_be_bytes());
    plain.extend_from_slice(hash);
    plain.extend_from_slice(value.as_bytes());
    Ok(plain)
}

/// The opened record: the passphrase hash (if any) and the value.
pub(crate) struct OpenedRecord {
    pub(crate) passphrase_hash: Option<String>,
    pub(crate) value: Zeroizing<String>,
}

pub(crate) fn decode_record_plaintext(plain: &[u8]) -> Result<OpenedRecord, Error> {
    let malformed = || Error::internal("secret record is malformed");
    let (&RECORD_V1, rest) = plain.split_first().ok_or_else(malformed)? else {
        return Err(malformed());
    };
    let (len, rest) = rest.split_first_chunk::<2>().ok_or_else(malformed)?;
    let (hash, value) = rest
        .split_at_checked(usize::from(u16::from_be_bytes(*len)))
        .ok_or_else(malformed)?;
    let passphrase_hash = (!hash.is_empty())
        .then(|| String::from_utf8(hash.to_vec()).map_err(|_| malformed()))
        .transpose()?;
    let value = Zeroizing::new(String::from_utf8(value.to_vec()).map_err(|_| malformed())?);
    Ok(OpenedRecord {
        passphrase_hash,
        value,
    })
}

/// The outcome of [`Secrets::check_master_key`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MasterKeyCheck {
    /// The current master key wrote the store's data.
    Matches,
    /// The previous master key did; the check now names the current one.
    Rotated,
    /// Neither configured key opens the store's data.
    Mismatch,
}

/// How far back a customer's recent list reaches.
pub const RECENT_WINDOW: Duration = Duration::from_secs(30 * 24 * 3600);
/// The most receipts a recent list returns.
pub const RECENT_LIMIT: usize = 100;

/// Decides whether `caller` may read or burn a receipt owned by `owner`: anyone holding the key
/// of an anonymous receipt may; a customer's receipt only that customer.
fn authorize(caller: &Caller, owner: &str) -> Result<(), Error> {
    if owner == ANONYMOUS_CUSTID || (!caller.is_anonymous() && caller.custid() == owner) {
        Ok(())
    } else if caller.is_anonymous() {
        Err(Error::not_authorized(
            "a customer's receipt read without credentials",
        ))
    } else {
        Err(Error::new(
            ErrorKind::Forbidden,
            "this receipt belongs to another customer",
        ))
    }
}

/// A receipt read from the store and opened.
struct OpenedReceipt {
    body: SealedReceiptFields,
    receipt: Receipt,
}

impl Secrets {
    /// A handler over `store`, checking its master keys against the blob `key_check` keeps
    /// (the same backend as `store`).
    pub fn new(
        store: Arc<dyn SecretStore>,
        key_check: Arc<dyn KeyCheck>,
        settings: Settings,
    ) -> Self {
        Self {
            store,
            key_check,
            settings,
            master_key_checked: std::sync::OnceLock::new(),
        }
    }

    /// The limits in force.
    pub fn policy(&self) -> &Policy {
        &self.settings.policy
    }

    /// The base URL links are made with.
    pub fn public_url(&self) -> &str {
        &self.settings.public_url
    }

    /// The link that opens the secret `secret_key` reveals: the secret page.
    pub fn secret_url(&self, secret_key: &str) -> String {
        format!("{}/secret/{secret_key}", self.settings.public_url)
    }

    /// The link to the receipt `metadata_key` reads: the receipt page (Onetime Secret's
    /// `metadata_url`).
    pub fn receipt_url(&self, metadata_key: &str) -> String {
        format!("{}/private/{metadata_key}", self.settings.public_url)
    }

    /// Whether a requested `share_domain` names this server: empty (none asked for), its host
    /// as Onetime Secret clients send it (`burnbox.example`), or its whole public URL.
    fn is_own_domain(&self, domain: &str) -> bool {
        let domain = domain.trim().trim_end_matches('/');
        let public_url = self.settings.public_url.as_str();
        domain.is_empty()
            || domain.eq_ignore_ascii_case(public_url)
            || domain.eq_ignore_ascii_case(host_of(public_url))
    }

    /// The service status as Onetime Secret reports it.
    pub fn status(&self) -> &'static str {
        "nominal"
    }

    /// The language of the messages in answers, reported beside the status as Onetime Secret
    /// does. Messages are English only, so a `locale` a client asks for changes nothing.
    pub fn locale(&self) -> &'static str {
        "en"
    }

    /// Checks the master keys against the store before serving: the store keeps a known text
    /// sealed with the master key that first used it. A server whose keys cannot open it would
    /// destroy every secret it reveals (the burn comes before decryption), so it must not start.
    /// After a rotation the check is resealed with the new current key.
    pub async fn check_master_key(&self) -> Result<MasterKeyCheck, Error> {
        const CALLER_KEY: &str = "burnbox key check";
        const TEXT: &[u8] = b"burnbox master key check v1";
        let keyring = &self.settings.keyring;
        let proposed = keyring.seal(Purpose::KeyCheck, CALLER_KEY, &[0; 32], TEXT)?;
        let stored = self.key_check.key_check(proposed.clone(), false).await?;
        let check = match keyring.which_opens(Purpose::KeyCheck, CALLER_KEY, &[0; 32], &stored) {
            Some(WhichKey::Current) => MasterKeyCheck::Matches,
            Some(WhichKey::Previous) => {
                self.key_check.key_check(proposed, true).await?;
                MasterKeyCheck::Rotated
            }
            None => return Ok(MasterKeyCheck::Mismatch),
        };
        let _ = self.master_key_checked.set(());
        Ok(check)
    }

    /// Passes once the master key check has: every operation on stored secrets waits for it, so
    /// a server that started while the store was unreachable touches nothing before it knows
    /// its keys fit (and a server whose keys do not fit touches nothing at all).
    async fn master_key_fits(&self) -> Result<(), Error> {
        if self.master_key_checked.get().is_some() {
            return Ok(());
        }
        match self.check_master_key().await? {
            MasterKeyCheck::Matches | MasterKeyCheck::Rotated => Ok(()),
            MasterKeyCheck::Mismatch => Err(Error::internal(
                "the configured master keys do not open the store's data: refusing to touch secrets",
            )),
        }
    }

    /// Whether the store answers and its data fits the master key (for readiness probes).
    pub async fn ready(&self) -> Result<(), Error> {
        self.master_key_fits().await?;
        self.store.ping().await.map_err(Error::from)
    }

    /// Stores a new secret and returns its receipt, with the secret key that reveals it.
    #[tracing::instrument(name = "secrets.share", skip_all, fields(custid = caller.custid()))]
    pub async fn share(&self, caller: &Caller, input: ShareInput) -> Result<Receipt, Error> {
        let ShareInput {
            secret,
            passphrase,
            ttl,
            recipient,
            share_domain,
        } = input;
        let policy = &self.settings.policy;
        let secret = policy.secret(secret)?;
        let passphrase = policy.new_passphrase(passphrase)?;
        let ttl = policy.ttl(ttl);
        let recipient = mail::recipient(caller, recipient, self.settings.mailer.is_some())?;
        if let Some(domain) = share_domain
            && !self.is_own_domain(&domain)
        {
            return Err(Error::validation(
                "share_domain",
                format!(
                    "Unknown domain: this server shares links on {} only (custom share domains are not supported)",
                    host_of(&self.settings.public_url)
                ),
            ));
        }
        let masked = recipient.iter().map(mail::mask).collect();
        let receipt = self
            .store_secret(caller, &secret, passphrase, ttl, masked)
            .await?;
        if let (Some(address), Some(mailer)) = (recipient, &self.settings.mailer) {
            self.email_link(mailer.as_ref(), &address, &receipt).await?;
        }
        Ok(receipt)
    }

    /// Emails the link of the secret just stored under `receipt`. When that fails the secret is
    /// burned at once: nobody was sent its link, and the share answer that holds it is an
    /// error, so it could never be revealed anyway; burned, it is not kept for nothing either.
    async fn email_link(
        &self,
        mailer: &dyn LinkMailer,
        address: &lettre::Address,
        receipt: &Receipt,
    ) -> Result<(), Error> {
        let Some(secret_key) = receipt.secret_key.as_deref() else {
            return Err(Error::internal("a new receipt has no secret key"));
        };
        let link = self.secret_url(secret_key);
        let Err(err) = mailer
            .send_link(address.as_ref(), &link, receipt.passphrase_required)
            .await
        else {
            tracing::info!("secret link emailed");
            return Ok(());
        };
        // The mailer's error names neither the address nor the link.
        tracing::warn!(error = %err, "the secret link could not be emailed: burning the secret");
        match self
            .store
            .burn(&SecretId::from_secret_key(secret_key), now())
            .await
        {
            Ok(_) => {}
            // Still unreachable (its link went nowhere); it expires with its ttl.
            Err(err) => tracing::error!(
                error = %err,
                "the secret whose link could not be emailed could not be burned"
            ),
        }
        Err(Error::new(ErrorKind::Unavailable, NOT_EMAILED))
    }

    /// Generates a password, stores it as a secret and returns the receipt with the password.
    #[tracing::instrument(name = "secrets.generate", skip_all, fields(custid = caller.custid()))]
    pub async fn generate(
        &self,
        caller: &Caller,
        input: GenerateInput,
    ) -> Result<Generated, Error> {
        let length = policy::password_length(input.length)?;
        let passphrase = self.settings.policy.new_passphrase(input.passphrase)?;
        let ttl = self.settings.policy.ttl(input.ttl);
        let value = generate_password(length);
        let receipt = self
            .store_secret(caller, &value, passphrase, ttl, Vec::new())
            .await?;
        Ok(Generated { receipt, value })
    }

    async fn store_secret(
        &self,
        caller: &Caller,
        secret: &str,
        passphrase: Option<Zeroizing<String>>,
        ttl: Duration,
        recipient: Vec<String>,
    ) -> Result<Receipt, Error> {
        self.master_key_fits().await?;
        let passphrase_hash = match passphrase {
            Some(passphrase) => Some(passphrase::hash(passphrase).await?),
            None => None,
        };
        let secret_key = generate_key();
        let metadata_key = generate_key();
        let secret_id = SecretId::from_secret_key(&secret_key);
        let created = now();
        let receipt_ttl = ttl * 2;
        let body = SealedReceiptFields {
            custid: caller.custid().to_owned(),
            secret_key,
            created,
            ttl: seconds(ttl),
            passphrase_required: passphrase_hash.is_some(),
            recipient,
        };

        let keyring = &self.settings.keyring;
        let record_plain = encode_record_plaintext(passphrase_hash.as_deref(), secret)?;
        let record = SecretRecord {
            protected: passphrase_hash.is_some(),
            end_to_end: crate::end_to_end::is_end_to_end(secret),
            sealed: keyring.seal(
                Purpose::Record,
                &body.secret_key,
                secret_id.as_bytes(),
                &record_plain,
            )?,
        };
        let body_plain = body.encode();
        let sealed_receipt = keyring.seal(
            Purpose::Receipt,
            &metadata_key,
            secret_id.as_bytes(),
            &body_plain,
        )?;
        let recent = match caller.token() {
            Some(token) => {
                let owner = OwnerId::from_custid(caller.custid());
                Some(RecentEntry {
                    owner,
                    sealed: keyring.seal(
                        Purpose::RecentEntry,
                        token,
                        owner.as_bytes(),
                        metadata_key.as_bytes(),
                    )?,
                    retain: RECENT_WINDOW,
                })
            }
            None => None,
        };
        self.store
            .create(NewSecret {
                secret_id,
                receipt_id: ReceiptId::from_metadata_key(&metadata_key),
                record,
                receipt: sealed_receipt,
                created,
                secret_ttl: ttl,
                receipt_ttl,
                recent,
            })
            .await?;
        tracing::info!(
            ttl = body.ttl,
            passphrase = body.passphrase_required,
            "secret stored"
        );

        Ok(Receipt {
            custid: body.custid,
            receipt_url: self.receipt_url(&metadata_key),
            metadata_key,
            secret_key: Some(body.secret_key),
            ttl: body.ttl,
            metadata_ttl: seconds(receipt_ttl),
            secret_ttl: Some(body.ttl),
            state: ReceiptState::New,
            created,
            updated: created,
            received: None,
            burned: None,
            recipient: body.recipient,
            share_domain: String::new(),
            passphrase_required: body.passphrase_required,
        })
    }

    /// Returns a secret's value and destroys it. Of any number of concurrent reveals of one
    /// key, exactly one succeeds. A protected secret is checked BEFORE it is burned: a missing
    /// or wrong passphrase leaves it in place.
    #[tracing::instrument(name = "secrets.reveal", skip_all, fields(custid = caller.custid()))]
    pub async fn reveal(&self, caller: &Caller, input: RevealInput) -> Result<Revealed, Error> {
        self.master_key_fits().await?;
        let RevealInput { key, passphrase } = input;
        if !is_well_formed(&key) {
            return Err(Error::secret_not_found());
        }
        let passphrase = policy::given_passphrase(passphrase)?;
        let secret_id = SecretId::from_secret_key(&key);
        let record = match self.store.take_unprotected(&secret_id, now()).await? {
            Take::Missing => return Err(Error::secret_not_found()),
            Take::Taken(record) => self.open_record(&key, &secret_id, &record)?,
            Take::Protected(record) => {
                let OpenedRecord {
                    passphrase_hash,
                    value,
                } = self.open_record(&key, &secret_id, &record)?;
                self.check_passphrase(&secret_id, passphrase, passphrase_hash)
                    .await?;
                let taken = self
                    .store
                    .take(&secret_id, now())
                    .await?
                    // Someone else revealed it between our check and our take.
                    .ok_or_else(Error::secret_not_found)?;
                // The record taken is the one checked, already opened: decrypt again only if
                // it somehow is not.
                if taken == record {
                    OpenedRecord {
                        passphrase_hash: None,
                        value,
                    }
                } else {
                    self.open_record(&key, &secret_id, &taken)?
                }
            }
        };
        tracing::info!("secret revealed");
        Ok(Revealed {
            value: record.value,
            secret_key: key,
            share_domain: self.settings.public_url.clone(),
        })
    }

    /// Whether the secret `key` reveals is there and whether it needs a passphrase, without
    /// taking it: nothing is burned, no passphrase attempt is counted and the receipt stays as
    /// it was, so it may be asked any number of times. A secret that a reveal would not find
    /// (never shared, revealed, burned, expired) is the same [`Error::secret_not_found`], so
    /// the look-up tells nothing a reveal would not.
    #[tracing::instrument(name = "secrets.status", skip_all, fields(custid = caller.custid()))]
    pub async fn secret_status(&self, caller: &Caller, key: &str) -> Result<SecretStatus, Error> {
        self.master_key_fits().await?;
        if !is_well_formed(key) {
            return Err(Error::secret_not_found());
        }
        let status = self
            .store
            .inspect(&SecretId::from_secret_key(key))
            .await?
            .ok_or_else(Error::secret_not_found)?;
        Ok(SecretStatus {
            secret_key: key.to_owned(),
            state: ReceiptState::New,
            passphrase_required: status.protected,
            secret_ttl: seconds_left(status.ttl),
            end_to_end: status.end_to_end,
        })
    }

    /// The receipt read with `metadata_key`: a customer's only by that customer, an anonymous
    /// one by whoever holds the key.
    #[tracing::instrument(name = "secrets.receipt", skip_all, fields(custid = caller.custid()))]
    pub async fn receipt(&self, caller: &Caller, metadata_key: &str) -> Result<Receipt, Error> {
        self.master_key_fits().await?;
        let opened = self.open_receipt(metadata_key).await?;
        authorize(caller, &opened.body.custid)?;
        Ok(opened.receipt)
    }

    /// Destroys an unread secret through its receipt. A protected secret needs its passphrase.
    #[tracing::instrument(name = "secrets.burn", skip_all, fields(custid = caller.custid()))]
    pub async fn burn(&self, caller: &Caller, input: BurnInput) -> Result<Burned, Error> {
        self.master_key_fits().await?;
        let BurnInput {
            metadata_key,
            passphrase,
        } = input;
        let passphrase = policy::given_passphrase(passphrase)?;
        let OpenedReceipt { body, receipt } = self.open_receipt(&metadata_key).await?;
        authorize(caller, &body.custid)?;
        let already_gone = Error::secret_not_found;
        if receipt.state != ReceiptState::New {
            return Err(already_gone());
        }
        let secret_id = SecretId::from_secret_key(&body.secret_key);
        if body.passphrase_required {
            let record = self
                .store
                .peek(&secret_id)
                .await?
                .ok_or_else(already_gone)?;
            let opened = self.open_record(&body.secret_key, &secret_id, &record)?;
            self.check_passphrase(&secret_id, passphrase, opened.passphrase_hash)
                .await?;
        }
        if !self.store.burn(&secret_id, now()).await? {
            return Err(already_gone());
        }
        tracing::info!("secret burned");
        let receipt = self.open_receipt(&metadata_key).await?.receipt;
        Ok(Burned {
            receipt,
            secret_shortkey: body.secret_key.chars().take(8).collect(),
        })
    }

    /// The caller's receipts of the last 30 days, newest first (at most [`RECENT_LIMIT`]),
    /// without secret keys. Authenticated customers only.
    #[tracing::instrument(name = "secrets.recent", skip_all, fields(custid = caller.custid()))]
    pub async fn recent(&self, caller: &Caller) -> Result<Vec<Receipt>, Error> {
        self.master_key_fits().await?;
        let Some(token) = caller.token() else {
            return Err(Error::not_authorized(
                "recent secrets asked for without credentials",
            ));
        };
        let owner = OwnerId::from_custid(caller.custid());
        let since = now() - seconds(RECENT_WINDOW);
        let entries = self.store.recent(&owner, since, RECENT_LIMIT).await?;
        // An entry sealed under a token the customer no longer uses cannot be opened: skip it.
        let metadata_keys: Vec<String> = entries
            .iter()
            .filter_map(|entry| {
                let plain = self
                    .settings
                    .keyring
                    .open(Purpose::RecentEntry, token, owner.as_bytes(), entry)
                    .ok()?;
                String::from_utf8(plain.to_vec()).ok()
            })
            .collect();
        // Read together, the receipts share round trips on the store's multiplexed connection
        // instead of costing two each, one after the other.
        let opened = join_all(metadata_keys.iter().map(|key| self.open_receipt(key))).await;
        let mut receipts = Vec::with_capacity(opened.len());
        for opened in opened {
            match opened {
                Ok(opened) if opened.body.custid == caller.custid() => {
                    receipts.push(Receipt {
                        secret_key: None,
                        ..opened.receipt
                    });
                }
                // Someone else's receipt is never listed.
                Ok(_) => {}
                // The receipt expired since the entry was written.
                Err(err) if err.kind() == ErrorKind::NotFound => {}
                Err(err) => return Err(err),
            }
        }
        Ok(receipts)
    }

    async fn open_receipt(&self, metadata_key: &str) -> Result<OpenedReceipt, Error> {
        if !is_well_formed(metadata_key) {
            return Err(Error::receipt_not_found());
        }
        let stored = self
            .store
            .receipt(&ReceiptId::from_metadata_key(metadata_key))
            .await?
            .ok_or_else(Error::receipt_not_found)?;
        let plain = self.settings.keyring.open(
            Purpose::Receipt,
            metadata_key,
            stored.secret_id.as_bytes(),
            &stored.sealed,
        )?;
        let body = SealedReceiptFields::decode(&plain)?;
        let state = match (stored.state, stored.secret_ttl) {
            (StoredState::New, Some(_)) => ReceiptState::New,
            (StoredState::New, None) => ReceiptState::Expired,
            (StoredState::Received, _) => ReceiptState::Received,
            (StoredState::Burned, _) => ReceiptState::Burned,
        };
        let unread = state == ReceiptState::New;
        let receipt = Receipt {
            custid: body.custid.clone(),
            metadata_key: metadata_key.to_owned(),
            secret_key: unread.then(|| body.secret_key.clone()),
            ttl: body.ttl,
            metadata_ttl: seconds_left(stored.receipt_ttl),
            secret_ttl: stored.secret_ttl.filter(|_| unread).map(seconds_left),
            state,
            created: body.created,
            updated: stored.updated,
            received: stored.received,
            burned: stored.burned,
            recipient: body.recipient.clone(),
            share_domain: String::new(),
            receipt_url: self.receipt_url(metadata_key),
            passphrase_required: body.passphrase_required,
        };
        Ok(OpenedReceipt { body, receipt })
    }

    fn open_record(
        &self,
        key: &str,
        secret_id: &SecretId,
        record: &SecretRecord,
    ) -> Result<OpenedRecord, Error> {
        let plain = self.settings.keyring.open(
            Purpose::Record,
            key,
            secret_id.as_bytes(),
            &record.sealed,
        )?;
        decode_record_plaintext(&plain)
    }

    /// Verifies a passphrase against the stored hash. A wrong one counts as a failed attempt;
    /// the attempt that reaches the limit burns the secret.
    async fn check_passphrase(
        &self,
        secret_id: &SecretId,
        given: Option<Zeroizing<String>>,
        stored_hash: Option<String>,
    ) -> Result<(), Error> {
        let Some(stored_hash) = stored_hash else {
            return Err(Error::internal("protected record has no passphrase hash"));
        };
        let Some(given) = given else {
            return Err(Error::validation(
                "passphrase",
                "this secret is protected by a passphrase; send it as passphrase",
            ));
        };
        if passphrase::verify(given, stored_hash).await? {
            return Ok(());
        }
        let max_attempts = self.settings.policy.passphrase_rules().max_attempts;
        match self
            .store
            .fail_attempt(secret_id, max_attempts, now())
            .await?
        {
            FailedAttempt::Remaining(left) => {
                tracing::info!(attempts_left = left, "wrong passphrase");
                Err(Error::validation(
                    "passphrase",
                    format!(
                        "Incorrect passphrase; {left} attempt(s) left before the secret is burned"
                    ),
                ))
            }
            FailedAttempt::Burned => {
                tracing::info!(
                    max_attempts,
                    "wrong passphrase: attempts exhausted, secret burned"
                );
                Err(Error::validation(
                    "passphrase",
                    format!(
                        "Incorrect passphrase; after {max_attempts} failed attempts the secret has been burned"
                    ),
                ))
            }
            FailedAttempt::Missing => Err(Error::secret_not_found()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_layout_round_trips() {
        let plain = encode_record_plaintext(Some("$argon2id$hash"), "the value").expect("encode");
        let opened = decode_record_plaintext(&plain).expect("decode");
        assert_eq!(opened.passphrase_hash.as_deref(), Some("$argon2id$hash"));
        assert_eq!(opened.value.as_str(), "the value");
        let bare = decode_record_plaintext(&encode_record_plaintext(None, "v").expect("encode"))
            .expect("decode");
        assert_eq!((bare.passphrase_hash, bare.value.as_str()), (None, "v"));
    }

    #[test]
    fn truncated_records_are_errors_not_panics() {
        let plain = encode_record_plaintext(Some("hash"), "v").expect("encode");
        for len in 0..plain.len() - 1 {
            if len != 7 {
                // Length 7 is "hash" with an empty value: a valid record.
                assert!(
                    decode_record_plaintext(&plain[..len]).is_err(),
                    "length {len}"
                );
            }
        }
    }
}
