//! Request bodies as Onetime Secret clients send them: `application/x-www-form-urlencoded`,
//! JSON, or nothing at all (a bare `POST /secret/KEY`). One extractor handles all three so each
//! route declares its fields once.

use std::borrow::Cow;

use burnbox_core::Error;
use poem::{Request, RequestBody};
use poem_openapi::registry::{MetaMediaType, MetaRequest, MetaSchemaRef, Registry};
use poem_openapi::types::{ParseError, ParseFromJSON, ParseResult, ToJSON, Type};
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::ApiError;

const FORM: &str = "application/x-www-form-urlencoded";
const JSON: &str = "application/json";

/// A request body of fields `T`, from a form, from JSON, or absent (all fields unset).
pub struct FormOrJson<T>(pub T);

/// The largest request body read (request data set on the REST endpoint); a larger one is
/// refused before it is buffered.
#[derive(Clone, Copy, Debug)]
pub struct BodyLimit(pub usize);

impl<'a, T> ApiExtractor<'a> for FormOrJson<T>
where
    T: Type + DeserializeOwned + Default + Send,
{
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: None,
            content: [FORM, JSON]
                .into_iter()
                .map(|content_type| MetaMediaType {
                    content_type,
                    schema: T::schema_ref(),
                })
                .collect(),
            required: false,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _options: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        read_body(request, body, field_names::<T>)
            .await?
            .map(Self)
            .map_err(|err| ApiError::from(err).into())
    }
}

/// Reads and decodes a request body as the API does (REST and pages): at most the request's
/// [`BodyLimit`], a form or JSON, strict UTF-8; errors name a field only if it is one of
/// `known_fields()`. The outer error is the transport's (the body could not be read: a late
/// body, a broken connection), the inner one a refusal of what was read.
pub(crate) async fn read_body<T: DeserializeOwned + Default>(
    request: &Request,
    body: &mut RequestBody,
    known_fields: fn() -> Vec<&'static str>,
) -> poem::Result<Result<T, Error>> {
    let limit = request
        .data::<BodyLimit>()
        .map_or(usize::MAX, |limit| limit.0);
    let too_large = || {
        Error::bad_request(format!(
            "the request body is larger than this server accepts ({limit} bytes)"
        ))
    };
    let declared = request
        .headers()
        .get(poem::http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Ok(Err(too_large()));
    }
    match body.take()?.into_bytes_limit(limit).await {
        Ok(bytes) => Ok(parse(request.content_type(), &bytes, &known_fields)),
        Err(poem::error::ReadBodyError::PayloadTooLarge) => Ok(Err(too_large())),
        Err(err) => Err(err.into()),
    }
}

/// The names of `T`'s fields, as its schema documents them.
fn field_names<T: Type>() -> Vec<&'static str> {
    let mut registry = Registry::new();
    T::register(&mut registry);
    let schema = match T::schema_ref() {
        MetaSchemaRef::Reference(name) => registry.schemas.remove(&name),
        MetaSchemaRef::Inline(schema) => Some(*schema),
    };
    schema
        .map(|schema| {
            schema
                .properties
                .into_iter()
                .map(|(name, _)| name)
                .collect()
        })
        .unwrap_or_default()
}

/// Decodes `bytes` by content type. Error messages never quote the body (it may hold a secret)
/// and name a field only if it is one of `known_fields()` (asked only on that error).
fn parse<T: DeserializeOwned + Default>(
    content_type: Option<&str>,
    bytes: &[u8],
    known_fields: &dyn Fn() -> Vec<&'static str>,
) -> Result<T, Error> {
    let essence = content_type.map(|value| {
        value
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    });
    match essence.as_deref() {
        _ if bytes.is_empty() => Ok(T::default()),
        Some(FORM) => check_form_is_utf8(bytes, known_fields).and_then(|()| {
            serde_urlencoded::from_bytes(bytes).map_err(|_| {
                Error::bad_request(
                    "the form body could not be decoded (each field at most once, text values)",
                )
            })
        }),
        Some(JSON) => serde_json::from_slice(bytes).map_err(|err| {
            let problem = if err.is_data() {
                "a field has the wrong type"
            } else {
                "the body is not valid JSON"
            };
            Error::bad_request(format!(
                "{problem} (line {}, column {}); text fields are strings, ttl is an integer",
                err.line(),
                err.column()
            ))
        }),
        Some(other) => Err(Error::bad_request(format!(
            "unsupported content type {other:?}: send {FORM} or {JSON}"
        ))),
        None => Err(Error::bad_request(format!(
            "a request body needs a Content-Type: {FORM} or {JSON}"
        ))),
    }
}

