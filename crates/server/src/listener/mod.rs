//! Connection handling for the three listeners: a cap on the connections each serves at once,
//! accept errors logged and retried with backoff, and the caps fitted into the process's
//! open-file limit. Serving a connection is in [`http`] (REST and admin, HTTP/1.1) and [`grpc`].

pub mod grpc;
pub mod http;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::config::ConfigError;

/// Connections the admin listener serves at once. Probes and scrapes need few; a budget of its
/// own keeps `/livez` and `/readyz` answering while the public listeners are full, so
/// Kubernetes does not restart a pod that is shedding load.
pub const ADMIN_MAX_CONNECTIONS: usize = 64;

/// File descriptors kept for everything but client connections: the listeners, Redis
/// connections (one per cluster node), the OTLP exporter, the tokens file, the runtime's own.
pub const RESERVED_FILES: u64 = 256;

/// The fewest connections a public listener may be left with when the open-file limit forces
/// the caps down; below it the server refuses to start.
const MIN_PUBLIC_CONNECTIONS: usize = 16;

/// How many connections each listener serves at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionCaps {
    /// The REST listener.
    pub http: usize,
    /// The gRPC listener.
    pub grpc: usize,
    /// The admin listener.
    pub admin: usize,
}

/// Raises the open-file soft limit as far as the configured caps need (never above the hard
/// limit), then fits the caps into it: when the limit is too low for `max_connections` on both
/// public listeners, plus the admin budget and [`RESERVED_FILES`], the public caps are lowered
/// (with a warning) so that accepting never fails for want of a file descriptor. A limit too low
/// to leave each public listener [`MIN_PUBLIC_CONNECTIONS`] is a configuration error.
pub fn fit_caps_to_open_file_limit(max_connections: usize) -> Result<ConnectionCaps, ConfigError> {
    let wanted = ConnectionCaps {
        http: max_connections,
        grpc: max_connections,
        admin: ADMIN_MAX_CONNECTIONS,
    };
    let needed = files_needed(wanted);
    let limit = match rlimit::increase_nofile_limit(needed) {
        Ok(limit) => limit,
        Err(err) => {
            tracing::warn!(%err, "cannot read or raise the open-file limit; assuming it suffices");
            return Ok(wanted);
        }
    };
    let fitted = fit_caps(wanted, limit).map_err(|problem| ConfigError {
        setting: "BURNBOX_MAX_CONNECTIONS",
        problem,
    })?;
    if fitted != wanted {
        tracing::warn!(
            open_file_limit = limit,
            wanted = max_connections,
            http = fitted.http,
            grpc = fitted.grpc,
            "the open-file limit is too low for BURNBOX_MAX_CONNECTIONS: serving fewer connections \
             per listener; raise the limit (ulimit -n, LimitNOFILE) or lower the setting"
        );
    }
    Ok(fitted)
}

/// The file descriptors `caps` take, with the reserve.
fn files_needed(caps: ConnectionCaps) -> u64 {
    [caps.http, caps.grpc, caps.admin]
        .into_iter()
        .map(|cap| u64::try_from(cap).unwrap_or(u64::MAX))
        .fold(RESERVED_FILES, u64::saturating_add)
}

/// `wanted`, or the public caps shared out (evenly, as both want the same) over what `limit`
/// leaves after the admin budget and the reserve.
fn fit_caps(wanted: ConnectionCaps, limit: u64) -> Result<ConnectionCaps, String> {
    if files_needed(wanted) <= limit {
        return Ok(wanted);
    }
    let fixed = files_needed(ConnectionCaps {
        http: 0,
        grpc: 0,
        admin: wanted.admin,
    });
    let each = usize::try_from(limit.saturating_sub(fixed) / 2).unwrap_or(usize::MAX);
    if each < MIN_PUBLIC_CONNECTIONS {
        let minimum = fixed + 2 * MIN_PUBLIC_CONNECTIONS as u64;
        return Err(format!(
            "the open-file limit ({limit}) leaves no room for client connections; \
             raise it to at least {minimum} (ulimit -n, LimitNOFILE)"
        ));
    }
    Ok(ConnectionCaps {
        http: each.min(wanted.http),
        grpc: each.min(wanted.grpc),
        admin: wanted.admin,
    })
}

