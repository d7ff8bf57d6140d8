use std::time::{Duration, Instant};

use e2e::{TestApp, emulator_clients, future_slot, remote_point, trace, unique_tag};
use serde_json::Value;
use shared::appointments::Status;
use shared::events::{Action, AppointmentFacts, DomainEvent, EntityType, EventBus};
use shared::geo::{Cell, GeoPoint};
use shared::ids::RandomIds;
use shared::users::UserId;

/// How long the analytics consumer may take before a test gives up.
const PATIENCE: Duration = Duration::from_secs(15);

/// Polls a region until `done` holds (or the patience runs out); returns the last answer.
async fn poll(app: &TestApp, admin: &str, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let reply = app.get(path, Some(admin)).await;
        assert_eq!(reply.status, 200, "{path}: {:?}", reply.body);
        if done(&reply.body) || started.elapsed() > PATIENCE {
            return reply.body;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn cell_of((lat, lng): (f64, f64)) -> Cell {
    GeoPoint::parse(Some(lat), Some(lng), ("lat", "lng")).expect("a point").cell()
}

#[tokio::test]
async fn a_booking_and_its_cancellation_move_the_counts_of_every_resolution() {
    let app = TestApp::new();
    let admin = app.admin_token().await;
    let place = remote_point();
    let cell = cell_of(place);
    let (_, doctor_id) =
        app.doctor(&admin, &format!("Stats {}", unique_tag()), place.0, place.1).await;
    let patient = app.patient_at(place.0, place.1).await;
    let slot = future_slot(2);
    let booked = app.book(&patient.token, doctor_id, &slot).await;
    assert_eq!(booked.status, 201, "{:?}", booked.body);

    let path = format!("/analytics/{cell}");
    let region = poll(&app, &admin, &path, |r| r["total"] == 1).await;

    assert_eq!(region["region"], cell.to_string());
    assert_eq!(region["resolution"], 7);
    assert_eq!(region["by_status"]["scheduled"], 1);
    assert_eq!(region["appointments"][0]["count"], 1);
    assert_eq!(region["children"], serde_json::json!([]), "nothing finer than 7");
    assert_eq!(region["by_day"][0]["day"], &slot[..10]);
    let parent = cell.parent(h3o::Resolution::Five);
    let coarse = app.get(&format!("/analytics/{parent}"), Some(&admin)).await.body;
    assert!(coarse["total"].as_i64().unwrap() >= 1, "{coarse}");
    let child = cell.parent(h3o::Resolution::Six).to_string();
    assert!(coarse["children"].as_array().unwrap().iter().any(|c| c["h3_index"] == child.as_str()));

    let id = booked.body["id"].as_u64().unwrap();
    let cancel = app.post_empty(&format!("/appointments/{id}/cancel"), Some(&patient.token)).await;
    assert_eq!(cancel.status, 200);
    let after = poll(&app, &admin, &path, |r| r["by_status"]["cancelled"] == 1).await;

    assert_eq!(after["by_status"], serde_json::json!({"scheduled": 0, "cancelled": 1}));
    assert_eq!(after["total"], 1, "a cancelled booking still counts as demand");
}

/// A booking event for `cell`, as the booking function publishes it.
fn booking_event(cell: Cell) -> DomainEvent {
    let facts = AppointmentFacts {
        doctor_id: UserId::new(1),
        patient_id: UserId::new(2),
        h3_index: cell,
        appointment_time: time::OffsetDateTime::now_utc() + time::Duration::days(3),
        status: Status::Scheduled,
    };
    DomainEvent::new(
        &RandomIds,
        &trace(),
        None,
        Action::CreateAppointment,
        EntityType::Appointment,
        None,
    )
    .with_appointment(facts)
}

#[tokio::test]
async fn an_event_delivered_twice_counts_once() {
    let app = TestApp::new();
    let admin = app.admin_token().await;
    let (_, bus) = emulator_clients().await;
    let cell = cell_of(remote_point());
    let event = booking_event(cell);

    for _ in 0..2 {
        assert_eq!(bus.put(std::slice::from_ref(&event)).await.unwrap(), vec![true]);
    }

    let path = format!("/analytics/{cell}");
    poll(&app, &admin, &path, |r| r["total"] == 1).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(app.get(&path, Some(&admin)).await.body["total"], 1);
}

#[tokio::test]
async fn racing_bookings_in_one_cell_are_all_counted_at_every_resolution() {
    let app = TestApp::new();
    let admin = app.admin_token().await;
    let (_, bus) = emulator_clients().await;
    let cell = cell_of(remote_point());
    let racing = 24;

    let events: Vec<DomainEvent> = (0..racing).map(|_| booking_event(cell)).collect();
    let puts = events.iter().map(|e| bus.put(std::slice::from_ref(e)));
    let accepted = futures::future::join_all(puts).await;
    assert!(accepted.iter().all(|a| a.as_ref().is_ok_and(|v| v == &[true])));

    let path = format!("/analytics/{cell}");
    let region = poll(&app, &admin, &path, |r| r["total"] == racing).await;
    assert_eq!(region["total"], racing, "every racing booking counted once");
    for resolution in [h3o::Resolution::Five, h3o::Resolution::Zero] {
        let coarse =
            app.get(&format!("/analytics/{}", cell.parent(resolution)), Some(&admin)).await;
        assert!(coarse.body["total"].as_i64().unwrap() >= racing as i64, "{:?}", coarse.body);
    }
}

#[tokio::test]
async fn equivalent_spellings_of_a_region_give_one_canonical_answer() {
    let app = TestApp::new();
    let admin = app.admin_token().await;
    let cell = cell_of((40.7128, -74.0060)).to_string();

    let lower = app.get(&format!("/analytics/{cell}"), Some(&admin)).await;
    let upper = app.get(&format!("/analytics/{}", cell.to_uppercase()), Some(&admin)).await;

    assert_eq!(upper.status, 200, "{:?}", upper.body);
    assert_eq!(upper.body["region"], cell.as_str());
    assert_eq!(upper.body["total"], lower.body["total"]);
}

#[tokio::test]
async fn malformed_fine_or_unauthorised_requests_are_refused() {
    let app = TestApp::new();
    let admin = app.admin_token().await;
    let patient = app.account("Patient", None).await;
    let cases = [
        ("/analytics/garbage", 422),
        ("/analytics/882a1072cdfffff", 422),
        ("/analytics/872a1072cffffff?from=someday", 422),
        ("/analytics/872a1072cffffff?k=6", 422),
        ("/analytics/872a1072cffffff?from=2026-12-02&to=2026-12-01", 422),
        ("/analytics?resolution=8", 422),
        ("/analytics?format=csv", 422),
    ];
    for (path, status) in cases {
        let reply = app.get(path, Some(&admin)).await;
        assert_eq!(reply.status, status, "{path}: {:?}", reply.body);
        assert!(reply.body["detail"].is_string());
    }

    assert_eq!(app.get("/analytics/872a1072cffffff", Some(&patient.token)).await.status, 403);
    assert_eq!(app.get("/analytics", None).await.status, 401);
}

#[tokio::test]
async fn k_rings_list_every_neighbour_nearest_first() {
    let app = TestApp::new();
    let admin = app.admin_token().await;
    let cell = cell_of(remote_point());

    let reply = app.get(&format!("/analytics/{cell}?k=2"), Some(&admin)).await;

    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let nearby = reply.body["nearby"].as_array().expect("nearby cells");
    assert_eq!(nearby.len(), 19);
    assert_eq!(nearby[0]["h3_index"], cell.to_string());
    let rings: Vec<u64> = nearby.iter().map(|n| n["ring"].as_u64().unwrap()).collect();
    assert!(rings.windows(2).all(|w| w[0] <= w[1]), "{rings:?}");
}

#[tokio::test]
async fn the_busiest_regions_come_as_a_ranked_list_or_as_geojson_hexagons() {
    let app = TestApp::new();
    let admin = app.admin_token().await;
    let (_, bus) = emulator_clients().await;
    let cell = cell_of(remote_point());
    let events: Vec<DomainEvent> = (0..3).map(|_| booking_event(cell)).collect();
    bus.put(&events).await.unwrap();
    poll(&app, &admin, &format!("/analytics/{cell}"), |r| r["total"] == 3).await;

    let list = app.get("/analytics?resolution=0&limit=100", Some(&admin)).await;
    let map = app.get("/analytics?resolution=0&limit=100&format=geojson", Some(&admin)).await;

    assert_eq!(list.status, 200, "{:?}", list.body);
    let regions = list.body.as_array().unwrap();
    let totals: Vec<i64> = regions.iter().map(|r| r["total"].as_i64().unwrap()).collect();
    assert!(totals.windows(2).all(|w| w[0] >= w[1]), "busiest first: {totals:?}");
    let base = cell.parent(h3o::Resolution::Zero).to_string();
    assert!(regions.iter().any(|r| r["h3_index"] == base.as_str() && r["resolution"] == 0));
    assert_eq!(map.header("content-type"), Some("application/geo+json"));
    assert_eq!(map.body["type"], "FeatureCollection");
    let features = map.body["features"].as_array().unwrap();
    assert_eq!(features.len(), regions.len());
    for feature in features {
        assert!(matches!(feature["geometry"]["type"].as_str(), Some("Polygon" | "MultiPolygon")));
    }
}
