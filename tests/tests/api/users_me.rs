use e2e::{Person, TestApp, expired_token};
use shared::users::Role;

#[tokio::test]
async fn a_signed_in_user_sees_their_own_profile() {
    let app = TestApp::new();
    let person = Person::new();
    let created = app.register(&person.json("Patient"), None).await;
    let token = app.token_for(&person.email).await;

    let reply = app.get("/users/me", Some(&token)).await;

    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["id"], created.body["id"]);
    assert_eq!(reply.body["username"], person.username);
    assert_eq!(reply.body["email"], person.email);
    assert_eq!(reply.body["role"], "Patient");
    assert_eq!(reply.body["status"], "active");
    assert!(reply.body.get("password_hash").is_none());
}

#[tokio::test]
async fn no_token_gives_401_with_a_bearer_challenge() {
    let app = TestApp::new();

    let reply = app.get("/users/me", None).await;

    assert_eq!(reply.status, 401, "{:?}", reply.body);
    assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
    assert!(reply.detail().contains("Bearer"), "{:?}", reply.body);
}

#[tokio::test]
async fn malformed_expired_and_forged_tokens_give_401() {
    let app = TestApp::new();
    let token = app.token_for(&app.register_patient().await).await;
    let (head, rest) = token.split_once('.').expect("a JWT");
    let (claims, _signature) = rest.split_once('.').expect("a JWT");
    let forged = format!("{head}.{claims}.c2lnbmF0dXJl");
    let unsigned = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{claims}.");

    for authorization in [
        "Bearer garbage".to_owned(),
        format!("Bearer {}", expired_token(Role::Patient)),
        format!("Bearer {forged}"),
        format!("Bearer {unsigned}"),
        format!("Basic {token}"),
    ] {
        let reply = app.get_with_authorization("/users/me", &authorization).await;

        assert_eq!(reply.status, 401, "{authorization}: {:?}", reply.body);
        assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
    }
}
