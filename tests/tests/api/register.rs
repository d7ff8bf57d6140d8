use e2e::{PASSWORD, Person, TestApp, expired_token};
use futures::future::join_all;
use serde_json::json;

#[tokio::test]
async fn a_patient_registers_and_gets_the_new_user_back() {
    let app = TestApp::new();
    let person = Person::new();

    let reply = app.register(&person.json("Patient"), None).await;

    assert_eq!(reply.status, 201, "{:?}", reply.body);
    assert_eq!(reply.body["message"], "User registered successfully");
    assert_eq!(reply.body["username"], person.username);
    assert_eq!(reply.body["email"], person.email);
    assert_eq!(reply.body["role"], "Patient");
    let id = reply.body["id"].as_u64().expect("an integer id");
    assert!((1..1 << 53).contains(&id), "{id}");
    let text = reply.body.to_string();
    assert!(!text.contains("argon2") && !text.contains(PASSWORD), "{text}");
}

#[tokio::test]
async fn the_role_defaults_to_patient() {
    let app = TestApp::new();
    let person = Person::new();
    let body = json!({"username": person.username, "email": person.email, "password": PASSWORD});

    let reply = app.register(&body, None).await;

    assert_eq!(reply.status, 201, "{:?}", reply.body);
    assert_eq!(reply.body["role"], "Patient");
}

#[tokio::test]
async fn emails_differing_only_in_case_and_spaces_are_one_account() {
    let app = TestApp::new();
    let person = Person::new();
    let shouted = json!({
        "username": person.username,
        "email": format!("  {}  ", person.email.to_uppercase()),
        "password": PASSWORD,
    });
    let first = app.register(&shouted, None).await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    assert_eq!(first.body["email"], person.email, "stored trimmed and lower-cased");

    let again = Person { username: Person::new().username, email: person.email.clone() };
    let reply = app.register(&again.json("Patient"), None).await;

    assert_eq!(reply.status, 409, "{:?}", reply.body);
    assert_eq!(reply.detail(), "Email already registered");
}

#[tokio::test]
async fn a_taken_username_is_refused_whatever_its_case() {
    let app = TestApp::new();
    let person = Person::new();
    assert_eq!(app.register(&person.json("Patient"), None).await.status, 201);

    let other = Person { username: person.username.to_uppercase(), email: Person::new().email };
    let reply = app.register(&other.json("Patient"), None).await;

    assert_eq!(reply.status, 409, "{:?}", reply.body);
    assert_eq!(reply.detail(), "Username already taken");
}

#[tokio::test]
async fn doctor_and_admin_accounts_need_an_admin() {
    let app = TestApp::new();
    let patient_token = app.token_for(&app.register_patient().await).await;

    for role in ["Doctor", "Admin"] {
        let anonymous = app.register(&Person::new().json(role), None).await;
        assert_eq!(anonymous.status, 403, "{role} without a token: {:?}", anonymous.body);
        assert_eq!(anonymous.detail(), "Only an Admin can create Doctor or Admin accounts.");

        let by_patient = app.register(&Person::new().json(role), Some(&patient_token)).await;
        assert_eq!(by_patient.status, 403, "{role} by a patient: {:?}", by_patient.body);
    }
}

#[tokio::test]
async fn an_admin_creates_doctors_and_admins() {
    let app = TestApp::new();
    let admin_token = app.admin_token().await;

    for role in ["Doctor", "Admin"] {
        let person = Person::new();
        let reply = app.register(&person.json(role), Some(&admin_token)).await;

        assert_eq!(reply.status, 201, "{role}: {:?}", reply.body);
        assert_eq!(reply.body["role"], role);
        let token = app.token_for(&person.email).await;
        assert_eq!(app.get("/users/me", Some(&token)).await.body["role"], role);
    }
}

#[tokio::test]
async fn a_malformed_or_expired_token_is_401_even_for_a_patient_registration() {
    let app = TestApp::new();
    let expired = expired_token(shared::users::Role::Admin);

    for token in ["not-a-jwt", expired.as_str()] {
        let reply = app.register(&Person::new().json("Doctor"), Some(token)).await;

        assert_eq!(reply.status, 401, "{:?}", reply.body);
        assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
    }
    let reply = app.register(&Person::new().json("Patient"), Some("not-a-jwt")).await;
    assert_eq!(reply.status, 401);
}

#[tokio::test]
async fn each_invalid_field_gives_422_naming_it() {
    let app = TestApp::new();
    let p = Person::new();
    let cases = [
        (json!({"email": p.email, "password": PASSWORD}), "username"),
        (json!({"username": p.username, "password": PASSWORD}), "email"),
        (json!({"username": p.username, "email": p.email}), "password"),
        (json!({"username": p.username, "email": "nope", "password": PASSWORD}), "email"),
        (json!({"username": p.username, "email": p.email, "password": "short"}), "password"),
        (
            json!({"username": p.username, "email": p.email, "password": "x".repeat(1025)}),
            "password",
        ),
        (json!({"username": "   ", "email": p.email, "password": PASSWORD}), "username"),
        (json!({"username": "u".repeat(51), "email": p.email, "password": PASSWORD}), "username"),
        (
            json!({"username": p.username, "email": p.email, "password": PASSWORD,
                "role": "Nurse"}),
            "role",
        ),
        (json!({"username": 42, "email": p.email, "password": PASSWORD}), "username"),
        (json!(["not", "an", "object"]), "body"),
    ];

    for (body, field) in cases {
        let reply = app.register(&body, None).await;

        assert_eq!(reply.status, 422, "{body}: {:?}", reply.body);
        assert_eq!(reply.body["errors"][0]["field"], field, "{body}: {:?}", reply.body);
        assert!(reply.detail().contains(field), "{:?}", reply.body);
    }
}

#[tokio::test]
async fn a_body_that_is_not_json_gives_422() {
    let app = TestApp::new();

    let reply = app.post_raw("/register", "application/json", b"{not json".to_vec()).await;

    assert_eq!(reply.status, 422, "{:?}", reply.body);
    assert_eq!(reply.body["errors"][0]["field"], "body");
}

#[tokio::test]
async fn concurrent_registrations_with_one_email_give_exactly_one_201() {
    let app = TestApp::new();
    let email = Person::new().email;
    let attempts = 12;

    let replies = join_all((0..attempts).map(|_| {
        let person = Person { username: Person::new().username, email: email.clone() };
        let app = &app;
        async move { app.register(&person.json("Patient"), None).await }
    }))
    .await;

    let created = replies.iter().filter(|r| r.status == 201).count();
    let conflicts = replies.iter().filter(|r| r.status == 409).count();
    assert_eq!((created, conflicts), (1, attempts - 1), "{replies:?}");
}
