use e2e::{
    Account, PASSWORD, Person, Reply, TestApp, emulator_clients, expired_token, future_slot,
    future_slot_time, naive, next_link, query_param, rfc3339, trace, unique_tag,
};
use futures::future::join_all;
use rand::Rng;
use serde_json::{Value, json};
use shared::appointments::{Appointment, AppointmentId, AppointmentStore, Status};
use shared::events::{Action, Actor, AppointmentFacts, Delivery, DomainEvent, EntityType};
use shared::ids::{IdGen, RandomIds};
use shared::users::{Role, UserId};
use time::OffsetDateTime;

const NEW_YORK: (f64, f64) = (40.7128, -74.0060);
const NEW_YORK_CELL: &str = "872a1072cffffff";

/// A doctor with a practice in New York and a unique specialization: its token and id.
async fn new_doctor(app: &TestApp, admin_token: &str) -> (String, u64) {
    let specialization = format!("General {}", unique_tag());
    app.doctor(admin_token, &specialization, NEW_YORK.0, NEW_YORK.1).await
}

/// A patient with a profile in New York.
async fn new_patient(app: &TestApp) -> Account {
    app.patient_at(NEW_YORK.0, NEW_YORK.1).await
}

/// Books and asserts 201, returning the appointment.
async fn booked(app: &TestApp, token: &str, doctor_id: u64, datetime: &str) -> Value {
    let reply = app.book(token, doctor_id, datetime).await;
    assert_eq!(reply.status, 201, "{datetime}: {:?}", reply.body);
    reply.body
}

fn id_of(appointment: &Value) -> u64 {
    appointment["id"].as_u64().expect("an integer id")
}

/// The appointments of a list reply, asserting that it is a JSON array.
fn listed(reply: &Reply) -> &Vec<Value> {
    reply
        .body
        .as_array()
        .unwrap_or_else(|| panic!("status {}: not a JSON array: {:?}", reply.status, reply.body))
}

fn ids(reply: &Reply) -> Vec<u64> {
    listed(reply).iter().map(id_of).collect()
}

/// A random id that no appointment has.
fn unknown_id() -> u64 {
    RandomIds.next_id()
}

/// Writes an appointment that started `days_ago` days ago straight into the emulator (the API
/// refuses to book the past), publishing its event as the product does.
async fn past_appointment(
    days_ago: i64,
    doctor: (u64, &str),
    patient: &Account,
    status: Status,
) -> (u64, OffsetDateTime) {
    let minute = 30 * rand::rng().random_range(0..48);
    let day = (OffsetDateTime::now_utc() - time::Duration::days(days_ago)).date();
    let start = day.midnight().assume_utc() + time::Duration::minutes(minute);
    let id = RandomIds.next_id();
    let appointment = Appointment {
        id: AppointmentId::new(id),
        doctor_id: UserId::new(doctor.0),
        patient_id: UserId::new(patient.id),
        doctor_name: doctor.1.to_owned(),
        patient_name: patient.person.username.clone(),
        start,
        duration_minutes: 30,
        status,
        cell: NEW_YORK_CELL.parse().expect("a cell"),
        created_at: start - time::Duration::days(7),
    };
    let facts = AppointmentFacts {
        doctor_id: appointment.doctor_id,
        patient_id: appointment.patient_id,
        h3_index: appointment.cell,
        appointment_time: start,
        status,
    };
    let actor = Actor { user_id: appointment.patient_id, role: Role::Patient };
    let event = DomainEvent::new(
        &RandomIds,
        &trace(),
        Some(actor),
        Action::CreateAppointment,
        EntityType::Appointment,
        Some(id.to_string()),
    )
    .with_appointment(facts);
    let (store, bus) = emulator_clients().await;
    store.book(&appointment, &event).await.expect("the past appointment is stored");
    Delivery { bus: &bus, outbox: &store }.after_commit(event).await;
    (id, start)
}

/// The username behind a token.
async fn username(app: &TestApp, token: &str) -> String {
    let me = app.get("/users/me", Some(token)).await;
    assert_eq!(me.status, 200, "{:?}", me.body);
    me.body["username"].as_str().expect("a name").to_owned()
}

// --- booking -------------------------------------------------------------------------------------

