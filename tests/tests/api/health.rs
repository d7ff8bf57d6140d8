use e2e::TestApp;
use serde_json::json;

#[tokio::test]
async fn health_answers_the_version_and_that_the_table_answers_without_a_token() {
    let app = TestApp::new();

    let reply = app.get("/health", None).await;

    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(reply.body, json!({"status": "ok", "version": version, "table": "ok"}));
    assert_eq!(reply.header("cache-control"), Some("no-store"));
}
