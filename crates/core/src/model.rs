//! The handler's inputs and outputs, independent of any wire format.

use zeroize::Zeroizing;

/// Who is calling: anonymous, or a customer authenticated by an API token.
#[derive(Clone, PartialEq, Eq)]
pub struct Caller {
    customer: Option<Customer>,
}

#[derive(Clone, PartialEq, Eq)]
struct Customer {
    custid: String,
    token: Zeroizing<String>,
}

/// The customer id recorded for secrets shared without credentials.
pub const ANONYMOUS_CUSTID: &str = "anon";

impl Caller {
    /// A caller without credentials.
    pub fn anonymous() -> Self {
        Self { customer: None }
    }

    /// A customer whose credentials the transport has verified. `token` is the API token they
    /// presented: besides authenticating, it seals the customer's index of recent secrets, so
    /// that index opens only for a request carrying the token.
    pub fn customer(custid: impl Into<String>, token: impl Into<String>) -> Self {
        Self {
            customer: Some(Customer {
                custid: custid.into(),
                token: Zeroizing::new(token.into()),
            }),
        }
    }

    /// The customer id to record: the customer's, or `anon`.
    pub fn custid(&self) -> &str {
        self.customer
            .as_ref()
            .map_or(ANONYMOUS_CUSTID, |customer| customer.custid.as_str())
    }

    /// Whether the caller presented no credentials.
    pub fn is_anonymous(&self) -> bool {
        self.customer.is_none()
    }

    pub(crate) fn token(&self) -> Option<&str> {
        self.customer
            .as_ref()
            .map(|customer| customer.token.as_str())
    }
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        write!(f, "Caller({})", self.custid())
    }
}

/// A share request as it arrives from a transport, not yet validated.
#[derive(Default)]
pub struct ShareInput {
    /// The value to keep secret.
    pub secret: Option<String>,
    /// A passphrase the recipient must give to reveal it (empty means none).
    pub passphrase: Option<String>,
    /// Seconds until the secret expires unread (default from the policy; clamped into the
    /// policy's range).
    pub ttl: Option<i64>,
    /// The address to email the link to: at most one, for customers only, and only when the
    /// server sends mail (empty strings are ignored).
    pub recipient: Vec<String>,
    /// The domain links are shared on: empty, or this server's own host or public URL
    /// (custom domains are not supported).
    pub share_domain: Option<String>,
}

/// A generate request as it arrives from a transport: the server picks the secret.
#[derive(Default)]
pub struct GenerateInput {
    /// A passphrase the recipient must give to reveal it (empty means none).
    pub passphrase: Option<String>,
    /// Seconds until the secret expires unread (default from the policy; clamped into the
    /// policy's range).
    pub ttl: Option<i64>,
    /// Length of the generated password (default 12).
    pub length: Option<i64>,
}

/// A generated secret: its receipt and the password, shown in this answer only.
pub struct Generated {
    /// The receipt, as for a shared secret.
    pub receipt: Receipt,
    /// The generated password (zeroized when dropped).
    pub value: Zeroizing<String>,
}

/// A burn request as it arrives from a transport.
pub struct BurnInput {
    /// The receipt's key.
    pub metadata_key: String,
    /// The passphrase, for a protected secret.
    pub passphrase: Option<String>,
}

/// A burned secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Burned {
    /// The receipt, now in state burned.
    pub receipt: Receipt,
    /// The first 8 characters of the burned secret's key, so the creator can tell which it was.
    pub secret_shortkey: String,
}

/// A reveal request as it arrives from a transport.
pub struct RevealInput {
    /// The secret key from the link.
    pub key: String,
    /// The passphrase, for protected secrets.
    pub passphrase: Option<String>,
}

/// A revealed secret. The secret no longer exists in the store.
pub struct Revealed {
    /// The secret value (zeroized when dropped).
    pub value: Zeroizing<String>,
    /// The key it was revealed with.
    pub secret_key: String,
    /// The base URL links are shared under, with its scheme (`https://burnbox.example`), as
    /// Onetime Secret's reveal answer has it.
    pub share_domain: String,
}

/// What a secret's recipient may know before revealing it, from a look-up that takes nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretStatus {
    /// The key it was looked up with.
    pub secret_key: String,
    /// Always [`ReceiptState::New`]: a secret in any other state is not found, as by a reveal.
    pub state: ReceiptState,
    /// Whether revealing needs a passphrase.
    pub passphrase_required: bool,
    /// Seconds left before the secret expires.
    pub secret_ttl: i64,
    /// Whether the value is end-to-end encrypted ([`crate::end_to_end`]).
    pub end_to_end: bool,
}

/// Where a secret is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReceiptState {
    /// Shared, unread.
    New,
    /// Revealed.
    Received,
    /// Destroyed unread.
    Burned,
    /// Expired unread.
    Expired,
}

impl ReceiptState {
    /// The wire name (`new`, `received`, `burned`, `expired`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Received => "received",
            Self::Burned => "burned",
            Self::Expired => "expired",
        }
    }
}

/// What a secret's creator may know about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// The owner's customer id (`anon` for anonymous secrets).
    pub custid: String,
    /// The key that reads this receipt.
    pub metadata_key: String,
    /// The key that reveals the secret; only while it is unread.
    pub secret_key: Option<String>,
    /// The secret's lifetime as shared, in seconds.
    pub ttl: i64,
    /// Seconds left before the receipt expires.
    pub metadata_ttl: i64,
    /// Seconds left before the secret expires; only while it is unread.
    pub secret_ttl: Option<i64>,
    /// Lifecycle state.
    pub state: ReceiptState,
    /// Unix seconds of creation.
    pub created: i64,
    /// Unix seconds of the last state change.
    pub updated: i64,
    /// Unix seconds of the reveal.
    pub received: Option<i64>,
    /// Unix seconds of the burn.
    pub burned: Option<i64>,
    /// The address the link was emailed to, masked (`al***@e***.com`); empty when none was.
    pub recipient: Vec<String>,
    /// The custom domain links are shared on: always empty, as in Onetime Secret's receipts
    /// for a server's own domain (custom domains are not supported).
    pub share_domain: String,
    /// Whether revealing needs a passphrase.
    pub passphrase_required: bool,
    /// The receipt page's URL (Onetime Secret's `metadata_url` / `receipt_url`).
    pub receipt_url: String,
}
