//! An environment's bill of materials: the Ping products it is set up for. trustmail keeps it as
//! PingOne's clients send it (docs/ENVIRONMENTS.md says which members it interprets).

use serde_json::{Map, Value, json};

wire_enum!(
    /// PingOne's product types (its `EnumProductType`), every one its Terraform provider maps.
    ProductType {
        PingOneMfa => "PING_ONE_MFA",
        PingOneDavinci => "PING_ONE_DAVINCI",
        PingOneOrchestrate => "PING_ONE_ORCHESTRATE",
        PingOneRisk => "PING_ONE_RISK",
        PingOneFraud => "PING_ONE_FRAUD",
        PingOneProvisioning => "PING_ONE_PROVISIONING",
        PingDataSync => "PING_DATA_SYNC",
        PingDataGovernance => "PING_DATA_GOVERNANCE",
        PingOneForEnterprise => "PING_ONE_FOR_ENTERPRISE",
        PingIdSdk => "PING_ID_SDK",
        PingOneForSaas => "PING_ONE_FOR_SAAS",
        PingOneVerify => "PING_ONE_VERIFY",
        PingOneCredentials => "PING_ONE_CREDENTIALS",
        PingOneAuthorize => "PING_ONE_AUTHORIZE",
        PingOneBase => "PING_ONE_BASE",
        PingFederate => "PING_FEDERATE",
        PingAccess => "PING_ACCESS",
        PingDirectory => "PING_DIRECTORY",
        PingAuthorize => "PING_AUTHORIZE",
        PingId => "PING_ID",
        PingOneId => "PING_ONE_ID",
        PingIntelligence => "PING_INTELLIGENCE",
        PingCentral => "PING_CENTRAL",
    }
);

wire_enum!(
    /// The solution an environment was made for (set at create; PingOne ignores it on a PUT).
    SolutionType {
        Workforce => "WORKFORCE",
        Customer => "CUSTOMER",
        CiamTrial => "CIAM_TRIAL",
        WfTrial => "WF_TRIAL",
    }
);

wire_enum!(
    /// Tags a product may carry.
    ProductTag { DavinciMinimal => "DAVINCI_MINIMAL" }
);

/// PingOne's limit of custom bookmarks per product.
pub const MAX_BOOKMARKS: usize = 5;
/// PingOne's limit on a bookmark's name.
pub const MAX_BOOKMARK_NAME: usize = 50;

/// A member of a request body that is missing or wrong, named by its path (`products[0].type`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    #[error("{0} is required")]
    Required(String),
    #[error("{target}: {message}")]
    Invalid { target: String, message: String },
}

