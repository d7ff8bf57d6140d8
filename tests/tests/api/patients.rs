use e2e::{TestApp, expired_token};
use futures::future::join_all;
use serde_json::json;
use shared::users::Role;

const NEW_YORK: (f64, f64) = (40.7128, -74.0060);
const NEW_YORK_CELL: &str = "872a1072cffffff";

#[tokio::test]
async fn a_patient_sets_up_a_profile_with_query_parameters_as_the_predecessor_did() {
    let app = TestApp::new();
    let patient = app.account("Patient", None).await;

    let reply = app
        .post_empty("/setup-patient?latitude=40.7128&longitude=-74.0060", Some(&patient.token))
        .await;

    assert_eq!(reply.status, 201, "{:?}", reply.body);
    assert_eq!(reply.body["h3_index"], NEW_YORK_CELL, "{:?}", reply.body);
    assert_eq!(reply.body["message"], "Patient profile created", "{:?}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn a_patient_sets_up_a_profile_with_a_json_body() {
    let app = TestApp::new();
    let patient = app.account("Patient", None).await;

    let reply = app.setup_patient(&patient.token, NEW_YORK.0, NEW_YORK.1).await;

    assert_eq!(reply.status, 201, "{:?}", reply.body);
    assert_eq!(reply.body["h3_index"], NEW_YORK_CELL, "{:?}", reply.body);
    assert_eq!(reply.body["message"], "Patient profile created", "{:?}", reply.body);
}

#[tokio::test]
async fn setting_up_again_moves_the_patient_with_200_never_500() {
    let app = TestApp::new();
    let patient = app.patient_at(NEW_YORK.0, NEW_YORK.1).await;

    let london = app.setup_patient(&patient.token, 51.5074, -0.1278).await;
    let by_query = app
        .post_empty("/setup-patient?latitude=-33.8688&longitude=151.2093", Some(&patient.token))
        .await;
    let back_home = app.setup_patient(&patient.token, NEW_YORK.0, NEW_YORK.1).await;

    for (reply, place) in [(&london, "London"), (&by_query, "Sydney"), (&back_home, "NY")] {
        assert_eq!(reply.status, 200, "{place}: {:?}", reply.body);
        assert_eq!(reply.body["message"], "Patient profile updated", "{place}: {:?}", reply.body);
    }
    let london_cell = london.body["h3_index"].as_str().expect("a cell");
    let sydney_cell = by_query.body["h3_index"].as_str().expect("a cell");
    assert_eq!(london_cell.len(), 15, "{:?}", london.body);
    assert_ne!(london_cell, NEW_YORK_CELL, "{:?}", london.body);
    assert_ne!(sydney_cell, london_cell, "{:?}", by_query.body);
    assert_eq!(back_home.body["h3_index"], NEW_YORK_CELL);
}

#[tokio::test]
async fn no_token_or_a_bad_token_gives_401() {
    let app = TestApp::new();
    let expired = expired_token(Role::Patient);
    let path = "/setup-patient?latitude=40.7128&longitude=-74.0060";

    let anonymous = app.post_empty(path, None).await;
    let garbage = app.post_empty(path, Some("not-a-jwt")).await;
    let late = app.post_empty(path, Some(&expired)).await;

    for reply in [&anonymous, &garbage, &late] {
        assert_eq!(reply.status, 401, "{:?}", reply.body);
        assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
    }
}

#[tokio::test]
async fn doctors_and_admins_cannot_set_up_a_patient_profile() {
    let app = TestApp::new();
    let admin_token = app.admin_token().await;
    let doctor = app.account("Doctor", Some(&admin_token)).await;

    for (token, role) in [(&doctor.token, "Doctor"), (&admin_token, "Admin")] {
        let reply = app.setup_patient(token, NEW_YORK.0, NEW_YORK.1).await;

        assert_eq!(reply.status, 403, "{role}: {:?}", reply.body);
        assert!(!reply.detail().is_empty(), "{role}: {:?}", reply.body);
    }
}

#[tokio::test]
async fn bad_query_coordinates_give_422_naming_the_field() {
    let app = TestApp::new();
    let patient = app.account("Patient", None).await;
    let cases = [
        ("latitude=40.7128", vec!["longitude"]),
        ("longitude=-74.0060", vec!["latitude"]),
        ("latitude=abc&longitude=-74.0060", vec!["latitude"]),
        ("latitude=40.7128&longitude=abc", vec!["longitude"]),
        ("latitude=NaN&longitude=0", vec!["latitude"]),
        ("latitude=0&longitude=inf", vec!["longitude"]),
        ("latitude=-inf&longitude=NaN", vec!["latitude", "longitude"]),
        ("latitude=1000&longitude=0", vec!["latitude"]),
        ("latitude=91&longitude=0", vec!["latitude"]),
        ("latitude=-90.5&longitude=0", vec!["latitude"]),
        ("latitude=0&longitude=180.5", vec!["longitude"]),
        ("latitude=0&longitude=-181", vec!["longitude"]),
        ("latitude=&longitude=0", vec!["latitude"]),
    ];

    for (query, fields) in cases {
        let reply = app.post_empty(&format!("/setup-patient?{query}"), Some(&patient.token)).await;

        assert_eq!(reply.status, 422, "{query}: {:?}", reply.body);
        let named: Vec<&str> = reply.body["errors"]
            .as_array()
            .expect("a list of errors")
            .iter()
            .filter_map(|e| e["field"].as_str())
            .collect();
        assert_eq!(named, fields, "{query}: {:?}", reply.body);
        assert!(reply.detail().contains(fields[0]), "{query}: {:?}", reply.body);
    }
}

#[tokio::test]
async fn bad_json_coordinates_give_422_naming_the_field() {
    let app = TestApp::new();
    let patient = app.account("Patient", None).await;
    let cases = [
        (json!({"latitude": 40.7128}), "longitude"),
        (json!({"longitude": -74.0060}), "latitude"),
        (json!({}), "latitude"),
        (json!({"latitude": "abc", "longitude": 0}), "latitude"),
        (json!({"latitude": 0, "longitude": "abc"}), "longitude"),
        (json!({"latitude": 1000, "longitude": 0}), "latitude"),
        (json!({"latitude": 91, "longitude": 0}), "latitude"),
        (json!({"latitude": 0, "longitude": 181}), "longitude"),
        (json!({"latitude": 0, "longitude": -180.0001}), "longitude"),
    ];

    for (body, field) in cases {
        let reply = app.post_json("/setup-patient", &body, Some(&patient.token)).await;

        assert_eq!(reply.status, 422, "{body}: {:?}", reply.body);
        assert_eq!(reply.body["errors"][0]["field"], field, "{body}: {:?}", reply.body);
        assert!(reply.detail().contains(field), "{body}: {:?}", reply.body);
    }
}

#[tokio::test]
async fn no_coordinates_at_all_give_422() {
    let app = TestApp::new();
    let patient = app.account("Patient", None).await;

    let reply = app.post_empty("/setup-patient", Some(&patient.token)).await;

    assert_eq!(reply.status, 422, "{:?}", reply.body);
    assert!(reply.body["errors"][0]["field"].is_string(), "{:?}", reply.body);
}

#[tokio::test]
async fn the_edges_of_the_coordinate_ranges_are_valid() {
    let app = TestApp::new();
    let patient = app.account("Patient", None).await;
    let first = app.setup_patient(&patient.token, 90.0, 180.0).await;
    assert_eq!(first.status, 201, "(90, 180): {:?}", first.body);

    for (lat, lng) in [(-90.0, -180.0), (90.0, -180.0), (-90.0, 180.0), (0.0, 0.0)] {
        let reply = app.setup_patient(&patient.token, lat, lng).await;

        assert_eq!(reply.status, 200, "({lat}, {lng}): {:?}", reply.body);
        assert!(
            reply.body["h3_index"].as_str().is_some_and(|c| c.len() == 15),
            "({lat}, {lng}): {:?}",
            reply.body
        );
    }
    let by_query =
        app.post_empty("/setup-patient?latitude=90&longitude=180", Some(&patient.token)).await;
    assert_eq!(by_query.status, 200, "{:?}", by_query.body);
}

#[tokio::test]
async fn concurrent_first_setups_create_the_profile_once() {
    let app = TestApp::new();
    let patient = app.account("Patient", None).await;

    let replies =
        join_all((0..8).map(|i| app.setup_patient(&patient.token, 40.0 + f64::from(i), -74.0060)))
            .await;

    let created = replies.iter().filter(|r| r.status == 201).count();
    let moved = replies.iter().filter(|r| r.status == 200).count();
    assert_eq!((created, moved), (1, 7), "{replies:?}");
}
