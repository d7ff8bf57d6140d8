//! Account management by Admins: listing, changing role and status, and what a change does to
//! the account's tokens. The last-Admin rule needs a table with no other active Admin, so it is
//! tested apart, in `tests/last_admin.rs`.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use e2e::{Account, PASSWORD, TestApp, future_slot, next_link, query_param};
use serde_json::{Value, json};

/// The ids of every account a listing shows, all pages followed.
async fn listed_ids(app: &TestApp, admin: &str, path: &str) -> Vec<u64> {
    app.all_pages(path, admin)
        .await
        .iter()
        .flat_map(|page| page.body.as_array().cloned().unwrap_or_default())
        .map(|user| user["id"].as_u64().expect("an id"))
        .collect()
}

#[tokio::test]
async fn admins_list_accounts_by_role_and_status_and_page_through_them() {
    let app = TestApp::new();
    let admin = app.admin_token().await;
    let doctor = app.account("Doctor", Some(&admin)).await;
    let disabled = app.account("Patient", None).await;
    assert_eq!(
        app.update_user(&admin, disabled.id, json!({"status": "disabled"})).await.status,
        200
    );

    let doctors = listed_ids(&app, &admin, "/users?role=Doctor&limit=100").await;
    let active_doctors = listed_ids(&app, &admin, "/users?role=Doctor&status=active").await;
    let disabled_accounts = listed_ids(&app, &admin, "/users?status=disabled&limit=100").await;
    let disabled_patients = listed_ids(&app, &admin, "/users?role=Patient&status=disabled").await;

    assert!(doctors.contains(&doctor.id) && active_doctors.contains(&doctor.id));
    assert!(!disabled_accounts.contains(&doctor.id));
    assert!(disabled_accounts.contains(&disabled.id) && disabled_patients.contains(&disabled.id));
    assert!(!active_doctors.contains(&disabled.id));
}

/// Other tests change accounts meanwhile; with a status filter an account that changes status
/// leaves or rejoins the listing at its place, so none can show twice.
#[tokio::test]
async fn every_account_shows_once_across_pages_with_no_private_fields() {
    let app = TestApp::new();
    let admin = app.admin_token().await;
    let mine: Vec<Account> =
        futures::future::join_all((0..3).map(|_| app.account("Doctor", Some(&admin)))).await;
    let path = "/users?role=Doctor&status=active&limit=2";

    let first = app.get(path, Some(&admin)).await;
    let pages = app.all_pages(path, &admin).await;

    assert_eq!(first.status, 200, "{:?}", first.body);
    assert_eq!(first.body.as_array().map(Vec::len), Some(2));
    let link = next_link(&first).expect("a next page");
    assert_eq!(query_param(&link, "limit").as_deref(), Some("2"));
    let users: Vec<&Value> =
        pages.iter().flat_map(|p| p.body.as_array().expect("an array")).collect();
    let ids: Vec<u64> = users.iter().map(|u| u["id"].as_u64().expect("an id")).collect();
    let distinct: HashSet<&u64> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len(), "an account shown twice");
    for account in &mine {
        assert!(ids.contains(&account.id), "{} missing", account.id);
    }
    for user in users {
        assert_eq!((&user["role"], &user["status"]), (&json!("Doctor"), &json!("active")));
        assert!(user.get("password_hash").is_none() && user.get("token_version").is_none());
    }
}

#[tokio::test]
async fn only_admins_list_accounts_and_bad_filters_or_cursors_are_422() {
    let app = TestApp::new();
    let admin = app.admin_token().await;
    let patient = app.account("Patient", None).await;
    let other_admin = app.admin_token().await;

    assert_eq!(app.get("/users", Some(&patient.token)).await.status, 403);
    assert_eq!(app.get("/users", None).await.status, 401);
    for (query, field) in [("role=doctor", "role"), ("status=gone", "status"), ("limit=0", "limit")]
    {
        let reply = app.get(&format!("/users?{query}"), Some(&admin)).await;
        assert_eq!(reply.status, 422, "{query}: {:?}", reply.body);
        assert_eq!(reply.body["errors"][0]["field"], field, "{query}");
    }
    let first = app.get("/users?limit=1", Some(&admin)).await;
    let link = next_link(&first).expect("more than one account");
    let stolen = app.get_link(&link, &other_admin).await;
    assert_eq!(stolen.status, 422, "another Admin's cursor: {:?}", stolen.body);
}

#[tokio::test]
async fn an_admin_changes_a_role_and_the_account_signs_in_with_it() {
    let app = TestApp::new();
    let admin = app.admin_token().await;
    let patient = app.account("Patient", None).await;

    let reply = app.update_user(&admin, patient.id, json!({"role": "Doctor"})).await;

    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(
        (reply.body["id"].as_u64(), &reply.body["role"]),
        (Some(patient.id), &json!("Doctor"))
    );
    let token = app.token_for(&patient.person.email).await;
    assert_eq!(app.get("/users/me", Some(&token)).await.body["role"], "Doctor");
}

