//! The gate every operation passes on either transport: who is calling (authentication), from
//! where (the client address, trusting `X-Forwarded-For` only from configured proxies), and
//! whether they are within their rate limit. REST and gRPC fill in an [`Origin`]; the gate
//! decides, so both transports admit and refuse exactly alike.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use burnbox_core::{Caller, Error, ErrorKind};
use burnbox_store::{RateDecision, RateKey, RateLimiter};
use ipnet::IpNet;

use crate::allowance::{Allowances, Counted};
use crate::auth::Authenticator;
use crate::metrics::Metrics;
use crate::operations::{Access, ActionClass, Operation};

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

/// What callers without credentials may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnonymousAccess {
    /// Reveal and look up secrets, read and burn anonymous receipts (`BURNBOX_ALLOW_ANONYMOUS`).
    pub read: bool,
    /// Share and generate (`BURNBOX_ALLOW_ANONYMOUS_CREATE`).
    pub create: bool,
}

impl AnonymousAccess {
    /// Anonymous callers may do everything that does not need a customer.
    pub const OPEN: Self = Self {
        read: true,
        create: true,
    };

    /// Whether an anonymous caller passes `access`; if not, why (for the log: the 401 says
    /// only `Not authorized`).
    fn check(self, access: Access) -> Result<(), &'static str> {
        match access {
            Access::Anyone => Ok(()),
            Access::Read if self.read => Ok(()),
            Access::Read => Err("no credentials, and anonymous use is off"),
            Access::Create if self.create => Ok(()),
            Access::Create => Err("no credentials, and anonymous creation is off"),
            Access::CustomersOnly => Err("no credentials, and only customers may do this"),
        }
    }
}

/// Requests per minute per caller for each action class; 0 turns a limit off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClassLimits {
    /// Limit on [`ActionClass::Create`].
    pub create_per_minute: u32,
    /// Limit on [`ActionClass::Read`].
    pub reveal_per_minute: u32,
}

impl ClassLimits {
    fn of(self, class: ActionClass) -> u32 {
        match class {
            ActionClass::Create => self.create_per_minute,
            ActionClass::Read => self.reveal_per_minute,
        }
    }
}

/// The limits of the two kinds of caller: those without valid credentials, counted by client
/// address, and authenticated customers, counted by customer id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimits {
    /// Per client address, for anonymous callers and failed authentication.
    pub anonymous: ClassLimits,
    /// Per customer.
    pub customer: ClassLimits,
}

const WINDOW: Duration = Duration::from_secs(60);

/// Admits callers: authentication, access, client address and rate limits.
pub struct Gate {
    auth: Arc<Authenticator>,
    anonymous: AnonymousAccess,
    allowances: Allowances<CountedRequests>,
    limits: RateLimits,
    trusted_proxies: Vec<IpNet>,
    metrics: Arc<Metrics>,
}

impl Gate {
    /// What callers without credentials may do here.
    pub fn anonymous_access(&self) -> AnonymousAccess {
        self.anonymous
    }