/// Refuses a form whose field names or values are not UTF-8 once percent-decoded. The form
/// decoder would replace such bytes with U+FFFD, so `%FF%FF` and `%FE%FE` would become the same
/// passphrase; JSON and gRPC refuse the same input. The message names the field when it is one
/// the API knows: a client that left a `&` unencoded inside a secret would otherwise see part of
/// the secret quoted back (and logged).
fn check_form_is_utf8(
    bytes: &[u8],
    known_fields: &dyn Fn() -> Vec<&'static str>,
) -> Result<(), Error> {
    for pair in bytes.split(|&byte| byte == b'&') {
        let (name, value) = match pair.iter().position(|&byte| byte == b'=') {
            Some(equals) => (&pair[..equals], &pair[equals + 1..]),
            None => (pair, &[][..]),
        };
        let Ok(name) = percent_encoding::percent_decode(name).decode_utf8() else {
            return Err(Error::bad_request(
                "a form field name is not valid UTF-8 once percent-decoded",
            ));
        };
        if percent_encoding::percent_decode(value)
            .decode_utf8()
            .is_err()
        {
            let field = known_fields().into_iter().find(|known| *known == name);
            return Err(Error::bad_request(match field {
                Some(field) => {
                    format!("the form field {field:?} is not valid UTF-8 once percent-decoded")
                }
                None => "a form field is not valid UTF-8 once percent-decoded".to_owned(),
            }));
        }
    }
    Ok(())
}

/// An integer field that clients send as a JSON number or as decimal text (forms always send
/// text). Text that is not a whole number is kept as such so the handler can answer it with a
/// validation error naming the field, rather than failing the whole body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntField(Option<i64>);

impl IntField {
    /// The integer, or a validation error about `field`.
    pub fn value(self, field: &'static str) -> Result<i64, Error> {
        self.0
            .ok_or_else(|| Error::validation(field, format!("{field} must be a whole number")))
    }
}

impl<'de> serde::Deserialize<'de> for IntField {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Forms give strings; JSON gives numbers or strings. Anything else is a type error.
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(serde_json::Number),
            Text(String),
        }
        Ok(Self(match Raw::deserialize(deserializer)? {
            Raw::Number(number) => number.as_i64(),
            Raw::Text(text) => text.trim().parse().ok(),
        }))
    }
}

impl Type for IntField {
    const IS_REQUIRED: bool = true;
    type RawValueType = i64;
    type RawElementValueType = i64;

    fn name() -> Cow<'static, str> {
        i64::name()
    }

    fn schema_ref() -> MetaSchemaRef {
        i64::schema_ref()
    }

    fn as_raw_value(&self) -> Option<&i64> {
        self.0.as_ref()
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a i64> + 'a> {
        Box::new(self.0.iter())
    }
}

impl ParseFromJSON for IntField {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        let value = value.unwrap_or_default();
        serde_json::from_value(value.clone()).map_err(|_| ParseError::expected_type(value))
    }
}

impl ToJSON for IntField {
    fn to_json(&self) -> Option<Value> {
        self.0.map(Value::from)
    }
}

