//! Serving a poem endpoint over HTTP/1.1 with hyper, connection by connection, under deadlines:
//!
//! - **header read**: a request's line and headers must arrive within the header-read timeout,
//!   counted from the connection's start, or on a kept-alive connection from the first byte of
//!   the next request (slowloris clients are cut off);
//! - **body read**: a request body must arrive within the body-read timeout once its headers
//!   have; a late one is answered 400 BadRequest and the connection closed;
//! - **idle**: a kept-alive connection waiting for its next request is closed after the idle
//!   timeout, counted from the moment the previous answer was written.
//!
//! A connection whose deadline passes is closed without an answer (there is no request to
//! answer). hyper answers an unparseable request itself, with a bare 400, 414 or 431 and no
//! body; [`ConnectionIo`] replaces that answer with the documented error body and headers.
//! On shutdown, idle connections close at once and requests in flight may finish within the
//! grace period.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use burnbox_core::Error;
use bytes::Bytes;
use http_body::{Body as _, Frame, SizeHint};
use http_body_util::combinators::BoxBody;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use poem::endpoint::DynEndpoint;
use poem::web::{LocalAddr, RemoteAddr};
use poem::{Addr, Endpoint, Response};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Accepted, Listener};
use crate::config::Config;
use crate::rest::BodyTimeout;

/// The most headers a request may have (hyper's default, made explicit).
pub const MAX_HEADERS: usize = 100;
/// The most bytes a request line and headers may take together.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// The largest read buffer a connection keeps; it bounds what a client sending unfinished
/// headers costs (hyper's default, about 400 KiB, let 1,000 such clients take ~500 MiB).
const MAX_BUFFER_BYTES: usize = 2 * MAX_HEADER_BYTES;
/// How long a connection the server closes keeps reading (and discarding) what the client still
/// sends, such as the rest of a refused or late request: closing a socket with unread data
/// resets the connection, and the client may lose the answer it was sent.
const LINGER: Duration = Duration::from_secs(2);
/// The most a closing connection reads and discards while lingering.
const LINGER_BYTES: usize = 1024 * 1024;

/// The deadlines of an HTTP/1.1 connection (see the module documentation).
#[derive(Clone, Copy, Debug)]
pub struct HttpTimeouts {
    /// For a request's line and headers.
    pub header_read: Duration,
    /// For a request's body, once its headers have arrived.
    pub body_read: Duration,
    /// For the next request on a kept-alive connection.
    pub idle: Duration,
}

impl HttpTimeouts {
    /// The deadlines `config` sets for REST and admin connections.
    pub fn of(config: &Config) -> Self {
        Self {
            header_read: Duration::from_secs(config.header_read_timeout_seconds),
            body_read: Duration::from_secs(config.body_read_timeout_seconds),
            idle: Duration::from_secs(config.idle_timeout_seconds),
        }
    }
}

/// An endpoint as the server calls it.
pub type SharedEndpoint = Arc<dyn DynEndpoint<Output = Response>>;

/// Serves `endpoint` on `listener` until `stop` is cancelled; then stops accepting, lets the
/// requests in flight finish for up to `grace`, and closes whatever is still open.
pub async fn serve(
    mut listener: Listener,
    endpoint: SharedEndpoint,
    timeouts: HttpTimeouts,
    stop: CancellationToken,
    grace: Duration,
) {
    let name = listener.name;
    let mut builder = http1::Builder::new();
    builder
        .keep_alive(true)
        .max_headers(MAX_HEADERS)
        .max_header_size(MAX_HEADER_BYTES)
        .max_buf_size(MAX_BUFFER_BYTES)
        // The deadlines are the connection's own (below): hyper's header timer would also
        // start the moment an answer is written, leaving no room for a longer idle timeout.
        .header_read_timeout(None);
    let connections = TaskTracker::new();
    let abort = CancellationToken::new();
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        connections.spawn(serve_connection(
            accepted,
            builder.clone(),
            endpoint.clone(),
            timeouts,
            stop.clone(),
            abort.clone(),
        ));
    }
    // Closes the listening socket: new connections are refused from here on.
    drop(listener);
    connections.close();
    if tokio::time::timeout(grace, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            listener = name,
            connections = connections.len(),
            "closing connections still open after the shutdown grace period"
        );
        abort.cancel();
        connections.wait().await;
    }
}