impl FieldError {
    fn invalid(target: &str, message: impl Into<String>) -> Self {
        Self::Invalid {
            target: target.to_owned(),
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillOfMaterials {
    pub solution_type: Option<SolutionType>,
    pub products: Vec<Product>,
}

/// One product; each optional member is answered only when it was sent, as PingOne does (its
/// Terraform provider tells an absent list from an empty one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    pub product_type: ProductType,
    pub description: Option<String>,
    pub console_href: Option<String>,
    pub tags: Option<Vec<ProductTag>>,
    pub bookmarks: Option<Vec<Bookmark>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bookmark {
    pub name: String,
    pub href: String,
}

impl Default for BillOfMaterials {
    /// What an environment made without one has: PingOne's base set of services alone (its
    /// Terraform provider defaults `services` to the same).
    fn default() -> Self {
        Self {
            solution_type: None,
            products: vec![Product {
                product_type: ProductType::PingOneBase,
                description: None,
                console_href: None,
                tags: None,
                bookmarks: None,
            }],
        }
    }
}

impl BillOfMaterials {
    /// Reads PingOne's `BillOfMaterials` object; `prefix` names where it sits in the body
    /// (`billOfMaterials.` in an environment, empty on its own). Read-only members PingOne
    /// assigns (`id`, `deployment`, times, links) are ignored.
    pub fn parse(value: &Value, prefix: &str) -> Result<Self, FieldError> {
        let at = |member: &str| format!("{prefix}{member}");
        let object = value.as_object().ok_or_else(|| {
            FieldError::invalid(prefix.trim_end_matches('.'), "must be an object.")
        })?;
        let solution_type = match object.get("solutionType") {
            None | Some(Value::Null) => None,
            Some(v) => Some(enum_value(v, &at("solutionType"))?),
        };
        let products = match object.get("products") {
            None | Some(Value::Null) => return Err(FieldError::Required(at("products"))),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| Product::parse(item, &at(&format!("products[{i}]"))))
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => return Err(FieldError::invalid(&at("products"), "must be an array.")),
        };
        for (i, product) in products.iter().enumerate() {
            if products[..i]
                .iter()
                .any(|p| p.product_type == product.product_type)
            {
                return Err(FieldError::invalid(
                    &at("products"),
                    format!("{} is listed more than once.", product.product_type),
                ));
            }
        }
        Ok(Self {
            solution_type,
            products,
        })
    }

    /// The wire form (and the stored one): only the members that were sent.
    pub fn to_json(&self) -> Value {
        let mut object = Map::new();
        if let Some(solution) = self.solution_type {
            object.insert("solutionType".into(), json!(solution.as_str()));
        }
        let products: Vec<Value> = self.products.iter().map(Product::to_json).collect();
        object.insert("products".into(), Value::Array(products));
        Value::Object(object)
    }
}

impl Product {
    fn parse(value: &Value, target: &str) -> Result<Self, FieldError> {
        let at = |member: &str| format!("{target}.{member}");
        let object = value
            .as_object()
            .ok_or_else(|| FieldError::invalid(target, "must be an object."))?;
        let product_type = match object.get("type") {
            None | Some(Value::Null) => return Err(FieldError::Required(at("type"))),
            Some(v) => enum_value(v, &at("type"))?,
        };
        let console_href = match object.get("console") {
            None | Some(Value::Null) => None,
            Some(Value::Object(console)) => Some(required_text(console, "href", &at("console"))?),
            Some(_) => return Err(FieldError::invalid(&at("console"), "must be an object.")),
        };
        let tags = optional_array(object, "tags", &at("tags"))?
            .map(|items| {
                items
                    .iter()
                    .enumerate()
                    .map(|(i, tag)| enum_value(tag, &format!("{}[{i}]", at("tags"))))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        let bookmarks = optional_array(object, "bookmarks", &at("bookmarks"))?
            .map(|items| Bookmark::parse_all(items, &at("bookmarks")))
            .transpose()?;
        Ok(Self {
            product_type,
            description: optional_text(object, "description", &at("description"))?,
            console_href,
            tags,
            bookmarks,
        })
    }

    fn to_json(&self) -> Value {
        let mut object = Map::new();
        object.insert("type".into(), json!(self.product_type.as_str()));
        if let Some(description) = &self.description {
            object.insert("description".into(), json!(description));
        }
        if let Some(href) = &self.console_href {
            object.insert("console".into(), json!({ "href": href }));
        }
        if let Some(tags) = &self.tags {
            let tags: Vec<&str> = tags.iter().map(ProductTag::as_str).collect();
            object.insert("tags".into(), json!(tags));
        }
        if let Some(bookmarks) = &self.bookmarks {
            let bookmarks: Vec<Value> = bookmarks
                .iter()
                .map(|b| json!({ "name": b.name, "href": b.href }))
                .collect();
            object.insert("bookmarks".into(), Value::Array(bookmarks));
        }
        Value::Object(object)
    }
}

impl Bookmark {
    fn parse_all(items: &[Value], target: &str) -> Result<Vec<Self>, FieldError> {
        if items.len() > MAX_BOOKMARKS {
            return Err(FieldError::invalid(
                target,
                format!("A product has at most {MAX_BOOKMARKS} bookmarks."),
            ));
        }
        let mut bookmarks: Vec<Self> = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let at = format!("{target}[{i}]");
            let object = item
                .as_object()
                .ok_or_else(|| FieldError::invalid(&at, "must be an object."))?;
            let name = required_text(object, "name", &at)?;
            if name.chars().count() > MAX_BOOKMARK_NAME {
                return Err(FieldError::invalid(
                    &format!("{at}.name"),
                    format!("A bookmark name has at most {MAX_BOOKMARK_NAME} characters."),
                ));
            }
            if bookmarks.iter().any(|b| b.name == name) {
                return Err(FieldError::invalid(
                    &format!("{at}.name"),
                    "Bookmark names must be unique within a product.",
                ));
            }
            let href = required_text(object, "href", &at)?;
            bookmarks.push(Self { name, href });
        }
        Ok(bookmarks)
    }
}

fn enum_value<T>(value: &Value, target: &str) -> Result<T, FieldError>
where
    T: std::str::FromStr<Err = super::UnknownValue>,
{
    let text = value
        .as_str()
        .ok_or_else(|| FieldError::invalid(target, "must be a string."))?;
    text.parse()
        .map_err(|e: super::UnknownValue| FieldError::invalid(target, e.to_string()))
}

/// A non-empty string member of `object`, named `{parent}.{member}` in errors.
fn required_text(
    object: &Map<String, Value>,
    member: &str,
    parent: &str,
) -> Result<String, FieldError> {
    let target = format!("{parent}.{member}");
    match object.get(member) {
        None | Some(Value::Null) => Err(FieldError::Required(target)),
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::String(_)) => Err(FieldError::invalid(&target, "must not be empty.")),
        Some(_) => Err(FieldError::invalid(&target, "must be a string.")),
    }
}

fn optional_text(
    object: &Map<String, Value>,
    member: &str,
    target: &str,
) -> Result<Option<String>, FieldError> {
    match object.get(member) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(FieldError::invalid(target, "must be a string.")),
    }
}

fn optional_array<'a>(
    object: &'a Map<String, Value>,
    member: &str,
    target: &str,
) -> Result<Option<&'a Vec<Value>>, FieldError> {
    match object.get(member) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => Ok(Some(items)),
        Some(_) => Err(FieldError::invalid(target, "must be an array.")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_sent_is_answered_and_nothing_more() {
        let sent = json!({
            "solutionType": "CUSTOMER",
            "products": [
                {"type": "PING_ONE_BASE"},
                {"type": "PING_FEDERATE", "console": {"href": "https://my-console-url"},
                 "bookmarks": [{"name": "Bookmark 1", "href": "https://my-bookmark-1"}]},
                {"type": "PING_ONE_DAVINCI", "tags": ["DAVINCI_MINIMAL"]},
                {"type": "PING_ONE_MFA", "tags": [], "bookmarks": []},
            ]
        });
        let bom = BillOfMaterials::parse(&sent, "").unwrap();
        assert_eq!(bom.to_json(), sent);
        assert_eq!(BillOfMaterials::parse(&bom.to_json(), "").unwrap(), bom);
    }

    #[test]
    fn read_only_members_are_dropped() {
        let sent = json!({"products": [{"type": "PING_ID", "id": "x", "deployment": {"id": "d"}}]});
        let bom = BillOfMaterials::parse(&sent, "").unwrap();
        assert_eq!(bom.to_json(), json!({"products": [{"type": "PING_ID"}]}));
    }

    #[test]
    fn errors_name_the_member() {
        let cases = [
            (json!({}), "billOfMaterials.products"),
            (
                json!({"products": [{}]}),
                "billOfMaterials.products[0].type",
            ),
            (
                json!({"products": [{"type": "SSO"}]}),
                "billOfMaterials.products[0].type",
            ),
            (
                json!({"products": [{"type": "PING_ONE_BASE", "tags": ["X"]}]}),
                "billOfMaterials.products[0].tags[0]",
            ),
            (
                json!({"products": [{"type": "PING_ONE_BASE", "console": {}}]}),
                "billOfMaterials.products[0].console.href",
            ),
            (
                json!({"products": [{"type": "PING_ONE_BASE"}, {"type": "PING_ONE_BASE"}]}),
                "billOfMaterials.products",
            ),
            (
                json!({"solutionType": "OTHER", "products": []}),
                "billOfMaterials.solutionType",
            ),
        ];
        for (body, target) in cases {
            let err = BillOfMaterials::parse(&body, "billOfMaterials.").unwrap_err();
            let named = match &err {
                FieldError::Required(t) => t,
                FieldError::Invalid { target, .. } => target,
            };
            assert_eq!(named, target, "{body}");
        }
    }

    #[test]
    fn bookmarks_are_limited_and_unique() {
        let six: Vec<Value> = (0..6)
            .map(|i| json!({"name": format!("b{i}"), "href": "https://x"}))
            .collect();
        let body = json!({"products": [{"type": "PING_ONE_BASE", "bookmarks": six}]});
        assert!(BillOfMaterials::parse(&body, "").is_err());
        let twice = json!([{"name": "a", "href": "https://x"}, {"name": "a", "href": "https://y"}]);
        let body = json!({"products": [{"type": "PING_ONE_BASE", "bookmarks": twice}]});
        assert!(BillOfMaterials::parse(&body, "").is_err());
    }
}
