use e2e::{PASSWORD, TestApp};
use serde_json::json;

#[tokio::test]
async fn the_oauth2_password_form_returns_a_bearer_token() {
    let app = TestApp::new();
    let email = app.register_patient().await;

    let reply = app.login_form(&email, PASSWORD).await;

    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["token_type"], "bearer");
    assert_eq!(reply.body["expires_in"], 1800);
    let token = reply.body["access_token"].as_str().expect("a token");
    assert_eq!(app.get("/users/me", Some(token)).await.body["email"], email);
}

#[tokio::test]
async fn swagger_uis_extra_oauth2_fields_are_accepted() {
    let app = TestApp::new();
    let email = app.register_patient().await;
    let form = format!(
        "grant_type=password&username={}&password={}&scope=&client_id=swagger&client_secret=",
        email.replace('@', "%40"),
        PASSWORD.replace(' ', "+")
    );

    let reply =
        app.post_raw("/login", "application/x-www-form-urlencoded", form.into_bytes()).await;

    assert_eq!(reply.status, 200, "{:?}", reply.body);
}

#[tokio::test]
async fn json_credentials_work_too_and_the_email_is_normalised() {
    let app = TestApp::new();
    let email = app.register_patient().await;
    let body = json!({"email": format!(" {} ", email.to_uppercase()), "password": PASSWORD});

    let reply = app.post_json("/login", &body, None).await;

    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["token_type"], "bearer");
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_get_the_same_401() {
    let app = TestApp::new();
    let email = app.register_patient().await;

    let wrong_password = app.login_form(&email, "not the password").await;
    let unknown_email = app.login_form("nobody-here@example.com", PASSWORD).await;

    for reply in [&wrong_password, &unknown_email] {
        assert_eq!(reply.status, 401, "{:?}", reply.body);
        assert_eq!(reply.body, json!({"detail": "Invalid credentials"}));
        assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
    }
}

#[tokio::test]
async fn missing_credentials_give_422_naming_the_field() {
    let app = TestApp::new();

    let reply = app
        .post_raw("/login", "application/x-www-form-urlencoded", b"username=a%40b.com".to_vec())
        .await;

    assert_eq!(reply.status, 422, "{:?}", reply.body);
    assert_eq!(reply.body["errors"][0]["field"], "password");
}

#[tokio::test]
async fn an_unsupported_body_type_gives_415() {
    let app = TestApp::new();

    let reply = app.post_raw("/login", "text/plain", b"hello".to_vec()).await;

    assert_eq!(reply.status, 415, "{:?}", reply.body);
    assert!(reply.detail().contains("form"), "{:?}", reply.body);
}