#[tokio::test]
async fn a_patient_books_a_doctor_and_gets_the_appointment_back() {
    let app = TestApp::new();
    let admin_token = app.admin_token().await;
    let (doctor_token, doctor_id) = new_doctor(&app, &admin_token).await;
    let doctor_name = username(&app, &doctor_token).await;
    let patient = new_patient(&app).await;
    let start = future_slot_time(30);

    let reply = app.book(&patient.token, doctor_id, &naive(start)).await;

    assert_eq!(reply.status, 201, "{:?}", reply.body);
    let id = id_of(&reply.body);
    assert!((1..1 << 53).contains(&id), "{id}");
    assert_eq!(
        reply.body,
        json!({
            "id": id,
            "doctor_id": doctor_id,
            "patient_id": patient.id,
            "doctor_name": doctor_name,
            "patient_name": patient.person.username,
            "appointment_time": rfc3339(start),
            "duration_minutes": 30,
            "status": "scheduled",
            "h3_index": NEW_YORK_CELL,
        })
    );
    assert!(
        reply.body["appointment_time"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{:?}",
        reply.body
    );
}

#[tokio::test]
async fn a_datetime_with_an_offset_is_converted_to_utc() {
    let app = TestApp::new();
    let admin_token = app.admin_token().await;
    let (_, doctor_id) = new_doctor(&app, &admin_token).await;
    let patient = new_patient(&app).await;
    let start = future_slot_time(40);
    let plus_two = time::UtcOffset::from_hms(2, 0, 0).expect("an offset");
    let minus_five_thirty = time::UtcOffset::from_hms(-5, -30, 0).expect("an offset");
    let later = start + time::Duration::days(1);
    let format = time::format_description::well_known::Rfc3339;
    let in_paris = start.to_offset(plus_two).format(&format).expect("a time");
    let in_utc_z = rfc3339(later);
    let elsewhere = (later + time::Duration::days(1))
        .to_offset(minus_five_thirty)
        .format(&format)
        .expect("a time");

    let replies = [
        app.book(&patient.token, doctor_id, &in_paris).await,
        app.book(&patient.token, doctor_id, &in_utc_z).await,
        app.book(&patient.token, doctor_id, &elsewhere).await,
    ];

    let expected = [start, later, later + time::Duration::days(1)];
    for (reply, start) in replies.iter().zip(expected) {
        assert_eq!(reply.status, 201, "{:?}", reply.body);
        assert_eq!(reply.body["appointment_time"], rfc3339(start), "{:?}", reply.body);
    }
}

#[tokio::test]
async fn a_booking_carries_the_patients_current_cell() {
    let app = TestApp::new();
    let admin_token = app.admin_token().await;
    let (_, doctor_id) = new_doctor(&app, &admin_token).await;
    let patient = new_patient(&app).await;
    let in_new_york = booked(&app, &patient.token, doctor_id, &future_slot(50)).await;
    let moved = app.setup_patient(&patient.token, 51.5074, -0.1278).await;
    assert_eq!(moved.status, 200, "{:?}", moved.body);

    let in_london = booked(&app, &patient.token, doctor_id, &future_slot(51)).await;

    assert_eq!(in_london["h3_index"], moved.body["h3_index"]);
    assert_ne!(in_london["h3_index"], NEW_YORK_CELL);
    let kept =
        app.get(&format!("/appointments/{}", id_of(&in_new_york)), Some(&patient.token)).await;
    assert_eq!(
        kept.body["h3_index"], NEW_YORK_CELL,
        "booked appointments keep their cell: {:?}",
        kept.body
    );
}

#[tokio::test]
async fn booking_without_a_patient_profile_gives_422_saying_so() {
    let app = TestApp::new();
    let admin_token = app.admin_token().await;
    let (_, doctor_id) = new_doctor(&app, &admin_token).await;
    let patient = app.account("Patient", None).await;

    let reply = app.book(&patient.token, doctor_id, &future_slot(10)).await;

    assert_eq!(reply.status, 422, "{:?}", reply.body);
    assert!(reply.detail().contains("profile"), "says what is missing: {:?}", reply.body);
    assert!(
        reply.body.to_string().contains("/setup-patient"),
        "says how to fix it: {:?}",
        reply.body
    );
}

#[tokio::test]
async fn malformed_past_off_grid_and_far_datetimes_give_422_naming_datetime() {
    let app = TestApp::new();
    let admin_token = app.admin_token().await;
    let (_, doctor_id) = new_doctor(&app, &admin_token).await;
    let patient = new_patient(&app).await;
    let day = &future_slot(20)[..10];
    let now = OffsetDateTime::now_utc();
    let yesterday = naive(now - time::Duration::days(1))[..10].to_owned();
    let too_far = naive(now + time::Duration::days(368))[..10].to_owned();
    let cases = [
        ("tomorrow".to_owned(), "ISO 8601"),
        (String::new(), "ISO 8601"),
        (format!("{day} 10:00"), "ISO 8601"),
        ("2030-13-01T10:00:00".to_owned(), "ISO 8601"),
        (format!("{yesterday}T10:00:00"), "future"),
        ("2001-01-01T10:00:00Z".to_owned(), "future"),
        (format!("{day}T10:15:00"), "30-minute grid"),
        (format!("{day}T10:00:30"), "30-minute grid"),
        (format!("{day}T10:00:00.5Z"), "30-minute grid"),
        (format!("{day}T10:00:00+00:15"), "30-minute grid"),
        (format!("{too_far}T10:00:00"), "366 days"),
    ];

    for (datetime, says) in cases {
        let reply = app.book(&patient.token, doctor_id, &datetime).await;

        assert_eq!(reply.status, 422, "{datetime:?}: {:?}", reply.body);
        assert_eq!(reply.body["errors"][0]["field"], "datetime", "{datetime:?}: {:?}", reply.body);
        assert!(reply.detail().contains(says), "{datetime:?}: {:?}", reply.body);
    }
    let grid = app.book(&patient.token, doctor_id, &format!("{day}T10:15:00")).await;
    assert!(
        grid.detail().contains("10:00") && grid.detail().contains("10:30"),
        "says which starts are allowed: {:?}",
        grid.body
    );
}

#[tokio::test]
async fn the_last_slot_within_366_days_is_bookable_and_the_next_is_not() {
    let app = TestApp::new();
    let admin_token = app.admin_token().await;
    let (_, doctor_id) = new_doctor(&app, &admin_token).await;
    let patient = new_patient(&app).await;
    let limit = OffsetDateTime::now_utc() + time::Duration::days(366);
    let into_slot = i64::from(limit.minute() % 30) * 60 + i64::from(limit.second());
    let last = limit.replace_nanosecond(0).expect("a time") - time::Duration::seconds(into_slot);

    let beyond =
        app.book(&patient.token, doctor_id, &naive(last + time::Duration::minutes(30))).await;
    let at_the_limit = app.book(&patient.token, doctor_id, &naive(last)).await;

    assert_eq!(beyond.status, 422, "{:?}", beyond.body);
    assert!(beyond.detail().contains("366 days"), "{:?}", beyond.body);
    assert_eq!(at_the_limit.status, 201, "{}: {:?}", naive(last), at_the_limit.body);
}

#[tokio::test]
async fn a_malformed_booking_body_gives_422_naming_the_field() {
    let app = TestApp::new();
    let patient = new_patient(&app).await;
    let datetime = future_slot(20);
    let cases = [
        (json!({"datetime": datetime}), "doctor_id"),
        (json!({"doctor_id": 1}), "datetime"),
        (json!({"doctor_id": "one", "datetime": datetime}), "doctor_id"),
        (json!({"doctor_id": -1, "datetime": datetime}), "doctor_id"),
        (json!({"doctor_id": 1, "datetime": 20300601}), "datetime"),
        (json!([1, datetime]), "body"),
    ];

    for (body, field) in cases {
        let reply = app.post_json("/appointments", &body, Some(&patient.token)).await;

        assert_eq!(reply.status, 422, "{body}: {:?}", reply.body);
        assert_eq!(reply.body["errors"][0]["field"], field, "{body}: {:?}", reply.body);
    }
}

#[tokio::test]
async fn an_unknown_doctor_a_doctor_without_profile_or_a_patient_id_gives_404() {
    let app = TestApp::new();
    let admin_token = app.admin_token().await;
    let profileless = app.account("Doctor", Some(&admin_token)).await;
    let patient = new_patient(&app).await;
    let other_patient = new_patient(&app).await;
    let admin = app.get("/users/me", Some(&admin_token)).await;
    let admin_id = admin.body["id"].as_u64().expect("an id");

    for (doctor_id, what) in [
        (unknown_id(), "an unknown id"),
        (admin_id, "an admin"),
        (0, "zero"),
        (profileless.id, "a doctor without profile"),
        (other_patient.id, "a patient"),
        (patient.id, "oneself"),
    ] {
        let reply = app.book(&patient.token, doctor_id, &future_slot(15)).await;

        assert_eq!(reply.status, 404, "{what}: {:?}", reply.body);
        assert!(!reply.detail().is_empty(), "{what}: {:?}", reply.body);
    }
}

#[tokio::test]
async fn only_patients_book() {
    let app = TestApp::new();
    let admin_token = app.admin_token().await;
    let (doctor_token, doctor_id) = new_doctor(&app, &admin_token).await;
    let body = json!({"doctor_id": doctor_id, "datetime": future_slot(12)});

    let by_doctor = app.post_json("/appointments", &body, Some(&doctor_token)).await;
    let by_admin = app.post_json("/appointments", &body, Some(&admin_token)).await;
    let anonymous = app.post_json("/appointments", &body, None).await;
    let expired = app.post_json("/appointments", &body, Some(&expired_token(Role::Patient))).await;

    assert_eq!(by_doctor.status, 403, "{:?}", by_doctor.body);
    assert_eq!(by_admin.status, 403, "{:?}", by_admin.body);
    for reply in [&anonymous, &expired] {
        assert_eq!(reply.status, 401, "{:?}", reply.body);
        assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
    }
}

#[tokio::test]
async fn a_doctor_already_booked_in_that_slot_gives_409() {
    let app = TestApp::new();
    let admin_token = app.admin_token().await;
    let (_, doctor_id) = new_doctor(&app, &admin_token).await;
    let (first, second) = (new_patient(&app).await, new_patient(&app).await);
    let start = future_slot_time(60);
    booked(&app, &first.token, doctor_id, &naive(start)).await;

    let same = app.book(&second.token, doctor_id, &naive(start)).await;
    let same_with_offset = app.book(&second.token, doctor_id, &rfc3339(start)).await;
    let next_slot =
        app.book(&second.token, doctor_id, &naive(start + time::Duration::minutes(30))).await;

    for reply in [&same, &same_with_offset] {
        assert_eq!(reply.status, 409, "{:?}", reply.body);
        assert!(reply.detail().contains("doctor"), "{:?}", reply.body);
    }
    assert_eq!(next_slot.status, 201, "{:?}", next_slot.body);
}

#[tokio::test]
async fn a_patient_already_booked_in_that_slot_gives_409() {
    let app = TestApp::new();
    let admin_token = app.admin_token().await;
    let (_, first_doctor) = new_doctor(&app, &admin_token).await;
    let (_, second_doctor) = new_doctor(&app, &admin_token).await;
    let patient = new_patient(&app).await;
    let datetime = future_slot(61);
    booked(&app, &patient.token, first_doctor, &datetime).await;

    let reply = app.book(&patient.token, second_doctor, &datetime).await;

    assert_eq!(reply.status, 409, "{:?}", reply.body);
    assert!(reply.detail().starts_with("You already have"), "{:?}", reply.body);
}

#[tokio::test]
async fn twelve_patients_racing_for_one_slot_get_one_201_and_eleven_409() {
    let app = TestApp::new();
    let admin_token = app.admin_token().await;
    let (doctor_token, doctor_id) = new_doctor(&app, &admin_token).await;
    let patients = join_all((0..12).map(|_| new_patient(&app))).await;
    let datetime = future_slot(90);

    let replies = join_all(patients.iter().map(|p| app.book(&p.token, doctor_id, &datetime))).await;

    let created: Vec<&Reply> = replies.iter().filter(|r| r.status == 201).collect();
    let conflicts = replies.iter().filter(|r| r.status == 409).count();
    assert_eq!((created.len(), conflicts), (1, 11), "{replies:?}");
    let schedule = app.get("/appointments/my?when=upcoming", Some(&doctor_token)).await;
    assert_eq!(
        ids(&schedule),
        vec![id_of(&created[0].body)],
        "one appointment stored: {:?}",
        schedule.body
    );
}

// --- listing -------------------------------------------------------------------------------------

#[tokio::test]
async fn my_appointments_lists_a_patients_bookings_by_time_with_when_filters() {
    let app = TestApp::new();
    let admin_token = app.admin_token().await;
    let (doctor_token, doctor_id) = new_doctor(&app, &admin_token).await;
    let doctor_name = username(&app, &doctor_token).await;
    let patient = new_patient(&app).await;
    let (old, _) =
        past_appointment(10, (doctor_id, &doctor_name), &patient, Status::Scheduled).await;
    let (recent, _) =
        past_appointment(3, (doctor_id, &doctor_name), &patient, Status::Scheduled).await;
    let soon = id_of(&booked(&app, &patient.token, doctor_id, &future_slot(5)).await);
    let later = id_of(&booked(&app, &patient.token, doctor_id, &future_slot(20)).await);
    let cancelled = id_of(&booked(&app, &patient.token, doctor_id, &future_slot(10)).await);
    let reply =
        app.post_empty(&format!("/appointments/{cancelled}/cancel"), Some(&patient.token)).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);

    let default = app.get("/appointments/my", Some(&patient.token)).await;
    let all = app.get("/appointments/my?when=all", Some(&patient.token)).await;
    let upcoming = app.get("/appointments/my?when=upcoming", Some(&patient.token)).await;
    let past = app.get("/appointments/my?when=past", Some(&patient.token)).await;

    for reply in [&default, &all, &upcoming, &past] {
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        assert!(next_link(reply).is_none(), "{:?}", reply.headers);
    }
    let everything = vec![old, recent, soon, cancelled, later];
    assert_eq!(ids(&default), everything, "ascending: {:?}", default.body);
    assert_eq!(ids(&all), everything, "{:?}", all.body);
    assert_eq!(ids(&upcoming), vec![soon, cancelled, later], "{:?}", upcoming.body);
    assert_eq!(ids(&past), vec![recent, old], "descending: {:?}", past.body);
    let statuses: Vec<&Value> = listed(&all).iter().map(|a| &a["status"]).collect();
    assert_eq!(statuses, ["scheduled", "scheduled", "scheduled", "cancelled", "scheduled"]);
    for appointment in listed(&all) {
        assert_eq!(appointment["patient_id"], patient.id, "{appointment}");
        assert_eq!(appointment["doctor_name"], doctor_name.as_str());
        assert_eq!(appointment["duration_minutes"], 30);
    }
}

