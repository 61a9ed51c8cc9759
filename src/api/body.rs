//! Request bodies, read without judging them, so that authorization and existence checks
//! answer first (401 → 403 → 404 → 400; see `api/path.rs`). A handler names its body's one
//! struct, the struct the OpenAPI document shows, as its last argument (`Body<T>`), or reads a
//! `RawBody` itself when something else must be judged first.

use axum::{
    body::Bytes,
    extract::{FromRequest, Request},
    http::header,
};
use serde_json::{Map, Value};

use super::errors::ApiError;
use crate::domain::{
    ActivityType, EnvironmentType, Geography, Role, SolutionType, SubscriptionFormat,
};

/// A request body as one typed struct that derives `ToSchema`. `read` takes the members one
/// by one with the `JsonObject` helpers: their order decides which fault is reported first.
pub trait RequestBody: Sized {
    fn read(body: &JsonObject) -> Result<Self, ApiError>;
}

/// The body as `T`, sent as `application/json`. Extracted last, after the path's checks.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: RequestBody> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        RawBody::from_request(req, state).await?.json().map(Self)
    }
}

/// Bodies above this are refused with 400 `INVALID_REQUEST`.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub struct RawBody {
    content_type: Option<String>,
    bytes: Option<Bytes>,
}

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES)
            .await
            .ok();
        Ok(Self {
            content_type,
            bytes,
        })
    }
}

impl RawBody {
    /// The raw bytes, or `None` when the body exceeded the limit.
    pub fn bytes(&self) -> Option<&[u8]> {
        self.bytes.as_deref()
    }

    /// The media type without parameters, lowercased; `None` without a `Content-Type`, or when
    /// its `charset` names anything but UTF-8 (JSON is UTF-8, RFC 8259 §8.1, and so are the
    /// forms we read): callers then answer as for a wrong content type.
    pub fn media_type(&self) -> Option<String> {
        let mut parts = self.content_type.as_deref()?.split(';');
        let media_type = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let utf8 = parts.all(|parameter| match parameter.split_once('=') {
            Some((name, value)) if name.trim().eq_ignore_ascii_case("charset") => {
                let value = value.trim().trim_matches('"');
                value.eq_ignore_ascii_case("utf-8") || value.eq_ignore_ascii_case("utf8")
            }
            _ => true,
        });
        utf8.then_some(media_type)
    }

    /// The body `T`, sent as `application/json`.
    pub fn json<T: RequestBody>(&self) -> Result<T, ApiError> {
        T::read(&self.json_object()?)
    }

    /// The body `T`, whatever its JSON media type (the caller chose by it, e.g. a vendor type).
    pub fn object<T: RequestBody>(&self) -> Result<T, ApiError> {
        T::read(&self.any_json_object()?)
    }

    /// A JSON object sent as `application/json`.
    fn json_object(&self) -> Result<JsonObject, ApiError> {
        if self.media_type().as_deref() != Some("application/json") {
            return Err(ApiError::InvalidRequest(
                "The request could not be completed. The Content-Type must be application/json."
                    .into(),
            ));
        }
        self.any_json_object()
    }

    /// The body as a JSON object, whatever its JSON media type (vendor types included).
    fn any_json_object(&self) -> Result<JsonObject, ApiError> {
        let bytes = self.bytes.as_ref().ok_or_else(|| {
            ApiError::InvalidRequest(format!(
                "The request could not be completed. The body is larger than {MAX_BODY_BYTES} bytes."
            ))
        })?;
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(map)) => Ok(JsonObject(map)),
            Ok(_) => Err(ApiError::InvalidRequest(
                "The request could not be completed. The body must be a JSON object.".into(),
            )),
            Err(e) => Err(ApiError::InvalidRequest(format!(
                "The request could not be completed. The body is not valid JSON: {e}."
            ))),
        }
    }
}

pub struct JsonObject(Map<String, Value>);

impl JsonObject {
    /// The member at `path` (through nested objects); `None` when absent or null.
    pub fn at(&self, path: &[&str]) -> Option<&Value> {
        let (last, parents) = path.split_last()?;
        let mut map = &self.0;
        for key in parents {
            map = map.get(*key)?.as_object()?;
        }
        map.get(*last).filter(|value| !value.is_null())
    }

