//! The gRPC listener's connections for tonic: each holds its listener slot while open, must
//! send the HTTP/2 connection preface within the header-read timeout, and is closed outright
//! once its lifetime is over. tonic asks it to close first (GOAWAY at the maximum connection
//! age, see `app.rs`), which a well-behaved client follows; the lifetime (that age plus the
//! grace for calls in flight) is for those that keep a stream open regardless, so no caller can
//! hold a slot for ever. Keepalive pings between are tonic's.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures_util::Stream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Sleep;
use tonic::transport::server::{Connected, TcpConnectInfo};

use super::{Accepted, Listener};

/// The HTTP/2 client connection preface (RFC 9113 §3.4) is this long.
const PREFACE_BYTES: usize = 24;

/// The connections of `listener` as tonic takes them; accept errors never reach tonic (the
/// listener retries them itself).
pub fn incoming(
    listener: Listener,
    preface_timeout: Duration,
    lifetime: Duration,
) -> impl Stream<Item = Result<GrpcConnection, Infallible>> {
    futures_util::stream::unfold(listener, move |mut listener| async move {
        let connection = GrpcConnection::new(listener.accept().await, preface_timeout, lifetime);
        Some((Ok(connection), listener))
    })
}

/// An accepted gRPC connection.
pub struct GrpcConnection {
    stream: TcpStream,
    _slot: OwnedSemaphorePermit,
    /// Until the preface is in: how much of it is still to come, and until when.
    preface: Option<(usize, Pin<Box<Sleep>>)>,
    /// When the connection is closed, whatever it is doing.
    end_of_life: Pin<Box<Sleep>>,
}

impl GrpcConnection {
    fn new(accepted: Accepted, preface_timeout: Duration, lifetime: Duration) -> Self {
        Self {
            stream: accepted.stream,
            _slot: accepted.slot,
            preface: Some((PREFACE_BYTES, Box::pin(tokio::time::sleep(preface_timeout)))),
            end_of_life: Box::pin(tokio::time::sleep(lifetime)),
        }
    }

    /// An error once the connection's lifetime is over. hyper keeps a read pending on an HTTP/2
    /// connection, so polling the timer there wakes it when the time comes.
    fn check_lifetime(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if self.end_of_life.as_mut().poll(cx).is_ready() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the connection outlived its maximum age and grace",
            ));
        }
        Ok(())
    }
}

impl Connected for GrpcConnection {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.stream.connect_info()
    }
}

impl AsyncRead for GrpcConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        this.check_lifetime(cx)?;
        let Some((missing, deadline)) = this.preface.as_mut() else {
            return Pin::new(&mut this.stream).poll_read(cx, buf);
        };
        // hyper reads until it has the preface, so it polls here (and the deadline) meanwhile.
        if deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no HTTP/2 connection preface within the header-read timeout",
            )));
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.stream).poll_read(cx, buf))?;
        *missing = missing.saturating_sub(buf.filled().len() - before);
        if *missing == 0 {
            this.preface = None;
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for GrpcConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.check_lifetime(cx)?;
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.check_lifetime(cx)?;
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