#[tokio::test]
async fn a_doctor_sees_their_schedule() {
    let app = TestApp::new();
    let admin_token = app.admin_token().await;
    let (doctor_token, doctor_id) = new_doctor(&app, &admin_token).await;
    let doctor_name = username(&app, &doctor_token).await;
    let (first, second) = (new_patient(&app).await, new_patient(&app).await);
    let (done, _) = past_appointment(2, (doctor_id, &doctor_name), &first, Status::Scheduled).await;
    let start = future_slot_time(7);
    let a = id_of(&booked(&app, &second.token, doctor_id, &naive(start)).await);
    let b = id_of(&booked(&app, &first.token, doctor_id, &future_slot(8)).await);
    let (_, other_doctor) = new_doctor(&app, &admin_token).await;
    booked(&app, &first.token, other_doctor, &future_slot(9)).await;

    let all = app.get("/appointments/my", Some(&doctor_token)).await;
    let upcoming = app.get("/appointments/my?when=upcoming", Some(&doctor_token)).await;
    let past = app.get("/appointments/my?when=past", Some(&doctor_token)).await;

    assert_eq!(all.status, 200, "{:?}", all.body);
    assert_eq!(ids(&all), vec![done, a, b], "{:?}", all.body);
    assert_eq!(ids(&upcoming), vec![a, b], "{:?}", upcoming.body);
    assert_eq!(ids(&past), vec![done], "{:?}", past.body);
    let first_upcoming = &listed(&upcoming)[0];
    assert_eq!(first_upcoming["patient_id"], second.id);
    assert_eq!(first_upcoming["patient_name"], second.person.username.as_str());
    assert_eq!(first_upcoming["appointment_time"], rfc3339(start));
}

