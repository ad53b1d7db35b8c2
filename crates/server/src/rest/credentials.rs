//! The `Authorization` header as an extractor: documented in the OpenAPI document as optional
//! HTTP Basic, handed raw to the [`Authenticator`](crate::auth::Authenticator), which decides.

use poem::http::header::AUTHORIZATION;
use poem::{Request, RequestBody};
use poem_openapi::registry::{MetaSecurityScheme, Registry};
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions};

/// The name of the security scheme in the OpenAPI document.
const SCHEME: &str = "customer_token";

/// The raw `Authorization` header of a request, if it has one.
pub struct Credentials(pub Option<String>);

impl Credentials {
    /// The header value, for the authenticator.
    pub fn header(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

impl<'a> ApiExtractor<'a> for Credentials {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        registry.create_security_scheme(
            SCHEME,
            MetaSecurityScheme {
                ty: "http",
                description: Some(
                    "HTTP Basic: username = customer id, password = API token. Optional unless the \
                     server disables anonymous use; receipts of a customer need that customer's credentials.",
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

    fn has_security_fallback() -> bool {
        true
    }

    async fn from_request(
        request: &'a Request,
        _body: &mut RequestBody,
        _options: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        // A header that is not text is kept (as empty) so it is refused, never ignored.
        Ok(Self(request.headers().get(AUTHORIZATION).map(|value| {
            value.to_str().map(str::to_owned).unwrap_or_default()
        })))
    }
}