#[tokio::test]
async fn a_token_stops_working_as_soon_as_its_account_is_disabled() {
    let app = TestApp::new();
    let admin = app.admin_token().await;
    let patient = app.account("Patient", None).await;
    assert_eq!(app.get("/users/me", Some(&patient.token)).await.status, 200);

    let reply = app.update_user(&admin, patient.id, json!({"status": "disabled"})).await;

    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let refused = app.get("/users/me", Some(&patient.token)).await;
    assert_eq!(refused.status, 401, "{:?}", refused.body);
    assert_eq!(refused.header("www-authenticate"), Some("Bearer"));
    assert_eq!(app.get("/appointments/my", Some(&patient.token)).await.status, 401);
    // The endpoints that read the account in one batch with what they need next refuse it
    // too, and before they judge the body or the id.
    let booking = json!({"doctor_id": 1, "datetime": future_slot(3)});
    for body in [booking, json!({"doctor_id": "one"})] {
        let reply = app.post_json("/appointments", &body, Some(&patient.token)).await;
        assert_eq!(reply.status, 401, "{body}: {:?}", reply.body);
    }
    for id in ["1", "abc"] {
        let read = app.get(&format!("/appointments/{id}"), Some(&patient.token)).await;
        let path = format!("/appointments/{id}/cancel");
        let cancel = app.post_empty(&path, Some(&patient.token)).await;
        assert_eq!((read.status, cancel.status), (401, 401), "{id}: {:?}", read.body);
    }
    let login = app.login_form(&patient.person.email, PASSWORD).await;
    assert_eq!(login.status, 401, "a disabled account cannot sign in: {:?}", login.body);
    assert_eq!(
        login.body,
        json!({"detail": "Invalid credentials"}),
        "the same 401 as a wrong password"
    );

    let enabled = app.update_user(&admin, patient.id, json!({"status": "active"})).await;
    assert_eq!(enabled.status, 200);
    assert_eq!(app.get("/users/me", Some(&patient.token)).await.status, 401, "still the old token");
    assert_eq!(app.login_form(&patient.person.email, PASSWORD).await.status, 200);
}

#[tokio::test]
async fn a_token_stops_working_after_a_role_change_including_an_admins_own() {
    let app = TestApp::new();
    let admin = app.admin_token().await;
    let doctor = app.account("Doctor", Some(&admin)).await;
    let promoted = app.account("Patient", None).await;

    assert_eq!(app.update_user(&admin, doctor.id, json!({"role": "Patient"})).await.status, 200);
    assert_eq!(app.update_user(&admin, promoted.id, json!({"role": "Admin"})).await.status, 200);

    assert_eq!(app.get("/users/me", Some(&doctor.token)).await.status, 401);
    let with_old_token = app.get("/users", Some(&promoted.token)).await;
    assert_eq!(with_old_token.status, 401, "the Patient token does not become an Admin's");
    let new_admin = app.token_for(&promoted.person.email).await;
    assert_eq!(app.get("/users", Some(&new_admin)).await.status, 200);
    let demoted_admin = app.update_user(&new_admin, promoted.id, json!({"role": "Doctor"})).await;
    assert_eq!(demoted_admin.status, 200, "{:?}", demoted_admin.body);
    assert_eq!(app.get("/users", Some(&new_admin)).await.status, 401);
}

#[tokio::test]
async fn bad_patches_are_refused_with_the_field_named() {
    let app = TestApp::new();
    let admin = app.admin_token().await;
    let patient = app.account("Patient", None).await;

    let cases = [
        (json!({}), "body"),
        (json!({"role": "Superuser"}), "role"),
        (json!({"status": "sleeping"}), "status"),
        (json!({"email": "x@example.com"}), "email"),
    ];
    for (body, field) in cases {
        let reply = app.update_user(&admin, patient.id, body.clone()).await;
        assert_eq!(reply.status, 422, "{body}: {:?}", reply.body);
        assert_eq!(reply.body["errors"][0]["field"], field, "{body}");
    }
    let bad_id = app.patch_json("/users/abc", &json!({"status": "active"}), Some(&admin)).await;
    assert_eq!(bad_id.status, 422);
    assert_eq!(app.update_user(&admin, 77, json!({"status": "active"})).await.status, 404);
    let by_patient = app.update_user(&patient.token, patient.id, json!({"role": "Admin"})).await;
    assert_eq!(by_patient.status, 403, "{:?}", by_patient.body);
}

#[tokio::test]
async fn role_and_status_changes_land_in_the_audit_trail() {
    let app = TestApp::new();
    let admin = app.admin_account().await;
    let patient = app.account("Patient", None).await;

    let reply = app
        .update_user(&admin.token, patient.id, json!({"role": "Doctor", "status": "disabled"}))
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);

    let entity = patient.id.to_string();
    let wanted = ["CHANGE_USER_ROLE", "CHANGE_USER_STATUS"];
    let started = Instant::now();
    let records = loop {
        let path = format!("/audit-logs?user_id={}&limit=100", admin.id);
        let page = app.get(&path, Some(&admin.token)).await;
        assert_eq!(page.status, 200, "{:?}", page.body);
        let records: Vec<Value> = page.body.as_array().cloned().unwrap_or_default();
        let found = |action: &str| {
            records.iter().any(|r| r["action"] == action && r["entity_id"] == entity.as_str())
        };
        if wanted.iter().all(|a| found(a)) || started.elapsed() > Duration::from_secs(15) {
            break records;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for action in wanted {
        let record = records
            .iter()
            .find(|r| r["action"] == action && r["entity_id"] == entity.as_str())
            .unwrap_or_else(|| panic!("no {action} record: {records:?}"));
        assert_eq!((&record["role"], &record["outcome"]), (&json!("Admin"), &json!("success")));
    }
}