#[tokio::test]
async fn an_admin_has_no_appointments_of_their_own() {
    let app = TestApp::new();
    let admin_token = app.admin_token().await;

    let reply = app.get("/appointments/my", Some(&admin_token)).await;
    let anonymous = app.get("/appointments/my", None).await;

    assert_eq!(reply.status, 403, "{:?}", reply.body);
    assert_eq!(anonymous.status, 401, "{:?}", anonymous.body);
}

#[tokio::test]
async fn an_unknown_when_gives_422() {
    let app = TestApp::new();
    let patient = new_patient(&app).await;

    for when in ["bogus", "soon"] {
        let reply = app.get(&format!("/appointments/my?when={when}"), Some(&patient.token)).await;

        assert_eq!(reply.status, 422, "{when:?}: {:?}", reply.body);
        assert_eq!(reply.body["errors"][0]["field"], "when", "{:?}", reply.body);
    }
}

#[tokio::test]
async fn five_appointments_page_through_link_headers_in_order() {
    let app = TestApp::new();
    let admin_token = app.admin_token().await;
    let (_, doctor_id) = new_doctor(&app, &admin_token).await;
    let patient = new_patient(&app).await;
    let mut expected = Vec::new();
    for days in [10, 20, 30, 40, 50] {
        expected.push(id_of(&booked(&app, &patient.token, doctor_id, &future_slot(days)).await));
    }

    let pages = app.all_pages("/appointments/my?limit=2", &patient.token).await;

    let mut seen = Vec::new();
    for page in &pages {
        assert_eq!(page.status, 200, "{:?}", page.body);
        assert!(listed(page).len() <= 2, "{:?}", page.body);
        seen.extend(ids(page));
    }
    assert_eq!(seen, expected, "all five once, in order");
    assert!(pages.len() >= 3, "{} pages", pages.len());
    let link = next_link(&pages[0]).expect("a Link header");
    assert!(link.contains("limit=2"), "keeps the query: {link}");
    assert!(query_param(&link, "next").is_some(), "{link}");
}

