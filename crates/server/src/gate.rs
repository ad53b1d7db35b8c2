//! The gate every operation passes on either transport: who is calling (authentication), from
//! where (the client address, trusting `X-Forwarded-For` only from configured proxies), and
//! whether they are within their rate limit. REST and gRPC fill in an [`Origin`]; the gate
//! decides, so both transports admit and refuse exactly alike.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use burnbox_core::{Caller, Error, ErrorKind};
use burnbox_store::{RateDecision, RateKey, SecretStore};
use ipnet::IpNet;

use crate::auth::Authenticator;
use crate::metrics::Metrics;

/// Where a request came from, as its transport saw it.
#[derive(Debug, Default)]
pub struct Origin {
    /// The raw `Authorization` header (REST) or `authorization` metadata (gRPC).
    pub authorization: Option<String>,
    /// The address of the connection's peer.
    pub peer: Option<IpAddr>,
    /// The raw `X-Forwarded-For` value, honoured only when the peer is a trusted proxy.
    pub forwarded_for: Option<String>,
}

/// The kinds of operation that are rate limited separately.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActionClass {
    /// Storing secrets: share, generate.
    Create,
    /// Everything that reads: reveal, receipt, burn, recent, authcheck.
    Reveal,
}

impl ActionClass {
    fn name(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Reveal => "reveal",
        }
    }
}

/// Who may pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Customers, and anonymous callers unless the server disallows them.
    Open,
    /// Authenticated customers only.
    CustomersOnly,
}

/// Requests per minute per caller for each action class; 0 turns a limit off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimits {
    /// Limit on [`ActionClass::Create`].
    pub create_per_minute: u32,
    /// Limit on [`ActionClass::Reveal`].
    pub reveal_per_minute: u32,
}

const WINDOW: Duration = Duration::from_secs(60);

/// Admits callers: authentication, client address and rate limits.
pub struct Gate {
    auth: Arc<Authenticator>,
    store: Arc<dyn SecretStore>,
    limits: RateLimits,
    trusted_proxies: Vec<IpNet>,
    metrics: Arc<Metrics>,
}