/// A connection accepted by a [`Listener`]: it occupies one of the listener's slots until
/// `slot` is dropped.
pub struct Accepted {
    /// The connection.
    pub stream: TcpStream,
    /// The client's address.
    pub peer: SocketAddr,
    /// The listener's slot this connection holds.
    pub slot: OwnedSemaphorePermit,
}

/// A bound TCP listener that serves at most a fixed number of connections at once.
pub struct Listener {
    tcp: TcpListener,
    slots: Arc<Semaphore>,
    name: &'static str,
    errors: AcceptErrors,
    full: Reminder,
}

impl Listener {
    /// `tcp`, serving at most `max_connections` at once; `name` (rest, grpc, admin) is for logs.
    pub fn new(name: &'static str, tcp: TcpListener, max_connections: usize) -> Self {
        Self {
            tcp,
            slots: Arc::new(Semaphore::new(max_connections)),
            name,
            errors: AcceptErrors::default(),
            full: Reminder::default(),
        }
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    /// The next connection, once a slot is free. At the cap nothing is accepted: new
    /// connections wait in the kernel's listen backlog until one closes. Accept errors (out of
    /// file descriptors, say) are logged, at most one line every few seconds, and retried after
    /// a pause that doubles up to a second: never in a tight loop.
    pub async fn accept(&mut self) -> Accepted {
        let slot = match self.slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                if self.full.due(Instant::now()) {
                    tracing::warn!(
                        listener = self.name,
                        "connection limit reached: new connections wait until one closes"
                    );
                }
                self.slots
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("a listener's slots are never closed")
            }
        };
        loop {
            match self.tcp.accept().await {
                Ok((stream, peer)) => {
                    if let Some(failures) = self.errors.succeeded() {
                        tracing::info!(listener = self.name, failures, "accepting again");
                    }
                    // Small writes (a gRPC answer's headers, data and trailers) go out at once
                    // instead of waiting ~40 ms for a delayed ACK.
                    if let Err(err) = stream.set_nodelay(true) {
                        tracing::debug!(listener = self.name, %err, "cannot set TCP_NODELAY");
                    }
                    return Accepted { stream, peer, slot };
                }
                // The client gave up before we accepted: nothing is wrong with the listener.
                Err(err) if is_connection_error(&err) => {
                    tracing::debug!(listener = self.name, %err, "connection lost before accept");
                }
                Err(err) => {
                    let failure = self.errors.failed(Instant::now());
                    if let Some(report) = failure.report {
                        tracing::warn!(
                            listener = self.name,
                            %err,
                            failures = report.failures,
                            pause_ms = failure.pause.as_millis(),
                            "cannot accept connections; retrying"
                        );
                    }
                    tokio::time::sleep(failure.pause).await;
                }
            }
        }
    }
}