#[tokio::test]
async fn the_upcoming_and_past_lists_page_too() {
    let app = TestApp::new();
    let admin_token = app.admin_token().await;
    let (doctor_token, doctor_id) = new_doctor(&app, &admin_token).await;
    let doctor_name = username(&app, &doctor_token).await;
    let patient = new_patient(&app).await;
    let mut past = Vec::new();
    for days_ago in [3, 6, 9] {
        let doctor = (doctor_id, doctor_name.as_str());
        past.push(past_appointment(days_ago, doctor, &patient, Status::Scheduled).await.0);
    }
    let mut upcoming = Vec::new();
    for days in [4, 8, 12] {
        upcoming.push(id_of(&booked(&app, &patient.token, doctor_id, &future_slot(days)).await));
    }

    let past_pages = app.all_pages("/appointments/my?when=past&limit=2", &patient.token).await;
    let upcoming_pages =
        app.all_pages("/appointments/my?when=upcoming&limit=2", &patient.token).await;

    let past_seen: Vec<u64> = past_pages.iter().flat_map(ids).collect();
    let upcoming_seen: Vec<u64> = upcoming_pages.iter().flat_map(ids).collect();
    assert_eq!(past_seen, past, "most recent first");
    assert_eq!(upcoming_seen, upcoming, "soonest first");
}

