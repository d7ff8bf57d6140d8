use e2e::TestApp;

#[tokio::test]
async fn openapi_json_describes_every_route_with_the_login_password_flow() {
    let app = TestApp::new();

    let reply = app.get("/openapi.json", None).await;

    assert_eq!(reply.status, 200);
    let doc = &reply.body;
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")), "{}", doc["openapi"]);
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["flows"]["password"]["tokenUrl"],
        "/login"
    );
    let routes = [
        ("/register", "post"),
        ("/login", "post"),
        ("/users/me", "get"),
        ("/setup-patient", "post"),
        ("/doctors/profile", "post"),
        ("/doctors", "get"),
        ("/appointments", "post"),
        ("/appointments/my", "get"),
        ("/appointments/{id}", "get"),
        ("/appointments/{id}/cancel", "post"),
        ("/audit-logs", "get"),
        ("/analytics", "get"),
        ("/analytics/{h3_index}", "get"),
        ("/users", "get"),
        ("/users/{id}", "patch"),
        ("/users/me/password", "post"),
        ("/health", "get"),
    ];
    for (path, method) in routes {
        assert!(doc["paths"][path][method].is_object(), "{method} {path} is documented");
    }
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
}