/// Deserializes a field clients send as one string or as a list of strings.
pub fn one_or_many<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<String>, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Raw {
        One(String),
        Many(Vec<String>),
    }
    Ok(
        match <Option<Raw> as serde::Deserialize>::deserialize(deserializer)? {
            None => Vec::new(),
            Some(Raw::One(one)) => vec![one],
            Some(Raw::Many(many)) => many,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`super::parse`] for [`Fields`], whose fields these are.
    fn parse<T: DeserializeOwned + Default>(
        content_type: Option<&str>,
        bytes: &[u8],
    ) -> Result<T, Error> {
        super::parse(content_type, bytes, &|| {
            vec!["secret", "passphrase", "ttl", "recipient"]
        })
    }

    #[derive(serde::Deserialize, Default, Debug, PartialEq)]
    struct Fields {
        secret: Option<String>,
        ttl: Option<IntField>,
        #[serde(default, deserialize_with = "one_or_many")]
        recipient: Vec<String>,
    }

    #[test]
    fn form_json_and_empty_bodies_decode_alike() {
        let form: Fields = parse(
            Some("application/x-www-form-urlencoded"),
            b"secret=s&ttl=3600&recipient=a",
        )
        .expect("form");
        let json: Fields = parse(
            Some("application/json; charset=utf-8"),
            br#"{"secret":"s","ttl":3600,"recipient":["a"]}"#,
        )
        .expect("json");
        assert_eq!(form, json);
        assert_eq!(
            form.ttl.map(|ttl| ttl.value("ttl").expect("int")),
            Some(3600)
        );
        let empty: Fields = parse(None, b"").expect("empty");
        assert_eq!(empty, Fields::default());
    }

    #[test]
    fn non_numeric_ttl_is_a_field_error() {
        let fields: Fields = parse(Some(FORM), b"ttl=soon").expect("decodes");
        let err = fields
            .ttl
            .expect("present")
            .value("ttl")
            .expect_err("not a number");
        assert_eq!(err.field(), Some("ttl"));
    }

    #[test]
    fn form_bytes_that_are_not_utf8_are_refused_naming_the_field() {
        for (body, named) in [
            (&b"secret=%FF%FE"[..], "\"secret\""),
            (b"secret=ok&passphrase=%FF%FF", "\"passphrase\""),
            (b"secret=%C3", "\"secret\""),
            (b"%FF=x", "field name"),
            // Not a field of ours (a `&` left unencoded inside a secret): not quoted back.
            (b"secret=abc&tail-of-secret=%FF", "a form field is"),
        ] {
            let err = parse::<Fields>(Some(FORM), body).expect_err("not UTF-8");
            assert_eq!(err.kind(), burnbox_core::ErrorKind::BadRequest);
            assert!(err.message().contains(named), "{}", err.message());
        }
        let fields: Fields =
            parse(Some(FORM), "secret=%C3%A9t%C3%A9+%E2%82%AC".as_bytes()).expect("UTF-8 decodes");
        assert_eq!(fields.secret.as_deref(), Some("été €"));
    }

    #[test]
    fn errors_never_quote_the_body() {
        let err = parse::<Fields>(Some(JSON), br#"{"secret": 123456789}"#).expect_err("wrong type");
        assert!(!err.message().contains("123456789"), "{}", err.message());
        let err = parse::<Fields>(Some("text/plain"), b"hunter2").expect_err("wrong type");
        assert!(!err.message().contains("hunter2"));
        assert!(parse::<Fields>(None, b"secret=x").is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_body_is_an_answer_not_a_panic(
            content_type in proptest::option::of("[ -~]{0,40}"),
            bytes in proptest::collection::vec(proptest::arbitrary::any::<u8>(), 0..300),
        ) {
            let _ = parse::<Fields>(content_type.as_deref(), &bytes);
        }

        #[test]
        fn forms_carry_any_text_and_integer(secret in ".{1,100}", ttl in proptest::arbitrary::any::<i64>()) {
            let body = serde_urlencoded::to_string([("secret", secret.clone()), ("ttl", ttl.to_string())])
                .expect("encodes");
            let fields: Fields = parse(Some(FORM), body.as_bytes()).expect("decodes");
            proptest::prop_assert_eq!(fields.secret, Some(secret));
            proptest::prop_assert_eq!(fields.ttl.map(|field| field.value("ttl").ok()), Some(Some(ttl)));
        }

        #[test]
        fn json_carries_any_text_and_integer(secret in ".{1,100}", ttl in proptest::arbitrary::any::<i64>()) {
            let body = serde_json::json!({"secret": secret, "ttl": ttl}).to_string();
            let fields: Fields = parse(Some(JSON), body.as_bytes()).expect("decodes");
            proptest::prop_assert_eq!(fields.secret, Some(secret));
            proptest::prop_assert_eq!(fields.ttl.map(|field| field.value("ttl").ok()), Some(Some(ttl)));
        }
    }
}