#[tokio::test]
async fn a_tampered_cursor_gives_422() {
    let app = TestApp::new();
    let admin_token = app.admin_token().await;
    let (_, doctor_id) = new_doctor(&app, &admin_token).await;
    let patient = new_patient(&app).await;
    for days in [11, 22, 33] {
        booked(&app, &patient.token, doctor_id, &future_slot(days)).await;
    }
    let first = app.get("/appointments/my?limit=1", Some(&patient.token)).await;
    let cursor =
        query_param(&next_link(&first).expect("a Link header"), "next").expect("a next cursor");
    let mut bytes = cursor.clone().into_bytes();
    let middle = bytes.len() / 2;
    bytes[middle] = if bytes[middle] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes).expect("ascii");

    let cases = [
        tampered,
        format!("{cursor}AAAA"),
        cursor[..cursor.len() - 4].to_owned(),
        "garbage!".to_owned(),
    ];
    for bad in cases {
        let reply =
            app.get(&format!("/appointments/my?limit=1&next={bad}"), Some(&patient.token)).await;

        assert_eq!(reply.status, 422, "{bad:?}: {:?}", reply.body);
        assert_eq!(reply.body["errors"][0]["field"], "next", "{:?}", reply.body);
    }
}

#[tokio::test]
async fn a_cursor_used_by_another_user_or_for_another_list_gives_422() {
    let app = TestApp::new();
    let admin_token = app.admin_token().await;
    let (doctor_token, doctor_id) = new_doctor(&app, &admin_token).await;
    let patient = new_patient(&app).await;
    let other = new_patient(&app).await;
    for days in [11, 22, 33] {
        booked(&app, &patient.token, doctor_id, &future_slot(days)).await;
        booked(&app, &other.token, doctor_id, &future_slot(days + 1)).await;
    }
    let first = app.get("/appointments/my?limit=1", Some(&patient.token)).await;
    let link = next_link(&first).expect("a Link header");
    let cursor = query_param(&link, "next").expect("a next cursor");

    let by_other_patient = app.get_link(&link, &other.token).await;
    let by_doctor = app.get_link(&link, &doctor_token).await;
    let for_upcoming = app
        .get(&format!("/appointments/my?when=upcoming&limit=1&next={cursor}"), Some(&patient.token))
        .await;
    let by_owner = app.get_link(&link, &patient.token).await;

    for reply in [&by_other_patient, &by_doctor, &for_upcoming] {
        assert_eq!(reply.status, 422, "{:?}", reply.body);
        assert_eq!(reply.body["errors"][0]["field"], "next", "{:?}", reply.body);
    }
    assert_eq!(by_owner.status, 200, "{:?}", by_owner.body);
    assert_eq!(listed(&by_owner).len(), 1, "{:?}", by_owner.body);
}

#[tokio::test]
async fn limits_outside_1_to_100_give_422() {
    let app = TestApp::new();
    let patient = new_patient(&app).await;

    for limit in ["0", "101", "-1", "ten", "1.5"] {
        let reply = app.get(&format!("/appointments/my?limit={limit}"), Some(&patient.token)).await;

        assert_eq!(reply.status, 422, "{limit}: {:?}", reply.body);
        assert_eq!(reply.body["errors"][0]["field"], "limit", "{:?}", reply.body);
    }
    for limit in ["1", "100"] {
        let reply = app.get(&format!("/appointments/my?limit={limit}"), Some(&patient.token)).await;
        assert_eq!(reply.status, 200, "{limit}: {:?}", reply.body);
    }
}

// --- one appointment -----------------------------------------------------------------------------

