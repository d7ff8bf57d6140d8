use e2e::TestApp;

#[tokio::test]
async fn a_body_over_16_kib_gives_413_in_the_house_format() {
    let app = TestApp::new();
    let body = format!(r#"{{"username": "{}"}}"#, "x".repeat(17 * 1024));

    let reply = app.post_raw("/register", "application/json", body.into_bytes()).await;

    assert_eq!(reply.status, 413, "{:?}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert!(reply.detail().contains("16384"), "{:?}", reply.body);
}

#[tokio::test]
async fn errors_are_json_with_a_detail_and_no_internals() {
    let app = TestApp::new();

    let reply = app.post_raw("/register", "application/json", b"[]".to_vec()).await;

    assert_eq!(reply.header("content-type"), Some("application/json"));
    let text = reply.body.to_string();
    for leak in ["clinic", "dynamodb", "Dynamo", "serde", "panicked"] {
        assert!(!text.contains(leak), "{leak} in {text}");
    }
}
