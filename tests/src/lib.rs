//! Test harness for burnbox's end-to-end suites: a real `redis-server` on a free port, the real
//! server on port 0 with real sockets, a real HTTP client and the generated tonic client.
//!
//! Set `BURNBOX_TEST_REDIS_URL` to use an existing Redis instead of starting one (tests that stop
//! and restart Redis always start their own).

pub mod browser;
pub mod conformance;

use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use burnbox_server::{Application, Config};
use burnbox_spec::v1::secrets_client::SecretsClient;
use tokio::sync::oneshot;
use tonic::transport::Channel;

mod assertions;
mod clients;
mod logs;
mod prometheus;
mod redis_server;
mod server;
mod tls;
mod waiting;

pub use assertions::*;
pub use clients::*;
pub use logs::*;
pub use prometheus::*;
pub use redis_server::*;
pub use server::*;
pub use tls::*;
pub use waiting::*;

/// For each scenario `async fn name(backend: Backend)`, generates a module `name` with two
/// tests: `name::memory_store` and `name::redis_store`.
#[macro_export]
macro_rules! on_both_stores {
    ($($scenario:ident),+ $(,)?) => {
        $(
            mod $scenario {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn memory_store() {
                    super::$scenario($crate::Backend::Memory).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn redis_store() {
                    super::$scenario($crate::Backend::redis()).await;
                }
            }
        )+
    };
}