#[tokio::test]
async fn one_appointment_is_visible_to_its_patient_and_doctor_only() {
    let app = TestApp::new();
    let admin_token = app.admin_token().await;
    let (doctor_token, doctor_id) = new_doctor(&app, &admin_token).await;
    let (other_doctor_token, _) = new_doctor(&app, &admin_token).await;
    let patient = new_patient(&app).await;
    let other = new_patient(&app).await;
    let appointment = booked(&app, &patient.token, doctor_id, &future_slot(14)).await;
    let path = format!("/appointments/{}", id_of(&appointment));

    let by_patient = app.get(&path, Some(&patient.token)).await;
    let by_doctor = app.get(&path, Some(&doctor_token)).await;
    let by_other_patient = app.get(&path, Some(&other.token)).await;
    let by_other_doctor = app.get(&path, Some(&other_doctor_token)).await;
    let by_admin = app.get(&path, Some(&admin_token)).await;
    let anonymous = app.get(&path, None).await;

    assert_eq!(by_patient.status, 200, "{:?}", by_patient.body);
    assert_eq!(by_patient.body, appointment);
    assert_eq!(by_doctor.status, 200, "{:?}", by_doctor.body);
    assert_eq!(by_doctor.body, appointment);
    for reply in [&by_other_patient, &by_other_doctor, &by_admin] {
        assert_eq!(reply.status, 403, "{:?}", reply.body);
        assert!(!reply.body.to_string().contains(&patient.person.username), "{:?}", reply.body);
    }
    assert_eq!(anonymous.status, 401, "{:?}", anonymous.body);
}

#[tokio::test]
async fn an_unknown_appointment_id_gives_404_and_a_malformed_one_422() {
    let app = TestApp::new();
    let patient = new_patient(&app).await;

    let unknown = app.get(&format!("/appointments/{}", unknown_id()), Some(&patient.token)).await;

    assert_eq!(unknown.status, 404, "{:?}", unknown.body);
    for bad in ["abc", "0", "-5", "1.5", "9007199254740992"] {
        let reply = app.get(&format!("/appointments/{bad}"), Some(&patient.token)).await;

        assert_eq!(reply.status, 422, "{bad}: {:?}", reply.body);
        assert_eq!(reply.body["errors"][0]["field"], "id", "{:?}", reply.body);
    }
}

// --- cancelling ----------------------------------------------------------------------------------

#[tokio::test]
async fn only_its_patient_or_doctor_may_cancel_and_an_unknown_one_is_404() {
    let app = TestApp::new();
    let admin_token = app.admin_token().await;
    let (doctor_token, doctor_id) = new_doctor(&app, &admin_token).await;
    let (other_doctor_token, _) = new_doctor(&app, &admin_token).await;
    let patient = new_patient(&app).await;
    let other = new_patient(&app).await;
    let appointment = booked(&app, &patient.token, doctor_id, &future_slot(16)).await;
    let path = format!("/appointments/{}/cancel", id_of(&appointment));

    let by_other_patient = app.post_empty(&path, Some(&other.token)).await;
    let by_other_doctor = app.post_empty(&path, Some(&other_doctor_token)).await;
    let by_admin = app.post_empty(&path, Some(&admin_token)).await;
    let anonymous = app.post_empty(&path, None).await;
    let unknown = app
        .post_empty(&format!("/appointments/{}/cancel", unknown_id()), Some(&patient.token))
        .await;
    let malformed = app.post_empty("/appointments/abc/cancel", Some(&patient.token)).await;

    for reply in [&by_other_patient, &by_other_doctor, &by_admin] {
        assert_eq!(reply.status, 403, "{:?}", reply.body);
    }
    assert_eq!(anonymous.status, 401, "{:?}", anonymous.body);
    assert_eq!(unknown.status, 404, "{:?}", unknown.body);
    assert_eq!(malformed.status, 422, "{:?}", malformed.body);
    let still =
        app.get(&format!("/appointments/{}", id_of(&appointment)), Some(&doctor_token)).await;
    assert_eq!(still.body["status"], "scheduled", "{:?}", still.body);
}

#[tokio::test]
async fn a_patient_cancels_and_cancelling_again_gives_409() {
    let app = TestApp::new();
    let admin_token = app.admin_token().await;
    let (doctor_token, doctor_id) = new_doctor(&app, &admin_token).await;
    let patient = new_patient(&app).await;
    let appointment = booked(&app, &patient.token, doctor_id, &future_slot(17)).await;
    let id = id_of(&appointment);
    let path = format!("/appointments/{id}/cancel");

    let cancelled = app.post_empty(&path, Some(&patient.token)).await;
    let again = app.post_empty(&path, Some(&patient.token)).await;
    let again_by_doctor = app.post_empty(&path, Some(&doctor_token)).await;

    assert_eq!(cancelled.status, 200, "{:?}", cancelled.body);
    let mut expected = appointment.clone();
    expected["status"] = json!("cancelled");
    assert_eq!(cancelled.body, expected);
    for reply in [&again, &again_by_doctor] {
        assert_eq!(reply.status, 409, "{:?}", reply.body);
    }
    let read = app.get(&format!("/appointments/{id}"), Some(&doctor_token)).await;
    assert_eq!(read.body["status"], "cancelled", "{:?}", read.body);
}

