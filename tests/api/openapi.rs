//! The OpenAPI document is generated from the route list; a snapshot guards it.

#[test]
fn openapi_document_is_stable() {
    let doc = trustmail::api::openapi("http://trustmail.example");
    insta::assert_json_snapshot!(serde_json::to_value(&doc).unwrap());
}