    /// A gate counting rate limits in `rate_limiter` (the store's, so replicas sharing a Redis
    /// share the counts), through this replica's [`Allowances`].
    pub fn new(
        auth: Arc<Authenticator>,
        anonymous: AnonymousAccess,
        rate_limiter: Arc<dyn RateLimiter>,
        limits: RateLimits,
        trusted_proxies: Vec<IpNet>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            auth,
            anonymous,
            allowances: Allowances::new(rate_limiter),
            limits,
            trusted_proxies,
            metrics,
        }
    }

    /// Authenticates the request, checks that its caller may call `operation`, and counts it
    /// against the caller's limit for the operation's class (both from [`Operation::row`]). Refused and failed authentication
    /// count against the client address, so guessing tokens is rate limited too.
    pub async fn admit(&self, origin: &Origin, operation: Operation) -> Result<Caller, Error> {
        // Every operation passes here first: from now on the request's log lines name it.
        crate::request_scope::name_operation(operation.name());
        let authenticated = match self.auth.identify(origin.authorization.as_deref()) {
            Ok(Some(customer)) => Ok(customer),
            Ok(None) => self
                .anonymous
                .check(operation.access())
                .map(|()| Caller::anonymous())
                .map_err(Error::not_authorized),
            Err(wrong) => Err(wrong),
        };
        let Some(class) = operation.class() else {
            return authenticated;
        };
        let customer = match &authenticated {
            Ok(caller) if !caller.is_anonymous() => Some(caller),
            Ok(_) | Err(_) => None,
        };
        let limit = match customer {
            Some(_) => self.limits.customer.of(class),
            None => self.limits.anonymous.of(class),
        };
        // No limit: nothing to count, and no name to build for the count.
        if limit == 0 {
            return authenticated;
        }
        let counted_as = match customer {
            Some(caller) => CountedAs::Customer(caller.custid().to_owned()),
            None => CountedAs::Address(self.client_address(origin)),
        };
        self.check_rate(CountedRequests { class, counted_as }, limit)
            .await?;
        authenticated
    }

    /// Counts a request against `limit` (not 0).
    async fn check_rate(&self, requests: CountedRequests, limit: u32) -> Result<(), Error> {
        let class = requests.class;
        match self.allowances.admit(&requests, limit, WINDOW).await? {
            RateDecision::Allowed { .. } => Ok(()),
            RateDecision::Limited { retry_after } => {
                tracing::info!(class = class.name(), "rate limited");
                self.metrics.rate_limited(class.name());
                Err(
                    Error::new(ErrorKind::RateLimited, burnbox_core::RATE_LIMITED)
                        .with_retry_after(retry_after),
                )
            }
        }
    }

    /// The client's address for rate limiting: the peer, or, when the peer is a trusted proxy,
    /// the nearest untrusted hop of `X-Forwarded-For`, walking from the right. A hop that is not
    /// an address (`unknown`, an obfuscated name, garbage) ends the walk at the trusted hop to its
    /// right: nothing a caller writes further left can choose whom a request counts against.
    /// IPv6 clients are grouped by /64, the block one subscriber usually holds.
    fn client_address(&self, origin: &Origin) -> ClientAddress {
        let trusted =
            |address: &IpAddr| self.trusted_proxies.iter().any(|net| net.contains(address));
        // A dual-stack listener sees IPv4 peers as `::ffff:a.b.c.d`; CIDRs and hops are compared
        // in their plain form.
        let peer = origin.peer.map(|peer| peer.to_canonical());
        let mut client = peer;
        if let (Some(peer), Some(forwarded)) = (peer, &origin.forwarded_for)
            && trusted(&peer)
        {
            // Empty list elements are allowed by HTTP's list syntax and mean nothing.
            let hops = forwarded
                .rsplit(',')
                .map(str::trim)
                .filter(|hop| !hop.is_empty());
            for hop in hops {
                let Some(address) = parse_hop(hop).map(|address| address.to_canonical()) else {
                    break;
                };
                client = Some(address);
                if !trusted(&address) {
                    break;
                }
            }
        }
        // Canonical by now: an IPv6 client is a real IPv6 one.
        match client {
            Some(IpAddr::V6(v6)) => {
                let segments = v6.segments();
                ClientAddress::V6Block([segments[0], segments[1], segments[2], segments[3]])
            }
            Some(IpAddr::V4(v4)) => ClientAddress::V4(v4),
            None => ClientAddress::Unknown,
        }
    }
}

/// A client address as rate limits count it. No `Debug`: what names a caller stays out of logs.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum ClientAddress {
    V4(Ipv4Addr),
    /// The first 64 bits of an IPv6 address.
    V6Block([u16; 4]),
    /// No peer address (not seen on TCP listeners).
    Unknown,
}

impl fmt::Display for ClientAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::V4(v4) => v4.fmt(f),
            Self::V6Block([a, b, c, d]) => write!(f, "{a:x}:{b:x}:{c:x}:{d:x}::/64"),
            Self::Unknown => f.write_str("unknown"),
        }
    }
}

/// Whom a request counts against: an authenticated customer, or the client address of anyone
/// else.
#[derive(Clone, PartialEq, Eq, Hash)]
enum CountedAs {
    Customer(String),
    Address(ClientAddress),
}