#[tokio::test]
async fn a_doctor_cancels_an_appointment() {
    let app = TestApp::new();
    let admin_token = app.admin_token().await;
    let (doctor_token, doctor_id) = new_doctor(&app, &admin_token).await;
    let patient = new_patient(&app).await;
    let appointment = booked(&app, &patient.token, doctor_id, &future_slot(18)).await;
    let id = id_of(&appointment);

    let reply = app.post_empty(&format!("/appointments/{id}/cancel"), Some(&doctor_token)).await;

    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["status"], "cancelled", "{:?}", reply.body);
    assert_eq!(reply.body["id"], id);
    let mine = app.get("/appointments/my", Some(&patient.token)).await;
    assert_eq!(mine.body[0]["status"], "cancelled", "{:?}", mine.body);
}

#[tokio::test]
async fn a_cancelled_slot_can_be_booked_again() {
    let app = TestApp::new();
    let admin_token = app.admin_token().await;
    let (_, doctor_id) = new_doctor(&app, &admin_token).await;
    let (_, other_doctor) = new_doctor(&app, &admin_token).await;
    let (first, second) = (new_patient(&app).await, new_patient(&app).await);
    let datetime = future_slot(19);
    let appointment = booked(&app, &first.token, doctor_id, &datetime).await;
    let taken = app.book(&second.token, doctor_id, &datetime).await;
    assert_eq!(taken.status, 409, "{:?}", taken.body);
    let cancel = format!("/appointments/{}/cancel", id_of(&appointment));
    let cancelled = app.post_empty(&cancel, Some(&first.token)).await;
    assert_eq!(cancelled.status, 200, "{:?}", cancelled.body);

    let rebooked = app.book(&second.token, doctor_id, &datetime).await;
    let first_elsewhere = app.book(&first.token, other_doctor, &datetime).await;

    assert_eq!(rebooked.status, 201, "the doctor's slot is free: {:?}", rebooked.body);
    assert_ne!(id_of(&rebooked.body), id_of(&appointment));
    assert_eq!(
        first_elsewhere.status, 201,
        "the patient's slot is free: {:?}",
        first_elsewhere.body
    );
}

// --- the whole flow and the documentation --------------------------------------------------------

#[tokio::test]
async fn the_predecessors_flow_works_step_by_step() {
    let app = TestApp::new();
    let admin_token = app.admin_token().await;
    let (doctor_token, doctor_id) = new_doctor(&app, &admin_token).await;
    let person = Person::new();

    let registered = app.register(&person.json("Patient"), None).await;
    assert_eq!(registered.status, 201, "{:?}", registered.body);
    let login = app.login_form(&person.email, PASSWORD).await;
    assert_eq!(login.status, 200, "{:?}", login.body);
    let token = login.body["access_token"].as_str().expect("a token");
    let setup =
        app.post_empty("/setup-patient?latitude=40.7128&longitude=-74.0060", Some(token)).await;
    assert_eq!(setup.status, 201, "{:?}", setup.body);
    assert_eq!(setup.body["h3_index"], NEW_YORK_CELL);
    let datetime = future_slot(25);
    let booking = app.book(token, doctor_id, &datetime).await;
    assert_eq!(booking.status, 201, "{:?}", booking.body);
    let mine = app.get("/appointments/my", Some(token)).await;

    assert_eq!(mine.status, 200, "{:?}", mine.body);
    let found = listed(&mine)
        .iter()
        .find(|a| a["id"] == booking.body["id"])
        .unwrap_or_else(|| panic!("the booking is listed: {:?}", mine.body));
    assert_eq!(found["doctor_id"], doctor_id);
    assert_eq!(found["patient_id"], registered.body["id"]);
    assert_eq!(found["patient_name"], person.username.as_str());
    assert_eq!(found["appointment_time"], format!("{datetime}Z"));
    assert_eq!(found["status"], "scheduled");
    assert_eq!(found["h3_index"], NEW_YORK_CELL);
    let schedule = app.get("/appointments/my", Some(&doctor_token)).await;
    assert_eq!(ids(&schedule), vec![id_of(&booking.body)], "{:?}", schedule.body);
}

#[tokio::test]
async fn openapi_json_documents_the_profile_doctor_and_appointment_routes() {
    let app = TestApp::new();

    let reply = app.get("/openapi.json", None).await;

    assert_eq!(reply.status, 200, "{:?}", reply.body);
    for (path, method) in [
        ("/setup-patient", "post"),
        ("/doctors/profile", "post"),
        ("/doctors", "get"),
        ("/appointments", "post"),
        ("/appointments/my", "get"),
        ("/appointments/{id}", "get"),
        ("/appointments/{id}/cancel", "post"),
    ] {
        assert!(
            reply.body["paths"][path][method].is_object(),
            "{method} {path} is documented: {:?}",
            reply.body["paths"][path]
        );
    }
}
