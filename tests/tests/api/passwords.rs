//! Password changes and the password rules: common passwords are refused at registration and on
//! change; a change ends the sessions opened before it.

use e2e::{PASSWORD, Person, TestApp};
use serde_json::json;
use std::time::{Duration, Instant};

const NEW_PASSWORD: &str = "a fresh and long passphrase";

#[tokio::test]
async fn a_password_change_needs_the_current_password_and_ends_older_sessions() {
    let app = TestApp::new();
    let account = app.account("Patient", None).await;
    let second_session = app.token_for(&account.person.email).await;

    let reply = app.change_password(&account.token, PASSWORD, NEW_PASSWORD).await;

    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["token_type"], "bearer");
    let new_token = reply.body["access_token"].as_str().expect("a token");
    assert_eq!(app.get("/users/me", Some(new_token)).await.status, 200);
    for old in [&account.token, &second_session] {
        let refused = app.get("/users/me", Some(old)).await;
        assert_eq!(refused.status, 401, "{:?}", refused.body);
    }
    assert_eq!(app.login_form(&account.person.email, PASSWORD).await.status, 401);
    assert_eq!(app.login_form(&account.person.email, NEW_PASSWORD).await.status, 200);
}

#[tokio::test]
async fn a_wrong_current_password_is_403_and_changes_nothing() {
    let app = TestApp::new();
    let account = app.account("Patient", None).await;

    let reply = app.change_password(&account.token, "not my password", NEW_PASSWORD).await;

    assert_eq!(reply.status, 403, "{:?}", reply.body);
    assert!(reply.detail().contains("current password"), "{:?}", reply.body);
    assert_eq!(app.get("/users/me", Some(&account.token)).await.status, 200);
    assert_eq!(app.login_form(&account.person.email, PASSWORD).await.status, 200);
}

#[tokio::test]
async fn a_new_password_that_breaks_the_rules_is_422_naming_new_password() {
    let app = TestApp::new();
    let account = app.account("Patient", None).await;

    for (new, why) in
        [("short", "at least 8"), ("Password123", "commonly used"), ("QWERTYUIOP", "commonly used")]
    {
        let reply = app.change_password(&account.token, PASSWORD, new).await;

        assert_eq!(reply.status, 422, "{new}: {:?}", reply.body);
        assert_eq!(reply.body["errors"][0]["field"], "new_password");
        assert!(reply.detail().contains(why), "{new}: {:?}", reply.body);
    }
    let missing = app
        .post_json(
            "/users/me/password",
            &json!({"new_password": NEW_PASSWORD}),
            Some(&account.token),
        )
        .await;
    assert_eq!(missing.status, 422);
    assert_eq!(missing.body["errors"][0]["field"], "current_password");
    assert_eq!(app.get("/users/me", Some(&account.token)).await.status, 200, "nothing changed");
}

#[tokio::test]
async fn a_password_change_needs_a_valid_token() {
    let app = TestApp::new();
    let body = json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD});

    let reply = app.post_json("/users/me/password", &body, None).await;

    assert_eq!(reply.status, 401, "{:?}", reply.body);
}

#[tokio::test]
async fn common_passwords_are_refused_at_registration_whatever_their_case() {
    let app = TestApp::new();

    for password in ["password1", "Iloveyou1", " 12345678 ", "qwerty123"] {
        let person = Person::new();
        let mut body = person.json("Patient");
        body["password"] = json!(password);

        let reply = app.register(&body, None).await;

        assert_eq!(reply.status, 422, "{password:?}: {:?}", reply.body);
        assert_eq!(reply.body["errors"][0]["field"], "password");
        assert!(reply.detail().contains("commonly used"), "{:?}", reply.body);
    }
}

#[tokio::test]
async fn password_changes_land_in_the_audit_trail_with_their_outcome() {
    let app = TestApp::new();
    let admin = app.admin_account().await;
    let account = app.account("Patient", None).await;

    let refused = app.change_password(&account.token, "not the password", NEW_PASSWORD).await;
    assert_eq!(refused.status, 403, "{:?}", refused.body);
    let changed = app.change_password(&account.token, PASSWORD, NEW_PASSWORD).await;
    assert_eq!(changed.status, 200, "{:?}", changed.body);

    let path = format!("/audit-logs?user_id={}&action=CHANGE_PASSWORD&limit=100", account.id);
    let started = Instant::now();
    let outcomes = loop {
        let page = app.get(&path, Some(&admin.token)).await;
        assert_eq!(page.status, 200, "{:?}", page.body);
        let mut outcomes: Vec<String> = page
            .body
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|r| r["outcome"].as_str().unwrap_or_default().to_owned())
            .collect();
        outcomes.sort();
        if outcomes.len() >= 2 || started.elapsed() > Duration::from_secs(15) {
            break outcomes;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(outcomes, ["failure", "success"]);
}