async fn serve_connection(
    accepted: Accepted,
    builder: http1::Builder,
    endpoint: SharedEndpoint,
    timeouts: HttpTimeouts,
    stop: CancellationToken,
    abort: CancellationToken,
) {
    // The slot is held until this connection is done.
    let Accepted { stream, peer, slot } = accepted;
    let local = stream.local_addr().unwrap_or(peer);
    let clock = Arc::new(Clock::new(timeouts));
    let service = {
        let clock = clock.clone();
        hyper::service::service_fn(move |request| {
            handle(
                request,
                endpoint.clone(),
                clock.clone(),
                (local, peer),
                timeouts.body_read,
            )
        })
    };
    let io = TokioIo::new(ConnectionIo::new(stream, clock.clone()));
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    let mut draining = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(err) = result {
                    tracing::debug!(%peer, %err, "connection ended with an error");
                }
                break;
            }
            expired = clock.expired() => {
                tracing::debug!(%peer, deadline = expired.as_str(), "closing connection: deadline passed");
                break;
            }
            () = stop.cancelled(), if !draining => {
                draining = true;
                // Closes an idle connection now, a busy one after its answer.
                connection.as_mut().graceful_shutdown();
            }
            () = abort.cancelled() => break,
        }
    }
    drop(slot);
}

/// One request: its body under the body-read deadline, the answer marking the connection busy
/// until it has been written.
async fn handle(
    request: hyper::Request<Incoming>,
    endpoint: SharedEndpoint,
    clock: Arc<Clock>,
    (local, peer): (SocketAddr, SocketAddr),
    body_read: Duration,
) -> Result<hyper::Response<AnswerBody>, Infallible> {
    let busy = clock.request_started();
    let has_body = !request.body().is_end_stream();
    let mut request = poem::Request::from((
        request,
        LocalAddr(Addr::SocketAddr(local)),
        RemoteAddr(Addr::SocketAddr(peer)),
        http::uri::Scheme::HTTP,
    ));
    if has_body {
        let body = BoxBody::from(request.take_body());
        request.set_body(BoxBody::new(DeadlineBody::new(body, body_read)));
    }
    let answer: hyper::Response<BoxBody<Bytes, io::Error>> =
        endpoint.get_response(request).await.into();
    Ok(answer.map(|body| AnswerBody { body, _busy: busy }))
}

/// What a connection is doing, and until when it may.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// Waiting for a request's line and headers, until the deadline.
    Head(Instant),
    /// Serving requests (a count, for safety; HTTP/1.1 serves one at a time): no deadline here,
    /// the body has its own.
    Busy(usize),
    /// An answer's body is done, its last bytes perhaps not yet written out; if hyper never
    /// says they are (a client not reading), the idle deadline counts from here.
    Finishing(Instant),
    /// Kept alive, waiting for the next request, until the deadline.
    Idle(Instant),
}

/// Which deadline passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expired {
    Head,
    Idle,
}

impl Expired {
    fn as_str(self) -> &'static str {
        match self {
            Self::Head => "header read",
            Self::Idle => "idle",
        }
    }
}

/// A connection's phase, moved along by the request handler (a request started, its answer's
/// body finished) and the socket (bytes arrived, the answer written out), and checked against
/// its deadline by [`Clock::expired`]. A change of phase wakes nobody: the check runs on a timer
/// of its own, at the phase's deadline or sooner (see `next_check`).
struct Clock {
    phase: Mutex<Phase>,
    timeouts: HttpTimeouts,
}

impl Clock {
    fn new(timeouts: HttpTimeouts) -> Self {
        Self {
            phase: Mutex::new(Phase::Head(Instant::now() + timeouts.header_read)),
            timeouts,
        }
    }

    fn phase(&self) -> MutexGuard<'_, Phase> {
        // A phase is a plain value, whole after any panic.
        self.phase.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Bytes arrived: on an idle connection they begin the next request, whose headers now
    /// have the header-read timeout to arrive.
    fn bytes_arrived(&self) {
        let mut phase = self.phase();
        if let Phase::Idle(_) = *phase {
            *phase = Phase::Head(Instant::now() + self.timeouts.header_read);
        }
    }

    /// A request's headers have arrived; the connection is busy until the returned guard is
    /// dropped (with the answer's body).
    fn request_started(self: &Arc<Self>) -> Busy {
        let mut phase = self.phase();
        *phase = match *phase {
            Phase::Busy(requests) => Phase::Busy(requests + 1),
            Phase::Head(_) | Phase::Finishing(_) | Phase::Idle(_) => Phase::Busy(1),
        };
        Busy(self.clone())
    }

    /// hyper flushed the socket: if an answer was finishing, it is now written, and the idle
    /// timeout starts.
    fn flushed(&self) {
        let mut phase = self.phase();
        if let Phase::Finishing(_) = *phase {
            *phase = Phase::Idle(Instant::now() + self.timeouts.idle);
        }
    }

    /// Whether an answer of ours is being written. hyper writes nothing else but its own answer
    /// to an unparseable request.
    fn answering(&self) -> bool {
        matches!(*self.phase(), Phase::Busy(_) | Phase::Finishing(_))
    }

