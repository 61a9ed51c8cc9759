//! The forms a value may be written in beyond serde's own: environment variables are strings,
//! so lists may come comma-separated and enums by name.

use secrecy::SecretString;
use serde::{Deserialize, Deserializer, Serializer};

/// A value named by a string that the type parses (the wire enums of `domain`).
pub(super) fn parsed<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    String::deserialize(d)?
        .parse()
        .map_err(serde::de::Error::custom)
}

/// Environment variables are strings; an array may be a TOML array or comma-separated.
pub(super) fn string_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::Many(v) => v,
        OneOrMany::One(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

pub(super) fn optional_string_or_list<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<String>>, D::Error> {
    string_or_list(d).map(Some)
}

/// Secrets serialize (only to list the keys) as an empty string.
pub(super) fn redacted<S: Serializer>(_: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str("")
}

/// A wire enum by its name, as `parsed` reads it.
pub(super) fn by_name<S: Serializer>(
    value: &crate::domain::DkimAlgorithm,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(value.as_str())
}
