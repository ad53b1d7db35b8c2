//! gRPC's own lane for `burnbox.v1.Secrets`: its calls go straight to the service instead of
//! through tonic's router. The router is an axum router: for every call it matches the path,
//! stores the match in the request, boxes the request's and the answer's bodies into axum's and
//! back, and clones a boxed service; measured with callgrind, that is a few thousand
//! instructions per call, a few per cent of a reveal.
//!
//! The lane serves the same service value the router holds (the same message-size cap and
//! compression settings), and only for paths under the service's own prefix, which the router
//! sends nowhere else: the service answers unknown methods there itself, as it does behind the
//! router. Every other path (health, reflection, anything unknown) is routed as before. The
//! layers outside the lane (the observer, the rendering of protocol refusals) see the same
//! requests and answers either way.

use std::convert::Infallible;
use std::task::{Context, Poll};

use burnbox_spec::v1::secrets_server::SecretsServer;
use futures_util::future::Either;

use crate::grpc::GrpcSecrets;
use crate::operations::GRPC_SERVICE;

/// Whether `path` is a call of [`GRPC_SERVICE`]: `/burnbox.v1.Secrets/<method>`.
fn is_secrets_call(path: &str) -> bool {
    path.strip_prefix('/')
        .and_then(|path| path.strip_prefix(GRPC_SERVICE))
        .is_some_and(|method| method.starts_with('/'))
}

/// `routes`, with calls of `burnbox.v1.Secrets` served by the service directly.
#[derive(Clone)]
pub struct SecretsLane<S> {
    routes: S,
    secrets: SecretsServer<GrpcSecrets>,
}

impl<S> SecretsLane<S> {
    /// Serves calls of `burnbox.v1.Secrets` with `secrets` (the service the router also holds),
    /// everything else with `routes`. Put in front of tonic's router with
    /// `tower::layer::layer_fn`, as the innermost layer.
    pub fn new(routes: S, secrets: SecretsServer<GrpcSecrets>) -> Self {
        Self { routes, secrets }
    }
}

impl<S, Body> tower::Service<http::Request<Body>> for SecretsLane<S>
where
    S: tower::Service<
            http::Request<Body>,
            Response = http::Response<tonic::body::Body>,
            Error = Infallible,
        >,
    SecretsServer<GrpcSecrets>: tower::Service<
            http::Request<Body>,
            Response = http::Response<tonic::body::Body>,
            Error = Infallible,
        >,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Either<
        S::Future,
        <SecretsServer<GrpcSecrets> as tower::Service<http::Request<Body>>>::Future,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The service is always ready (tonic's generated servers are); the router decides.
        self.routes.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        if is_secrets_call(request.uri().path()) {
            Either::Right(self.secrets.call(request))
        } else {
            Either::Left(self.routes.call(request))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_services_own_paths_take_the_lane() {
        for path in [
            "/burnbox.v1.Secrets/RevealSecret",
            "/burnbox.v1.Secrets/ShareSecret",
            "/burnbox.v1.Secrets/NoSuchMethod",
            "/burnbox.v1.Secrets/",
        ] {
            assert!(is_secrets_call(path), "{path}");
        }
        for path in [
            "/burnbox.v1.Secrets",
            "/burnbox.v1.SecretsX/RevealSecret",
            "/burnbox.v1.Secret/RevealSecret",
            "burnbox.v1.Secrets/RevealSecret",
            "/grpc.health.v1.Health/Check",
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            "/",
            "",
        ] {
            assert!(!is_secrets_call(path), "{path}");
        }
    }
}