    /// When to look at the phase next, at `now`: at its deadline, but no later than the
    /// shorter timeout from now. No deadline is then ever missed: one set later is at least
    /// that timeout after it was set, so after this check.
    fn next_check(&self, now: Instant) -> Instant {
        let soonest = now + self.timeouts.header_read.min(self.timeouts.idle);
        match *self.phase() {
            Phase::Head(deadline) | Phase::Finishing(deadline) | Phase::Idle(deadline) => {
                deadline.min(soonest)
            }
            Phase::Busy(_) => soonest,
        }
    }

    /// Completes when the deadline of the current phase passes (never while a request is
    /// being served).
    async fn expired(&self) -> Expired {
        let check = tokio::time::sleep_until(self.next_check(Instant::now()));
        tokio::pin!(check);
        loop {
            check.as_mut().await;
            let now = Instant::now();
            match *self.phase() {
                Phase::Head(deadline) if deadline <= now => return Expired::Head,
                Phase::Finishing(deadline) | Phase::Idle(deadline) if deadline <= now => {
                    return Expired::Idle;
                }
                Phase::Head(_) | Phase::Busy(_) | Phase::Finishing(_) | Phase::Idle(_) => {}
            }
            check.as_mut().reset(self.next_check(now));
        }
    }
}

/// Keeps a connection busy while alive.
struct Busy(Arc<Clock>);

impl Drop for Busy {
    fn drop(&mut self) {
        let idle = self.0.timeouts.idle;
        let mut phase = self.0.phase();
        *phase = match *phase {
            Phase::Busy(requests) if requests > 1 => Phase::Busy(requests - 1),
            Phase::Head(_) | Phase::Busy(_) | Phase::Finishing(_) | Phase::Idle(_) => {
                Phase::Finishing(Instant::now() + idle)
            }
        };
    }
}

/// An answer's body; the connection stays busy until hyper is done with it.
struct AnswerBody {
    body: BoxBody<Bytes, io::Error>,
    _busy: Busy,
}

impl http_body::Body for AnswerBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A request body that fails with [`BodyTimeout`] once its deadline has passed.
struct DeadlineBody {
    body: BoxBody<Bytes, io::Error>,
    deadline: Instant,
    timeout: Duration,
    /// Wakes the reader at the deadline; set only once the body has kept it waiting (a body
    /// already in hyper's buffer costs no timer).
    timer: Option<Pin<Box<Sleep>>>,
}

impl DeadlineBody {
    fn new(body: BoxBody<Bytes, io::Error>, timeout: Duration) -> Self {
        Self {
            body,
            deadline: Instant::now() + timeout,
            timeout,
            timer: None,
        }
    }

    fn late(&self) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        Poll::Ready(Some(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            BodyTimeout(self.timeout),
        ))))
    }
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        // The deadline first: a body still arriving, however steadily, after it is late.
        if Instant::now() >= self.deadline {
            return self.late();
        }
        if let Poll::Ready(frame) = Pin::new(&mut self.body).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        let deadline = self.deadline;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.as_mut().poll(cx).is_ready() {
            return self.late();
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The socket of an HTTP/1.1 connection as hyper sees it. It tells the connection's [`Clock`]
/// when bytes arrive and when hyper has flushed what it wrote, and it replaces hyper's own
/// bare answer to an unparseable request with the documented error body and headers.
struct ConnectionIo {
    stream: TcpStream,
    clock: Arc<Clock>,
    refusal: Option<Refusal>,
    /// Once closing: until when to drain what the client still sends, and how much was.
    linger: Option<(Pin<Box<Sleep>>, usize)>,
}

/// Our answer to an unparseable request, being written in place of hyper's.
struct Refusal {
    bytes: Vec<u8>,
    written: usize,
    /// How many bytes of hyper's answer it replaces (reported to hyper as written).
    replaces: usize,
}

impl ConnectionIo {
    fn new(stream: TcpStream, clock: Arc<Clock>) -> Self {
        Self {
            stream,
            clock,
            refusal: None,
            linger: None,
        }
    }

    /// Whether hyper is writing its own answer to an unparseable request (which is all it
    /// writes while no answer of ours is under way) with one of the statuses it uses for that;
    /// if so, begins our answer in its place.
    fn refuse_instead(&mut self, hyper_answer: &[u8], replaces: usize) -> bool {
        if self.refusal.is_some() || self.clock.answering() {
            return false;
        }
        let Some(status) = refused_status(hyper_answer) else {
            return false;
        };
        self.refusal = Some(Refusal {
            bytes: refusal_answer(status),
            written: 0,
            replaces,
        });
        true
    }

    /// Writes out our refusal; ready with the length of hyper's answer once all of it is out.
    fn poll_refusal(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let Some(refusal) = self.refusal.as_mut() else {
            return Poll::Ready(Ok(0));
        };
        while refusal.written < refusal.bytes.len() {
            let written = ready!(
                Pin::new(&mut self.stream).poll_write(cx, &refusal.bytes[refusal.written..])
            )?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            refusal.written += written;
        }
        Poll::Ready(Ok(refusal.replaces))
    }

    fn refusal_pending(&self) -> bool {
        self.refusal
            .as_ref()
            .is_some_and(|refusal| refusal.written < refusal.bytes.len())
    }
}

/// The status of hyper's own answer to an unparseable request (`HTTP/1.1 400 Bad Request`,
/// 414 or 431, written before any request reached us), if `bytes` begin one.
fn refused_status(bytes: &[u8]) -> Option<u16> {
    let rest = bytes.strip_prefix(b"HTTP/1.1 ")?;
    [400, 414, 431]
        .into_iter()
        .find(|status| rest.starts_with(format!("{status} ").as_bytes()))
}

/// The documented answer in place of hyper's bare `status`: 400 BadRequest (the error table
/// has no 414 or 431), the error body, the security headers, and the connection closed.
fn refusal_answer(status: u16) -> Vec<u8> {
    let message = match status {
        414 => format!(
            "the request URI is too long (the request line and headers may take at most {MAX_HEADER_BYTES} bytes)"
        ),
        431 => format!(
            "the request headers are too large: at most {MAX_HEADERS} headers and {MAX_HEADER_BYTES} bytes"
        ),
        _ => "the request is not valid HTTP/1.1: its request line, a header, or its framing \
              (Content-Length, Transfer-Encoding) could not be parsed"
            .to_owned(),
    };
    let (status, body) = crate::rest::error_json(&Error::bad_request(message));
    let mut head = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or_default(),
        body.len()
    );
    for (name, value) in crate::rest::SECURITY_HEADERS {
        head.push_str(&format!("{}: {value}\r\n", name.as_str()));
    }
    head.push_str("\r\n");
    let mut answer = head.into_bytes();
    answer.extend_from_slice(body.as_bytes());
    answer
}