    /// A required string member: absent or null is `REQUIRED_VALUE`, another type `INVALID_VALUE`.
    pub fn required_str(&self, target: &str) -> Result<&str, ApiError> {
        self.required_str_at(&[target], target)
    }

    /// As `required_str`, for a member nested under `path` (e.g. `mailFrom.domain`).
    pub fn required_str_at(&self, path: &[&str], target: &str) -> Result<&str, ApiError> {
        match self.at(path) {
            None => Err(ApiError::required_value(target)),
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(ApiError::invalid_value(
                target,
                format!("{target} must be a string."),
            )),
        }
    }

    /// A required boolean member: absent or null is `REQUIRED_VALUE`, another type
    /// `INVALID_VALUE`.
    pub fn required_bool(&self, target: &str) -> Result<bool, ApiError> {
        match self.at(&[target]) {
            None => Err(ApiError::required_value(target)),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(ApiError::invalid_value(
                target,
                format!("{target} must be true or false."),
            )),
        }
    }

    /// An optional string member: absent or null is `None`, another type `INVALID_VALUE`.
    pub fn optional_str(&self, target: &str) -> Result<Option<&str>, ApiError> {
        match self.0.get(target) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(ApiError::invalid_value(
                target,
                format!("{target} must be a string."),
            )),
        }
    }

    /// The whole object, for shapes read elsewhere (`BillOfMaterials::parse`).
    pub fn to_value(&self) -> Value {
        Value::Object(self.0.clone())
    }

    /// A member as sent, for shapes read elsewhere (`BillOfMaterials::parse`); null is absent.
    pub fn member(&self, target: &str) -> Option<&Value> {
        self.0.get(target).filter(|v| !v.is_null())
    }

    /// An optional boolean member: absent or null is `None`, another type `INVALID_VALUE`.
    pub fn optional_bool(&self, target: &str) -> Result<Option<bool>, ApiError> {
        match self.0.get(target) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(ApiError::invalid_value(
                target,
                format!("{target} must be true or false."),
            )),
        }
    }

    /// The `id` of an optional reference object (`{"theme": {"id": "…"}}`): absent or null is
    /// `None`; an object without a string `id` is refused on `<target>.id`.
    pub fn optional_id_ref(&self, target: &str) -> Result<Option<&str>, ApiError> {
        match self.0.get(target) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(_)) => self
                .required_str_at(&[target, "id"], &format!("{target}.id"))
                .map(Some),
            Some(_) => Err(ApiError::invalid_value(
                target,
                format!("{target} must be an object with an id."),
            )),
        }
    }

    /// An optional array of strings, kept apart from an empty one: absent or null is `None`.
    pub fn optional_string_list(&self, target: &str) -> Result<Option<Vec<String>>, ApiError> {
        match self.0.get(target) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.string_list(target, true).map(Some),
        }
    }

    /// An array of strings: absent or null is `REQUIRED_VALUE` when `required`, else empty.
    pub fn string_list(&self, target: &str, required: bool) -> Result<Vec<String>, ApiError> {
        self.string_list_at(&[target], target, required)
    }

    /// As `string_list`, for a member nested under `path`.
    pub fn string_list_at(
        &self,
        path: &[&str],
        target: &str,
        required: bool,
    ) -> Result<Vec<String>, ApiError> {
        let not_strings =
            || ApiError::invalid_value(target, format!("{target} must be an array of strings."));
        match self.at(path) {
            None if required => Err(ApiError::required_value(target)),
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| item.as_str().map(str::to_owned).ok_or_else(not_strings))
                .collect(),
            Some(_) => Err(not_strings()),
        }
    }

    /// An object of strings under `path` (absent or null: empty).
    pub fn string_map_at(
        &self,
        path: &[&str],
        target: &str,
    ) -> Result<std::collections::BTreeMap<String, String>, ApiError> {
        let not_strings = || {
            ApiError::invalid_value(
                target,
                format!("{target} must be an object of string values."),
            )
        };
        match self.at(path) {
            None => Ok(Default::default()),
            Some(Value::Object(members)) => members
                .iter()
                .map(|(k, v)| Ok((k.clone(), v.as_str().ok_or_else(not_strings)?.to_owned())))
                .collect(),
            Some(_) => Err(not_strings()),
        }
    }
}