/// One caller's requests of one action class: the key of a rate limit on this replica, hashed
/// per request without formatting or SHA-256 (see [`crate::allowance`]).
#[derive(Clone, PartialEq, Eq, Hash)]
struct CountedRequests {
    class: ActionClass,
    counted_as: CountedAs,
}

impl Counted for CountedRequests {
    fn rate_key(&self) -> RateKey {
        // These names are the limiter's keys in a shared store: replicas of earlier versions
        // count the same caller under the same name.
        let caller = match &self.counted_as {
            CountedAs::Customer(custid) => format!("customer:{custid}"),
            CountedAs::Address(address) => format!("address:{address}"),
        };
        RateKey::new(self.class.name(), &caller)
    }
}

/// One `X-Forwarded-For` hop as proxies write it: `192.0.2.1`, `192.0.2.1:5555`, `2001:db8::1`,
/// `[2001:db8::1]` or `[2001:db8::1]:443`. Anything else (`unknown`, `_hidden`) is `None`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(address) = hop.parse() {
        return Some(address);
    }
    if let Some(bracketed) = hop.strip_prefix('[') {
        let (v6, after) = bracketed.split_once(']')?;
        let port_ok = after.is_empty() || after.strip_prefix(':').is_some_and(is_port);
        return port_ok.then(|| v6.parse().ok()).flatten();
    }
    let (v4, port) = hop.split_once(':')?;
    is_port(port)
        .then(|| v4.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4))
        .flatten()
}

fn is_port(text: &str) -> bool {
    text.parse::<u16>().is_ok()
}