impl AsyncRead for ConnectionIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.stream).poll_read(cx, buf))?;
        if buf.filled().len() > before {
            self.clock.bytes_arrived();
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for ConnectionIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.refusal_pending() || self.refuse_instead(buf, buf.len()) {
            return self.poll_refusal(cx);
        }
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let first = bufs.iter().find(|buf| !buf.is_empty());
        let total = bufs.iter().map(|buf| buf.len()).sum();
        if self.refusal_pending() || first.is_some_and(|first| self.refuse_instead(first, total)) {
            return self.poll_refusal(cx);
        }
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(Pin::new(&mut self.stream).poll_flush(cx))?;
        // hyper flushes the socket only once its own buffer is written out.
        self.clock.flushed();
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(Pin::new(&mut self.stream).poll_shutdown(cx))?;
        // Our side is closed (the client sees the end of our answer); drain what the client
        // still sends until it closes its side too, for a moment at most.
        let this = &mut *self;
        let (linger, drained) = this
            .linger
            .get_or_insert_with(|| (Box::pin(tokio::time::sleep(LINGER)), 0));
        let mut scratch = [0u8; 4096];
        loop {
            if linger.as_mut().poll(cx).is_ready() || *drained > LINGER_BYTES {
                return Poll::Ready(Ok(()));
            }
            let mut buf = ReadBuf::new(&mut scratch);
            match ready!(Pin::new(&mut this.stream).poll_read(cx, &mut buf)) {
                Ok(()) if !buf.filled().is_empty() => *drained += buf.filled().len(),
                // The client closed its side, or the connection failed: nothing more to wait for.
                Ok(()) | Err(_) => return Poll::Ready(Ok(())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hypers_refusals_are_recognised() {
        assert_eq!(refused_status(b"HTTP/1.1 400 Bad Request\r\n"), Some(400));
        assert_eq!(refused_status(b"HTTP/1.1 414 URI Too Long\r\n"), Some(414));
        assert_eq!(
            refused_status(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"),
            Some(431)
        );
        assert_eq!(refused_status(b"HTTP/1.1 200 OK\r\n"), None);
        assert_eq!(refused_status(b"HTTP/1.1 4000"), None);
        assert_eq!(refused_status(b"{\"error\":"), None);
    }

    #[test]
    fn a_refusal_is_a_complete_documented_answer() {
        let answer = String::from_utf8(refusal_answer(431)).expect("text");
        let (head, body) = answer.split_once("\r\n\r\n").expect("head and body");
        assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{head}");
        assert!(head.contains(&format!("content-length: {}\r\n", body.len())));
        assert!(head.contains("connection: close"));
        assert!(head.contains("x-frame-options: DENY"));
        let body: serde_json::Value = serde_json::from_str(body).expect("JSON body");
        assert_eq!(body["error"], "BadRequest");
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|message| message.contains("at most 100 headers")),
            "{body}"
        );
    }
}