/// The wire enums bodies read: in the OpenAPI document, a string of one of the values
/// the domain lists (`ALL`), so the document and the parser cannot disagree.
macro_rules! wire_enum_schemas {
    ($($name:ty),+ $(,)?) => {$(
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some(<$name>::ALL.iter().map(|value| value.as_str())))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    )+};
}

wire_enum_schemas!(
    ActivityType,
    EnvironmentType,
    Geography,
    Role,
    SolutionType,
    SubscriptionFormat,
);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn body(content_type: Option<&str>, bytes: &[u8]) -> RawBody {
        RawBody {
            content_type: content_type.map(str::to_owned),
            bytes: Some(Bytes::copy_from_slice(bytes)),
        }
    }

    /// Any JSON value, a few levels deep, with keys from a small set so that lookups hit.
    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<String>().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[ab]{0,2}", inner, 0..4)
                    .prop_map(|members| Value::Object(members.into_iter().collect())),
            ]
        })
    }

    /// What `required_str_at` must answer: the string at `path`, if there is one.
    fn string_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
        path.iter()
            .try_fold(value, |v, key| v.as_object()?.get(*key))
            .and_then(Value::as_str)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

        /// Any bytes: an object exactly when serde_json reads a JSON object from them.
        #[test]
        fn any_bytes_are_an_object_or_invalid_request(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let read = body(Some("application/json"), &bytes).json_object();
            let expected = matches!(serde_json::from_slice::<Value>(&bytes), Ok(Value::Object(_)));
            prop_assert_eq!(read.is_ok(), expected);
            if let Err(e) = read {
                prop_assert!(matches!(e, ApiError::InvalidRequest(_)));
            }
        }

        /// Nesting of any depth is refused past serde_json's recursion limit, never a crash.
        #[test]
        fn any_nesting_depth_is_an_answer(
            depth in prop_oneof![0usize..200, 0usize..20_000],
            open in "[\\[{]",
        ) {
            let (open, close) = if open == "[" { ("[", "]") } else { (r#"{"a":"#, "}") };
            let text = format!(r#"{{"a":{}1{}}}"#, open.repeat(depth), close.repeat(depth));
            let read = body(Some("application/json"), text.as_bytes()).any_json_object();
            prop_assert_eq!(read.is_ok(), depth < 127);
        }

        /// Lookups answer the string at the path, and an error (never a panic) otherwise.
        #[test]
        fn lookups_find_exactly_the_strings(
            value in json(),
            path in prop::collection::vec("[ab]{0,2}", 1..4),
        ) {
            let bytes = serde_json::to_vec(&value).unwrap();
            let read = body(Some("application/json"), &bytes).json_object();
            prop_assert_eq!(read.is_ok(), value.is_object());
            if let Ok(object) = read {
                let path: Vec<&str> = path.iter().map(String::as_str).collect();
                let at = object.required_str_at(&path, "target").ok();
                prop_assert_eq!(at, string_at(&value, &path));
                let first = object.required_str(path[0]).ok();
                prop_assert_eq!(first, string_at(&value, &path[..1]));
            }
        }

        /// Any Content-Type: a lowercase media type without parameters, or none.
        #[test]
        fn any_content_type_is_a_media_type_or_none(content_type in any::<String>()) {
            if let Some(media_type) = body(Some(&content_type), b"{}").media_type() {
                prop_assert!(!media_type.contains(';'));
                prop_assert_eq!(media_type.trim(), media_type.as_str());
                prop_assert!(!media_type.bytes().any(|b| b.is_ascii_uppercase()));
            }
        }
    }

    #[test]
    fn only_a_utf8_charset_is_json() {
        for (content_type, media_type) in [
            ("application/json", Some("application/json")),
            ("Application/JSON; charset=UTF-8", Some("application/json")),
            (
                "application/json;charset=\"utf-8\"",
                Some("application/json"),
            ),
            ("application/json; charset=latin1", None),
            ("application/json; CHARSET=iso-8859-1", None),
        ] {
            let read = body(Some(content_type), b"{}").media_type();
            assert_eq!(read.as_deref(), media_type, "{content_type}");
        }
    }
}
