//! Where a REST request came from, as an extractor: the `Authorization` header, the peer address
//! and `X-Forwarded-For`, handed raw to the [`Gate`](crate::gate::Gate), which decides. Two
//! flavours differ only in what the OpenAPI document says: [`CustomerOrigin`] on the operations
//! that need credentials (HTTP Basic, required), [`RequestOrigin`] on those that also work
//! anonymously (no security requirement, so no lock in Swagger UI).

use poem::http::header::{AUTHORIZATION, HeaderName};
use poem::{Request, RequestBody};
use poem_openapi::registry::{MetaSecurityScheme, Registry};
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions};

use crate::gate::{Origin, join_header_lines};

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The name of the security scheme in the OpenAPI document.
const SCHEME: &str = "customer_token";

/// The origin of a REST request to an operation that works with or without credentials.
pub struct RequestOrigin(pub Origin);

impl<'a> ApiExtractor<'a> for RequestOrigin {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::PoemExtractor];

    type ParamType = ();
    type ParamRawType = ();

    async fn from_request(
        request: &'a Request,
        _body: &mut RequestBody,
        _options: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        Ok(Self(origin_of(request)))
    }
}

/// The origin of a REST request to an operation only customers may call.
pub struct CustomerOrigin(pub Origin);

impl<'a> ApiExtractor<'a> for CustomerOrigin {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        registry.create_security_scheme(
            SCHEME,
            MetaSecurityScheme {
                ty: "http",
                description: Some(
                    "HTTP Basic: username = customer id, password = API token. Required by \
                     authcheck and recent. The other operations work without it unless the server \
                     disables anonymous use, and take it when sent (a customer's secrets and \
                     receipts need it): send it with `curl -u custid:token`.",
                ),
                name: None,
                key_in: None,
                scheme: Some("basic"),
                bearer_format: None,
                flows: None,
                openid_connect_url: None,
            },
        );
    }

    fn security_schemes() -> Vec<&'static str> {
        vec![SCHEME]
    }

    async fn from_request(
        request: &'a Request,
        _body: &mut RequestBody,
        _options: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        Ok(Self(origin_of(request)))
    }
}

/// Where `request` came from, as the [`Gate`](crate::gate::Gate) reads it (REST and pages).
pub fn origin_of(request: &Request) -> Origin {
    let header = |name| {
        // A header that is not text is kept (as empty) so it is refused, never ignored.
        request
            .headers()
            .get(name)
            .map(|value: &poem::http::HeaderValue| {
                value.to_str().map(str::to_owned).unwrap_or_default()
            })
    };
    Origin {
        authorization: header(AUTHORIZATION),
        peer: request.remote_addr().as_socket_addr().map(|addr| addr.ip()),
        forwarded_for: join_header_lines(
            request
                .headers()
                .get_all(X_FORWARDED_FOR)
                .iter()
                .map(poem::http::HeaderValue::as_bytes),
        ),
    }
}
