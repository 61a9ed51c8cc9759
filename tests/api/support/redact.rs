//! Redactions that keep a snapshot the same from run to run. What a run makes up (ids, times,
//! tokens, the server's port) is checked for its form and shown by name.

use insta::internals::{Content, ContentPath, Redaction};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use super::TestApp;

fn text(value: &Content) -> &str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("expected a string, got {value:?}"))
}

pub fn is_uuid(s: &str) -> bool {
    s.len() == 36 && uuid::Uuid::parse_str(s).is_ok() && s == s.to_lowercase()
}

/// An id the test does not know: a lowercase, hyphenated UUID, shown as `[id]`.
pub fn id() -> Redaction {
    insta::dynamic_redaction(|value: Content, _: ContentPath<'_>| {
        assert!(is_uuid(text(&value)), "not a lowercase UUID: {value:?}");
        "[id]"
    })
}

/// A time: RFC 3339 in UTC with milliseconds (`2025-01-02T03:04:05.678Z`), shown as `[time]`.
pub fn time() -> Redaction {
    insta::dynamic_redaction(|value: Content, _: ContentPath<'_>| {
        let s = text(&value);
        assert!(
            OffsetDateTime::parse(s, &Rfc3339).is_ok(),
            "not RFC 3339: {s}"
        );
        assert!(
            s.ends_with('Z') && s.len() == 24,
            "not UTC milliseconds: {s}"
        );
        "[time]"
    })
}

/// Values the test knows, each replaced by its name wherever it occurs in a string: a link then
/// shows its path and which ids it holds (`[url]/v1/environments/[env]`). As a redaction it
/// reaches every string below its selector, so `".**"` renames a whole body.
#[derive(Clone, Debug, Default)]
pub struct Names(Vec<(String, String)>);

impl Names {
    pub fn with(mut self, value: impl Into<String>, name: &str) -> Self {
        let value = value.into();
        assert!(!value.is_empty(), "{name} names nothing");
        self.0.push((value, name.to_owned()));
        self
    }

    pub fn apply(&self, text: &str) -> String {
        self.0.iter().fold(text.to_owned(), |text, (value, name)| {
            text.replace(value, name)
        })
    }

    fn rename(&self, value: Content) -> Content {
        match value {
            Content::Map(entries) => Content::Map(
                entries
                    .into_iter()
                    .map(|(key, value)| (key, self.rename(value)))
                    .collect(),
            ),
            Content::Seq(items) => {
                Content::Seq(items.into_iter().map(|v| self.rename(v)).collect())
            }
            other => match other.as_str() {
                Some(text) => Content::from(self.apply(text)),
                None => other,
            },
        }
    }

    /// The redaction that applies these names.
    pub fn redaction(&self) -> Redaction {
        let names = self.clone();
        insta::dynamic_redaction(move |value: Content, _: ContentPath<'_>| names.rename(value))
    }
}

impl TestApp {
    /// Names for a snapshot, starting with the server's URL (its port changes every run).
    pub fn names(&self) -> Names {
        Names::default().with(&self.url, "[url]")
    }
}