/// Every line of a repeated header (or metadata key), in order, as one comma-separated list, as
/// HTTP defines their meaning. A line that is not text becomes a hop that parses as no address,
/// so the walk stops there rather than skipping it. `None` when there is no line.
pub fn join_header_lines<'a>(lines: impl Iterator<Item = &'a [u8]>) -> Option<String> {
    let mut joined: Option<String> = None;
    for line in lines {
        let text = std::str::from_utf8(line).unwrap_or("\u{FFFD}");
        match &mut joined {
            Some(joined) => {
                joined.push(',');
                joined.push_str(text);
            }
            None => joined = Some(text.to_owned()),
        }
    }
    joined
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operations::OPERATIONS;

    fn gate(trusted: &[&str]) -> Gate {
        gate_with(trusted, AnonymousAccess::OPEN)
    }

    fn gate_with(trusted: &[&str], anonymous: AnonymousAccess) -> Gate {
        gate_with_limits(trusted, anonymous, 2, 0)
    }

    /// A gate limiting anonymous callers to `create` and `reveal` a minute (customers unlimited).
    fn gate_with_limits(
        trusted: &[&str],
        anonymous: AnonymousAccess,
        create: u32,
        reveal: u32,
    ) -> Gate {
        Gate::new(
            Arc::new(Authenticator::load(None).expect("no tokens file")),
            anonymous,
            Arc::new(burnbox_store::MemoryStore::new()),
            RateLimits {
                anonymous: ClassLimits {
                    create_per_minute: create,
                    reveal_per_minute: reveal,
                },
                customer: ClassLimits {
                    create_per_minute: 0,
                    reveal_per_minute: 0,
                },
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
    fn forwarded_for_walks_from_the_right_and_stops_at_what_it_cannot_read() {
        let proxies = ["10.0.0.0/8", "2001:db8:ffff::/48"];
        // (peer, X-Forwarded-For lines, counted as)
        let table: &[(&str, &[&str], &str)] = &[
            ("10.0.0.1", &["203.0.113.9"], "203.0.113.9"),
            // The attacker's own hop on the left never counts.
            ("10.0.0.1", &["198.51.100.66, 203.0.113.9"], "203.0.113.9"),
            // A second header line continues the list; its last hop is the nearest.
            ("10.0.0.1", &["198.51.100.66", "203.0.113.9"], "203.0.113.9"),
            (
                "10.0.0.1",
                &["198.51.100.66", "203.0.113.9, 10.0.0.2"],
                "203.0.113.9",
            ),
            // Hops with ports, as some proxies append them.
            (
                "10.0.0.1",
                &["198.51.100.66, 203.0.113.9:5555"],
                "203.0.113.9",
            ),
            (
                "10.0.0.1",
                &["198.51.100.66, 10.0.0.1:5555"],
                "198.51.100.66",
            ),
            (
                "10.0.0.1",
                &["198.51.100.66, [2001:db8::1]:443"],
                "2001:db8:0:0::/64",
            ),
            (
                "10.0.0.1",
                &["198.51.100.66, [2001:db8::1]"],
                "2001:db8:0:0::/64",
            ),
            (
                "10.0.0.1",
                &["198.51.100.66, 2001:db8::1"],
                "2001:db8:0:0::/64",
            ),
            // An unreadable hop ends the walk at the trusted hop to its right.
            ("10.0.0.1", &["198.51.100.66, unknown"], "10.0.0.1"),
            (
                "10.0.0.1",
                &["198.51.100.66, unknown, 10.0.0.7"],
                "10.0.0.7",
            ),
            (
                "10.0.0.1",
                &["198.51.100.66, _hidden, 10.0.0.7:80"],
                "10.0.0.7",
            ),
            (
                "10.0.0.1",
                &["198.51.100.66, 203.0.113.9:99999"],
                "10.0.0.1",
            ),
            ("10.0.0.1", &["198.51.100.66, [2001:db8::1]x"], "10.0.0.1"),
            ("10.0.0.1", &["198.51.100.66", "garbage"], "10.0.0.1"),
            // Empty list elements mean nothing.
            (
                "10.0.0.1",
                &["198.51.100.66, , 203.0.113.9,"],
                "203.0.113.9",
            ),
            // IPv4 peers and hops as a dual-stack listener or proxy writes them.
            (
                "::ffff:10.0.0.1",
                &["198.51.100.66, 203.0.113.9"],
                "203.0.113.9",
            ),
            (
                "10.0.0.1",
                &["198.51.100.66, ::ffff:203.0.113.9"],
                "203.0.113.9",
            ),
            (
                "10.0.0.1",
                &["198.51.100.66, 203.0.113.9, ::ffff:10.0.0.7"],
                "203.0.113.9",
            ),
            // Only our proxies: the leftmost is the best we know.
            ("10.0.0.1", &["10.0.0.9, 10.0.0.8"], "10.0.0.9"),
            (
                "2001:db8:ffff::1",
                &["[2001:db8:ffff::2]:1, 203.0.113.9"],
                "203.0.113.9",
            ),
            // Not from a trusted proxy: the header is the caller's own words.
            ("198.51.100.7", &["203.0.113.9"], "198.51.100.7"),
            ("10.0.0.1", &[], "10.0.0.1"),
        ];
        let gate = gate(&proxies);
        for (peer, lines, expected) in table {
            let origin = Origin {
                authorization: None,
                peer: Some(peer.parse().expect("address")),
                forwarded_for: join_header_lines(lines.iter().map(|line| line.as_bytes())),
            };
            assert_eq!(
                gate.client_address(&origin).to_string(),
                *expected,
                "{peer} {lines:?}"
            );
        }
    }

    #[test]
    fn header_lines_join_in_order_and_bytes_that_are_not_text_stop_the_walk() {
        assert_eq!(join_header_lines(std::iter::empty()), None);
        assert_eq!(
            join_header_lines([&b"a, b"[..], b"c"].into_iter()).as_deref(),
            Some("a, b,c")
        );
        let gate = gate(&["10.0.0.0/8"]);
        let origin = Origin {
            authorization: None,
            peer: Some("10.0.0.1".parse().expect("address")),
            forwarded_for: join_header_lines([&b"203.0.113.9, 10.0.0.5"[..], b"\xff"].into_iter()),
        };
        assert_eq!(gate.client_address(&origin).to_string(), "10.0.0.1");
    }

    #[test]
    fn forwarded_for_counts_only_behind_trusted_proxies() {
        let gate = gate(&["10.0.0.0/8"]);
        let behind_proxy = origin("10.1.2.3", Some("203.0.113.9, 10.9.9.9"));
        assert_eq!(
            gate.client_address(&behind_proxy).to_string(),
            "203.0.113.9"
        );
        let spoofed = origin("198.51.100.7", Some("203.0.113.9"));
        assert_eq!(gate.client_address(&spoofed).to_string(), "198.51.100.7");
        let garbage = origin("10.1.2.3", Some("not an address"));
        assert_eq!(gate.client_address(&garbage).to_string(), "10.1.2.3");
        let v6 = origin("2001:db8:1:2:3:4:5:6", None);
        assert_eq!(gate.client_address(&v6).to_string(), "2001:db8:1:2::/64");
    }

    #[test]
    fn limits_are_counted_in_the_store_under_the_names_earlier_versions_used() {
        let counted = |class, counted_as| CountedRequests { class, counted_as }.rate_key();
        let v4 = ClientAddress::V4(Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(
            counted(ActionClass::Read, CountedAs::Address(v4)),
            RateKey::new("reveal", "address:192.0.2.1")
        );
        let v6 = ClientAddress::V6Block([0x2001, 0xdb8, 0, 0xa]);
        assert_eq!(
            counted(ActionClass::Create, CountedAs::Address(v6)),
            RateKey::new("create", "address:2001:db8:0:a::/64")
        );
        assert_eq!(
            counted(ActionClass::Read, CountedAs::Customer("alice".into())),
            RateKey::new("reveal", "customer:alice")
        );
        assert_eq!(
            counted(
                ActionClass::Read,
                CountedAs::Address(ClientAddress::Unknown)
            ),
            RateKey::new("reveal", "address:unknown")
        );
    }

    #[tokio::test]
    async fn limits_apply_per_class_and_caller() {
        let gate = gate(&[]);
        let alice_address = origin("192.0.2.1", None);
        let other_address = origin("192.0.2.2", None);
        for _ in 0..2 {
            gate.admit(&alice_address, Operation::Share)
                .await
                .expect("within limit");
        }
        let err = gate
            .admit(&alice_address, Operation::Generate)
            .await
            .expect_err("limited");
        assert_eq!(err.kind(), ErrorKind::RateLimited);
        assert!(err.retry_after().is_some_and(|wait| wait <= WINDOW));
        gate.admit(&other_address, Operation::Share)
            .await
            .expect("another caller");
        for _ in 0..10 {
            gate.admit(&alice_address, Operation::Reveal)
                .await
                .expect("reveal unlimited");
        }
    }

    #[tokio::test]
    async fn leased_limits_count_a_v6_block_together_and_each_class_apart() {
        // 128 a minute is leased in batches (of up to 2): the allowances are keyed per block.
        let gate = gate_with_limits(&[], AnonymousAccess::OPEN, 2, 128);
        let block = ["2001:db8:1:2::1", "2001:db8:1:2::2"].map(|peer| origin(peer, None));
        for request in 0..128 {
            gate.admit(&block[request % 2], Operation::Reveal)
                .await
                .expect("within the block's limit");
        }
        let err = gate
            .admit(&origin("2001:db8:1:2::3", None), Operation::Reveal)
            .await
            .expect_err("the block has spent its limit");
        assert_eq!(err.kind(), ErrorKind::RateLimited);
        gate.admit(&origin("2001:db8:1:3::1", None), Operation::Reveal)
            .await
            .expect("another block");
        gate.admit(&block[0], Operation::Share)
            .await
            .expect("another class");
    }

    #[tokio::test]
    async fn anonymous_callers_pass_by_each_operations_rule() {
        for read in [true, false] {
            for create in [true, false] {
                let gate = gate_with(&[], AnonymousAccess { read, create });
                for operation in OPERATIONS.iter().map(|row| row.operation) {
                    let expected = match operation {
                        Operation::Status => true,
                        Operation::Authcheck => false,
                        Operation::Share | Operation::Generate => create,
                        Operation::Reveal
                        | Operation::SecretStatus
                        | Operation::Receipt
                        | Operation::Burn
                        | Operation::Recent => read,
                    };
                    let admitted = gate.admit(&origin("192.0.2.1", None), operation).await;
                    match admitted {
                        Ok(caller) => {
                            assert!(expected, "{operation:?} read={read} create={create}");
                            assert!(caller.is_anonymous());
                        }
                        Err(err) => {
                            assert!(!expected, "{operation:?} read={read} create={create}");
                            assert_eq!(err.kind(), ErrorKind::Unauthorized);
                        }
                    }
                }
            }
        }
    }
}
