//! The reveal's own lane: `POST /api/v1/secret/{key}`, the request a one-time secret service
//! serves most, goes straight to its handler instead of through poem's router and
//! poem-openapi's per-operation layers. Each of those layers boxes the request's whole future
//! again; measured with callgrind, those dozen heap copies of a few kilobytes were a fifth of a
//! reveal's instructions.
//!
//! The lane calls the same extractors and the same handler as the routed operation, in the same
//! order, and marks its answer as the router and poem-openapi mark theirs (operation id, route
//! pattern), so the layers around it (error rendering, security headers, metrics, spans) cannot
//! tell the two apart. Only keys of plain ASCII letters and digits take the lane, so no
//! percent-decoding or path normalisation can make it disagree with the router: any other
//! request, and every other method and path, is routed as before.

use std::sync::Arc;

use poem::{Endpoint, IntoResponse, PathPattern, Request, Response};
use poem_openapi::{ApiExtractor, ExtractParamOptions, OperationId};

use super::{API_PREFIX, FormOrJson, RestApi, RevealForm, origin_of};
use crate::operations::Operation;

/// The longest key the lane takes; longer ones are routed (and refused there as unknown).
const MAX_LANE_KEY_BYTES: usize = 128;

/// `routes`, with reveals answered by the handler directly.
pub struct RevealLane<E> {
    routes: E,
    api: RestApi,
    /// The route pattern the router would have recorded (`/api/v1/secret/:param0`).
    pattern: Arc<str>,
}

impl<E> RevealLane<E> {
    /// Serves reveals with `api`, everything else with `routes`.
    pub fn new(routes: E, api: RestApi) -> Self {
        Self {
            routes,
            api,
            // poem-openapi names path parameters by position.
            pattern: Arc::from(format!("{API_PREFIX}/secret/:param0")),
        }
    }
}

/// The key of a request the lane serves: a POST to `/api/v1/secret/{key}` with a key of ASCII
/// letters and digits only.
fn lane_key(request: &Request) -> Option<&str> {
    if request.method() != poem::http::Method::POST {
        return None;
    }
    let key = request
        .uri()
        .path()
        .strip_prefix(API_PREFIX)?
        .strip_prefix("/secret/")?;
    let plain = !key.is_empty()
        && key.len() <= MAX_LANE_KEY_BYTES
        && key.bytes().all(|byte| byte.is_ascii_alphanumeric());
    plain.then_some(key)
}

impl<E: Endpoint> Endpoint for RevealLane<E> {
    type Output = Response;

    async fn call(&self, request: Request) -> poem::Result<Response> {
        let Some(key) = lane_key(&request).map(str::to_owned) else {
            // Boxed: the router's future would otherwise make the lane's as large.
            return Box::pin(self.routes.call(request))
                .await
                .map(IntoResponse::into_response);
        };
        let (request, mut body) = request.split();
        // What the generated operation does: extract in declaration order, a refusal of the
        // body propagating as poem's error; then the handler; then the operation id on the
        // answer or the error, and the route pattern beneath it.
        let answer = match FormOrJson::<RevealForm>::from_request(
            &request,
            &mut body,
            ExtractParamOptions {
                name: "form",
                ignore_case: false,
                default_value: None,
                example_value: None,
                explode: true,
                style: None,
            },
        )
        .await
        {
            Ok(FormOrJson(form)) => self
                .api
                .do_reveal(origin_of(&request), key, form)
                .await
                .map(IntoResponse::into_response)
                .map_err(poem::Error::from),
            Err(err) => Err(err),
        };
        let pattern = PathPattern(self.pattern.clone());
        match answer {
            Ok(mut response) => {
                response.set_data(OperationId(Operation::Reveal.name()));
                response.set_data(pattern);
                Ok(response)
            }
            Err(mut err) => {
                err.set_data(OperationId(Operation::Reveal.name()));
                err.set_data(pattern);
                Err(err)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use poem::http::Method;

    use super::*;

    fn key_of(method: Method, uri: &str) -> Option<String> {
        let request = Request::builder().method(method).uri_str(uri).finish();
        lane_key(&request).map(str::to_owned)
    }

    #[test]
    fn plain_reveals_take_the_lane() {
        assert_eq!(
            key_of(Method::POST, "/api/v1/secret/abc123XYZ").as_deref(),
            Some("abc123XYZ")
        );
        // The query string is the handler's to read, as on the routed operation.
        assert_eq!(
            key_of(Method::POST, "/api/v1/secret/abc?passphrase=x").as_deref(),
            Some("abc")
        );
    }

    #[test]
    fn everything_else_is_routed() {
        for (method, uri) in [
            (Method::GET, "/api/v1/secret/abc"),
            (Method::HEAD, "/api/v1/secret/abc"),
            (Method::POST, "/api/v1/secret/"),
            (Method::POST, "/api/v1/secret/abc/"),
            (Method::POST, "/api/v1/secret/abc/status"),
            (Method::POST, "/api/v1/secret/a%62c"),
            (Method::POST, "/api/v1/secret/a.b"),
            (Method::POST, "/api/v1/secret/a-b"),
            (Method::POST, "/api/v1/secrets/abc"),
            (Method::POST, "/api/v2/secret/abc"),
            (Method::POST, "/secret/abc"),
        ] {
            assert_eq!(key_of(method.clone(), uri), None, "{method} {uri}");
        }
        let long = format!("/api/v1/secret/{}", "a".repeat(MAX_LANE_KEY_BYTES + 1));
        assert_eq!(key_of(Method::POST, &long), None);
        let longest = format!("/api/v1/secret/{}", "a".repeat(MAX_LANE_KEY_BYTES));
        assert!(key_of(Method::POST, &longest).is_some());
    }
}
