//! burnbox-server: the `burnbox` binary's library. It holds configuration, telemetry, the REST
//! adapter (poem-openapi), the gRPC adapter (tonic), the web pages, the one wire-error table and
//! the admin endpoints, and assembles them around the one handler in [`Application`].

pub mod admin;
pub mod allowance;
pub mod answers;
pub mod app;
pub mod auth;
pub mod config;
pub mod gate;
pub mod grpc;
pub mod grpc_lane;
pub mod listener;
pub mod logs;
pub mod mail;
pub mod metered_store;
pub mod metrics;
pub mod observe;
pub mod operations;
pub mod pages;
pub mod request_scope;
pub mod rest;
pub mod telemetry;
pub mod wire_error;

pub use app::{Application, ServeError, StartupError};
pub use config::{Config, ConfigError};