/// Errors that concern one connection only, not the listener.
fn is_connection_error(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

/// The shortest pause after an accept error; it doubles with each further error.
const FIRST_PAUSE: Duration = Duration::from_millis(5);
/// The longest pause after an accept error.
const LONGEST_PAUSE: Duration = Duration::from_secs(1);
/// How often a persisting condition (accept errors, a full listener) is logged again.
const REPORT_EVERY: Duration = Duration::from_secs(10);

/// A run of accept errors: how long to pause, and when to say so.
#[derive(Debug, Default)]
struct AcceptErrors {
    /// Errors since the last successful accept.
    run: u64,
    /// Errors not yet reported.
    unreported: u64,
    pause: Duration,
    reminder: Reminder,
}

/// What to do after an accept error.
#[derive(Debug, PartialEq, Eq)]
struct Failure {
    pause: Duration,
    report: Option<Report>,
}

/// A log line due about accept errors.
#[derive(Debug, PartialEq, Eq)]
struct Report {
    /// Errors since the previous line (the first line: 1).
    failures: u64,
}

impl AcceptErrors {
    fn failed(&mut self, now: Instant) -> Failure {
        self.run += 1;
        self.unreported += 1;
        self.pause = if self.run == 1 {
            FIRST_PAUSE
        } else {
            (self.pause * 2).min(LONGEST_PAUSE)
        };
        let report = self.reminder.due(now).then(|| Report {
            failures: std::mem::take(&mut self.unreported),
        });
        Failure {
            pause: self.pause,
            report,
        }
    }

    /// Ends a run of errors; returns its length if there was one.
    fn succeeded(&mut self) -> Option<u64> {
        let run = std::mem::take(&mut self.run);
        self.unreported = 0;
        self.reminder = Reminder::default();
        (run > 0).then_some(run)
    }
}

/// Says when a persisting condition is due to be logged: the first time, then at most every
/// [`REPORT_EVERY`].
#[derive(Debug, Default)]
struct Reminder {
    last: Option<Instant>,
}

impl Reminder {
    fn due(&mut self, now: Instant) -> bool {
        let due = self
            .last
            .is_none_or(|last| now.duration_since(last) >= REPORT_EVERY);
        if due {
            self.last = Some(now);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(public: usize) -> ConnectionCaps {
        ConnectionCaps {
            http: public,
            grpc: public,
            admin: ADMIN_MAX_CONNECTIONS,
        }
    }

    #[test]
    fn caps_that_fit_are_kept() {
        let wanted = caps(1000);
        assert_eq!(fit_caps(wanted, files_needed(wanted)), Ok(wanted));
        assert_eq!(fit_caps(wanted, u64::MAX), Ok(wanted));
    }

    #[test]
    fn caps_over_the_limit_share_what_is_left() {
        // ulimit -n 1024: 1024 - 64 admin - 256 reserved = 704, half each.
        assert_eq!(fit_caps(caps(10_000), 1024), Ok(caps(352)));
        let fitted = fit_caps(caps(10_000), 20_000).expect("fits");
        assert!(files_needed(fitted) <= 20_000, "{fitted:?}");
        assert_eq!(fitted.admin, ADMIN_MAX_CONNECTIONS);
    }

    #[test]
    fn a_limit_without_room_for_clients_is_refused() {
        let problem = fit_caps(caps(10_000), 300).expect_err("too low");
        assert!(problem.contains("352"), "names the minimum: {problem}");
        assert!(fit_caps(caps(10_000), 352).is_ok());
    }

    #[test]
    fn accept_errors_back_off_doubling_up_to_a_second() {
        let mut errors = AcceptErrors::default();
        let now = Instant::now();
        let pauses: Vec<_> = (0..12).map(|_| errors.failed(now).pause).collect();
        assert_eq!(pauses[0], FIRST_PAUSE);
        assert_eq!(pauses[1], FIRST_PAUSE * 2);
        assert!(pauses.windows(2).all(|pair| pair[1] >= pair[0]));
        assert_eq!(pauses[11], LONGEST_PAUSE);
        assert_eq!(errors.succeeded(), Some(12));
        assert_eq!(
            errors.failed(now).pause,
            FIRST_PAUSE,
            "a new run starts over"
        );
    }

    #[test]
    fn accept_errors_are_reported_once_per_interval_with_a_count() {
        let mut errors = AcceptErrors::default();
        let start = Instant::now();
        assert_eq!(
            errors.failed(start).report,
            Some(Report { failures: 1 }),
            "the first error is logged"
        );
        for offset in 1..100 {
            let now = start + Duration::from_millis(offset * 50);
            assert_eq!(errors.failed(now).report, None, "at {offset}");
        }
        let later = start + REPORT_EVERY;
        assert_eq!(
            errors.failed(later).report,
            Some(Report { failures: 100 }),
            "then one line counting the errors since"
        );
        assert_eq!(errors.succeeded(), Some(101));
        assert_eq!(
            errors.failed(later).report,
            Some(Report { failures: 1 }),
            "a new run is logged at once"
        );
    }
}