impl Gate {
    /// A gate counting rate limits in `store` (so replicas sharing a Redis share the counts).
    pub fn new(
        auth: Arc<Authenticator>,
        store: Arc<dyn SecretStore>,
        limits: RateLimits,
        trusted_proxies: Vec<IpNet>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            auth,
            store,
            limits,
            trusted_proxies,
            metrics,
        }
    }

    /// Authenticates the request and counts it against its caller's limit for `class`.
    /// Failed authentication counts against the client address, so guessing tokens is
    /// rate limited too.
    pub async fn admit(
        &self,
        origin: &Origin,
        access: Access,
        class: ActionClass,
    ) -> Result<Caller, Error> {
        let authorization = origin.authorization.as_deref();
        let authenticated = match access {
            Access::Open => self.auth.caller(authorization),
            Access::CustomersOnly => self.auth.customer(authorization),
        };
        let counted_as = match &authenticated {
            Ok(caller) if !caller.is_anonymous() => format!("customer:{}", caller.custid()),
            Ok(_) | Err(_) => format!("address:{}", self.client_address(origin)),
        };
        self.check_rate(class, &counted_as).await?;
        authenticated
    }

    async fn check_rate(&self, class: ActionClass, counted_as: &str) -> Result<(), Error> {
        let limit = match class {
            ActionClass::Create => self.limits.create_per_minute,
            ActionClass::Reveal => self.limits.reveal_per_minute,
        };
        if limit == 0 {
            return Ok(());
        }
        let key = RateKey::new(class.name(), counted_as);
        match self.store.rate_limit(&key, limit, WINDOW).await? {
            RateDecision::Allowed => Ok(()),
            RateDecision::Limited { retry_after } => {
                tracing::info!(class = class.name(), "rate limited");
                self.metrics.rate_limited(class.name());
                Err(Error::new(
                    ErrorKind::RateLimited,
                    format!(
                        "too many {} requests: at most {limit} per minute; retry in {} s",
                        class.name(),
                        retry_after.as_secs().max(1)
                    ),
                )
                .with_retry_after(retry_after))
            }
        }
    }

    /// The client's address for rate limiting: the peer, or, when the peer is a trusted proxy,
    /// the nearest untrusted hop of `X-Forwarded-For`. IPv6 clients are grouped by /64, the
    /// block one subscriber usually holds.
    fn client_address(&self, origin: &Origin) -> String {
        let trusted =
            |address: &IpAddr| self.trusted_proxies.iter().any(|net| net.contains(address));
        let mut client = origin.peer;
        if let (Some(peer), Some(forwarded)) = (origin.peer, &origin.forwarded_for)
            && trusted(&peer)
        {
            let hops: Vec<IpAddr> = forwarded
                .split(',')
                .filter_map(|hop| hop.trim().parse().ok())
                .collect();
            // The rightmost hop not added by our own proxies is the client; if every hop is a
            // proxy of ours, the leftmost is the best we know.
            client = hops
                .iter()
                .rev()
                .find(|hop| !trusted(hop))
                .or(hops.first())
                .copied()
                .or(client);
        }
        match client {
            Some(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
                let segments = v6.segments();
                format!(
                    "{:x}:{:x}:{:x}:{:x}::/64",
                    segments[0], segments[1], segments[2], segments[3]
                )
            }
            Some(IpAddr::V6(v6)) => v6
                .to_ipv4_mapped()
                .map_or_else(String::new, |v4| v4.to_string()),
            Some(IpAddr::V4(v4)) => v4.to_string(),
            None => "unknown".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(trusted: &[&str]) -> Gate {
        Gate::new(
            Arc::new(Authenticator::load(None, true).expect("no tokens file")),
            Arc::new(burnbox_store::MemoryStore::new()),
            RateLimits {
                create_per_minute: 2,
                reveal_per_minute: 0,
            },
            trusted
                .iter()
                .map(|net| net.parse().expect("CIDR"))
                .collect(),
            Arc::new(Metrics::new()),
        )
    }

    fn origin(peer: &str, forwarded_for: Option<&str>) -> Origin {
        Origin {
            authorization: None,
            peer: Some(peer.parse().expect("address")),
            forwarded_for: forwarded_for.map(str::to_owned),
        }
    }

    #[test]
    fn forwarded_for_counts_only_behind_trusted_proxies() {
        let gate = gate(&["10.0.0.0/8"]);
        let behind_proxy = origin("10.1.2.3", Some("203.0.113.9, 10.9.9.9"));
        assert_eq!(gate.client_address(&behind_proxy), "203.0.113.9");
        let spoofed = origin("198.51.100.7", Some("203.0.113.9"));
        assert_eq!(gate.client_address(&spoofed), "198.51.100.7");
        let garbage = origin("10.1.2.3", Some("not an address"));
        assert_eq!(gate.client_address(&garbage), "10.1.2.3");
        let v6 = origin("2001:db8:1:2:3:4:5:6", None);
        assert_eq!(gate.client_address(&v6), "2001:db8:1:2::/64");
    }

    #[tokio::test]
    async fn limits_apply_per_class_and_caller() {
        let gate = gate(&[]);
        let alice_address = origin("192.0.2.1", None);
        let other_address = origin("192.0.2.2", None);
        for _ in 0..2 {
            gate.admit(&alice_address, Access::Open, ActionClass::Create)
                .await
                .expect("within limit");
        }
        let err = gate
            .admit(&alice_address, Access::Open, ActionClass::Create)
            .await
            .expect_err("limited");
        assert_eq!(err.kind(), ErrorKind::RateLimited);
        assert!(err.retry_after().is_some_and(|wait| wait <= WINDOW));
        gate.admit(&other_address, Access::Open, ActionClass::Create)
            .await
            .expect("another caller");
        for _ in 0..10 {
            gate.admit(&alice_address, Access::Open, ActionClass::Reveal)
                .await
                .expect("reveal unlimited");
        }
    }
}
