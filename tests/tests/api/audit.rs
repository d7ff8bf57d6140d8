use std::time::{Duration, Instant};

use e2e::{Account, TestApp, emulator_clients, future_slot, trace, unique_tag};
use futures::future::join_all;
use serde_json::Value;
use shared::events::{Action, DomainEvent, EntityType, EventBus, OutboxStore};
use shared::ids::RandomIds;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const NEW_YORK: (f64, f64) = (40.7128, -74.0060);
/// How long an event may take to become a record before a test gives up.
const PATIENCE: Duration = Duration::from_secs(15);

/// Every record of an audit listing, all pages followed.
async fn records(app: &TestApp, admin: &str, query: &str) -> Vec<Value> {
    let path = format!("/audit-logs?limit=100&{query}");
    let pages = app.all_pages(&path, admin).await;
    pages
        .iter()
        .flat_map(|page| {
            assert_eq!(page.status, 200, "{path}: {:?}", page.body);
            page.body.as_array().cloned().unwrap_or_default()
        })
        .collect()
}

/// Polls a listing until `done` holds (or the patience runs out) and returns what it saw last.
async fn poll(
    app: &TestApp,
    admin: &str,
    query: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let found = records(app, admin, query).await;
        if done(&found) || started.elapsed() > PATIENCE {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn count(records: &[Value], action: &str, entity_id: Option<u64>) -> usize {
    let entity = entity_id.map(|id| id.to_string());
    records
        .iter()
        .filter(|r| r["action"] == action)
        .filter(|r| entity.as_ref().is_none_or(|e| r["entity_id"] == e.as_str()))
        .count()
}

fn since(t: OffsetDateTime) -> String {
    (t - time::Duration::seconds(5)).format(&Rfc3339).expect("a time")
}

#[tokio::test]
async fn each_kind_of_action_appears_in_the_audit_trail_once() {
    let app = TestApp::new();
    let started = OffsetDateTime::now_utc();
    let admin = app.admin_token().await;
    let specialization = format!("Audit {}", unique_tag());
    let (doctor_token, doctor_id) =
        app.doctor(&admin, &specialization, NEW_YORK.0, NEW_YORK.1).await;
    let patient: Account = app.account("Patient", None).await;
    assert_eq!(app.login_form(&patient.person.email, "not the password").await.status, 401);
    assert_eq!(app.setup_patient(&patient.token, NEW_YORK.0, NEW_YORK.1).await.status, 201);
    let booked = app.book(&patient.token, doctor_id, &future_slot(3)).await;
    assert_eq!(booked.status, 201, "{:?}", booked.body);
    let appointment_id = booked.body["id"].as_u64().expect("an id");
    let cancel = format!("/appointments/{appointment_id}/cancel");
    assert_eq!(app.post_empty(&cancel, Some(&patient.token)).await.status, 200);
    assert_eq!(app.get("/appointments/my", Some(&doctor_token)).await.status, 200);

    let by_patient = format!("user_id={}", patient.id);
    let expected = ["LOGIN_SUCCESS", "SETUP_PATIENT", "CREATE_APPOINTMENT", "CANCEL_APPOINTMENT"];
    let mine =
        poll(&app, &admin, &by_patient, |r| expected.iter().all(|a| count(r, a, None) >= 1)).await;
    let from = since(started);
    let registered = format!("action=REGISTER_USER&from={from}");
    let registrations =
        poll(&app, &admin, &registered, |r| count(r, "REGISTER_USER", Some(patient.id)) >= 1).await;
    let failed = format!("action=LOGIN_FAILURE&from={from}");
    let failures =
        poll(&app, &admin, &failed, |r| count(r, "LOGIN_FAILURE", Some(patient.id)) >= 1).await;
    let doctor_reads = format!("user_id={doctor_id}&action=READ_HEALTH_DATA");
    let reads = poll(&app, &admin, &doctor_reads, |r| !r.is_empty()).await;

    for action in expected {
        assert_eq!(count(&mine, action, None), 1, "{action}: {mine:#?}");
    }
    assert_eq!(count(&mine, "CREATE_APPOINTMENT", Some(appointment_id)), 1);
    assert_eq!(count(&registrations, "REGISTER_USER", Some(patient.id)), 1);
    assert_eq!(count(&failures, "LOGIN_FAILURE", Some(patient.id)), 1);
    assert_eq!(reads.len(), 1, "{reads:#?}");
    let record = &mine[0];
    for field in ["id", "user_id", "action", "entity_type", "entity_id", "timestamp"] {
        assert!(record.get(field).is_some(), "{field} in {record}");
    }
    assert_eq!(record["user_id"], patient.id);
    assert!(record["request_id"].is_string(), "{record}");
}

#[tokio::test]
async fn a_burst_of_sixty_logins_leaves_exactly_sixty_records() {
    let app = TestApp::new();
    let admin = app.admin_token().await;
    let patient = app.account("Patient", None).await;
    let burst = 60;

    let replies =
        join_all((0..burst).map(|_| app.login_form(&patient.person.email, e2e::PASSWORD))).await;
    assert!(replies.iter().all(|r| r.status == 200), "every login succeeds");

    // One login more: the one that made the account's token.
    let expected = burst + 1;
    let query = format!("user_id={}&action=LOGIN_SUCCESS", patient.id);
    let found = poll(&app, &admin, &query, |r| r.len() >= expected).await;
    assert_eq!(found.len(), expected, "records written equal events published");
    let mut ids: Vec<_> = found.iter().map(|r| r["id"].as_u64().expect("an id")).collect();
    ids.dedup();
    assert_eq!(ids.len(), expected, "no record twice");
    let (store, _) = emulator_clients().await;
    let stuck = store.pending(OffsetDateTime::now_utc(), 1000).await.expect("the outbox");
    let stuck_here =
        stuck.iter().filter(|e| e.detail.actor.is_some_and(|a| a.user_id.get() == patient.id));
    assert_eq!(stuck_here.count(), 0, "nothing of the burst is left in the outbox");
}

#[tokio::test]
async fn a_change_leaves_the_outbox_once_its_event_is_in_the_audit_trail() {
    let app = TestApp::new();
    let admin = app.admin_token().await;
    let (_, doctor_id) = app.doctor(&admin, "Outbox", NEW_YORK.0, NEW_YORK.1).await;
    let patient = app.patient_at(NEW_YORK.0, NEW_YORK.1).await;
    let booked = app.book(&patient.token, doctor_id, &future_slot(5)).await;
    assert_eq!(booked.status, 201, "{:?}", booked.body);

    let query = format!("user_id={}", patient.id);
    let changes = ["SETUP_PATIENT", "CREATE_APPOINTMENT"];
    let found =
        poll(&app, &admin, &query, |r| changes.iter().all(|a| count(r, a, None) == 1)).await;
    let event_ids: Vec<u64> = found
        .iter()
        .filter(|r| changes.iter().any(|a| r["action"] == *a))
        .map(|r| r["id"].as_u64().expect("an event id"))
        .collect();
    assert_eq!(event_ids.len(), 2, "{found:#?}");

    // The recorder deletes each item right after writing its record.
    let (store, _) = emulator_clients().await;
    let started = Instant::now();
    let left = loop {
        let pending = store.pending(OffsetDateTime::now_utc(), 10_000).await.expect("the outbox");
        let left: Vec<u64> =
            pending.iter().map(|e| e.id()).filter(|id| event_ids.contains(id)).collect();
        if left.is_empty() || started.elapsed() > PATIENCE {
            break left;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(left.is_empty(), "still in the outbox after being audited: {left:?}");
}

#[tokio::test]
async fn an_event_delivered_twice_leaves_one_record() {
    let app = TestApp::new();
    let admin = app.admin_token().await;
    let (_, bus) = emulator_clients().await;
    let entity = format!("duplicate-{}", unique_tag());
    let event = DomainEvent::new(
        &RandomIds,
        &trace(),
        None,
        Action::LoginFailure,
        EntityType::User,
        Some(entity.clone()),
    )
    .failed();

    for _ in 0..2 {
        assert_eq!(bus.put(std::slice::from_ref(&event)).await.expect("published"), vec![true]);
    }
    let query = format!("action=LOGIN_FAILURE&from={}", since(OffsetDateTime::now_utc()));
    let found =
        poll(&app, &admin, &query, |r| r.iter().any(|x| x["entity_id"] == entity.as_str())).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let again = records(&app, &admin, &query).await;
    let matching: Vec<_> = again.iter().filter(|r| r["entity_id"] == entity.as_str()).collect();
    assert!(!found.is_empty());
    assert_eq!(matching.len(), 1, "{matching:#?}");
    assert_eq!(matching[0]["id"], event.id());
}

#[tokio::test]
async fn the_audit_trail_is_for_admins_only() {
    let app = TestApp::new();
    let patient = app.account("Patient", None).await;

    assert_eq!(app.get("/audit-logs", None).await.status, 401);
    let reply = app.get("/audit-logs", Some(&patient.token)).await;
    assert_eq!(reply.status, 403, "{:?}", reply.body);
}

#[tokio::test]
async fn malformed_filters_give_422_naming_the_field() {
    let app = TestApp::new();
    let admin = app.admin_token().await;
    let cases = [
        ("from=yesterday", "from"),
        ("to=2026-02-30", "to"),
        ("action=DROP_TABLE", "action"),
        ("entity_type=patients", "entity_type"),
        ("user_id=-3", "user_id"),
        ("from=2026-12-02&to=2026-12-01", "from"),
        ("limit=0", "limit"),
    ];

    for (query, field) in cases {
        let reply = app.get(&format!("/audit-logs?{query}"), Some(&admin)).await;

        assert_eq!(reply.status, 422, "{query}: {:?}", reply.body);
        assert_eq!(reply.body["errors"][0]["field"], field, "{query}");
    }
}

#[tokio::test]
async fn the_trail_pages_newest_first_without_repeating_a_record() {
    let app = TestApp::new();
    let admin = app.admin_token().await;
    let patient = app.account("Patient", None).await;
    for _ in 0..4 {
        assert_eq!(app.login_form(&patient.person.email, e2e::PASSWORD).await.status, 200);
    }
    let query = format!("user_id={}", patient.id);
    poll(&app, &admin, &query, |r| r.len() >= 5).await;

    let pages = app.all_pages(&format!("/audit-logs?limit=2&{query}"), &admin).await;

    assert_eq!(pages.len(), 3, "5 records in pages of 2");
    let seen: Vec<Value> = pages.iter().flat_map(|p| p.body.as_array().cloned().unwrap()).collect();
    let mut ids: Vec<_> = seen.iter().map(|r| r["id"].as_u64().unwrap()).collect();
    let times: Vec<OffsetDateTime> = seen
        .iter()
        .map(|r| OffsetDateTime::parse(r["timestamp"].as_str().unwrap(), &Rfc3339).unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first: {times:?}");
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 5);
}
