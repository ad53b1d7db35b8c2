//! The handler's inputs and outputs, independent of any wire format.

use zeroize::Zeroizing;

/// Who is calling. Anonymous callers own their secrets as customer `anon`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    custid: Option<String>,
}

/// The customer id recorded for secrets shared without credentials.
pub const ANONYMOUS_CUSTID: &str = "anon";

impl Caller {
    /// A caller without credentials.
    pub fn anonymous() -> Self {
        Self { custid: None }
    }

    /// An authenticated customer.
    pub fn customer(custid: impl Into<String>) -> Self {
        Self {
            custid: Some(custid.into()),
        }
    }

    /// The customer id to record: the customer's, or `anon`.
    pub fn custid(&self) -> &str {
        self.custid.as_deref().unwrap_or(ANONYMOUS_CUSTID)
    }
}

/// A share request as it arrives from a transport, not yet validated.
#[derive(Default)]
pub struct ShareInput {
    /// The value to keep secret.
    pub secret: Option<String>,
    /// A passphrase the recipient must give to reveal it (empty means none).
    pub passphrase: Option<String>,
    /// Seconds until the secret expires unread (default from the policy).
    pub ttl: Option<i64>,
    /// Addresses to deliver the link to (not supported: must be empty).
    pub recipient: Vec<String>,
    /// The domain links are shared on (only the configured one is accepted).
    pub share_domain: Option<String>,
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
    /// The domain links are shared on.
    pub share_domain: String,
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
    /// Delivery addresses (always empty: delivery is not supported).
    pub recipient: Vec<String>,
    /// The domain links are shared on.
    pub share_domain: String,
    /// Whether revealing needs a passphrase.
    pub passphrase_required: bool,
}
