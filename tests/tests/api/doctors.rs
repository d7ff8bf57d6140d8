use e2e::{TestApp, expired_token, next_link, remote_point, unique_tag};
use futures::future::join_all;
use serde_json::{Value, json};
use shared::geo::{Cell, GeoPoint};
use shared::users::Role;

const NEW_YORK_CELL: &str = "872a1072cffffff";

/// The doctors of a list reply, asserting that it is a JSON array.
fn doctors(reply: &e2e::Reply) -> &Vec<Value> {
    reply
        .body
        .as_array()
        .unwrap_or_else(|| panic!("status {}: not a JSON array: {:?}", reply.status, reply.body))
}

fn ids(reply: &e2e::Reply) -> Vec<u64> {
    doctors(reply).iter().map(|d| d["id"].as_u64().expect("an integer id")).collect()
}

fn cell_of(lat: f64, lng: f64) -> Cell {
    GeoPoint::parse(Some(lat), Some(lng), ("latitude", "longitude")).expect("a valid point").cell()
}

/// How many H3 rings separate two points' cells, within 5 (the oracle is the H3 library).
fn rings_between(from: (f64, f64), to: (f64, f64)) -> Option<u32> {
    let target = cell_of(to.0, to.1);
    cell_of(from.0, from.1)
        .disk(5)
        .into_iter()
        .find(|(cell, _)| *cell == target)
        .map(|(_, ring)| ring)
}

#[tokio::test]
async fn a_doctor_creates_a_profile_then_updates_it() {
    let app = TestApp::new();
    let admin_token = app.admin_token().await;
    let doctor = app.account("Doctor", Some(&admin_token)).await;
    let specialization = format!("Cardiology {}", unique_tag());

    let created = app.doctor_profile(&doctor.token, &specialization, 40.7128, -74.0060).await;
    let updated = app.doctor_profile(&doctor.token, " Neurology ", 51.5074, -0.1278).await;

    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(
        created.body,
        json!({
            "id": doctor.id,
            "username": doctor.person.username,
            "specialization": specialization,
            "h3_index": NEW_YORK_CELL,
        })
    );
    assert_eq!(updated.status, 200, "{:?}", updated.body);
    assert_eq!(updated.body["id"], doctor.id, "{:?}", updated.body);
    assert_eq!(updated.body["username"], doctor.person.username.as_str());
    assert_eq!(updated.body["specialization"], "Neurology", "trimmed: {:?}", updated.body);
    assert_eq!(
        updated.body["h3_index"],
        cell_of(51.5074, -0.1278).to_string(),
        "{:?}",
        updated.body
    );
}

#[tokio::test]
async fn an_updated_profile_is_listed_under_its_new_specialization_and_place_only() {
    let app = TestApp::new();
    let admin_token = app.admin_token().await;
    let (old_place, new_place) = (remote_point(), remote_point());
    let (old_spec, new_spec) = (format!("Old {}", unique_tag()), format!("New {}", unique_tag()));
    let (token, id) = app.doctor(&admin_token, &old_spec, old_place.0, old_place.1).await;
    let moved = app.doctor_profile(&token, &new_spec, new_place.0, new_place.1).await;
    assert_eq!(moved.status, 200, "{:?}", moved.body);

    let by_old_spec = app.get(&format!("/doctors?specialization={old_spec}"), Some(&token)).await;
    let by_new_spec = app.get(&format!("/doctors?specialization={new_spec}"), Some(&token)).await;
    let near_old = app
        .get(
            &format!("/doctors?near_lat={}&near_lng={}&k=0", old_place.0, old_place.1),
            Some(&token),
        )
        .await;
    let near_new = app
        .get(
            &format!("/doctors?near_lat={}&near_lng={}&k=0", new_place.0, new_place.1),
            Some(&token),
        )
        .await;

    assert_eq!(by_old_spec.status, 200, "{:?}", by_old_spec.body);
    assert_eq!(ids(&by_old_spec), Vec::<u64>::new(), "{:?}", by_old_spec.body);
    assert_eq!(ids(&by_new_spec), vec![id], "{:?}", by_new_spec.body);
    assert_eq!(ids(&near_old), Vec::<u64>::new(), "{:?}", near_old.body);
    assert_eq!(ids(&near_new), vec![id], "{:?}", near_new.body);
    assert_eq!(near_new.body[0]["specialization"], new_spec.as_str());
}

#[tokio::test]
async fn an_empty_specialization_or_bad_coordinates_give_422_naming_the_field() {
    let app = TestApp::new();
    let admin_token = app.admin_token().await;
    let doctor = app.account("Doctor", Some(&admin_token)).await;
    let cases = [
        (json!({"specialization": "", "latitude": 0, "longitude": 0}), "specialization"),
        (json!({"specialization": "   ", "latitude": 0, "longitude": 0}), "specialization"),
        (json!({"latitude": 0, "longitude": 0}), "specialization"),
        (
            json!({"specialization": "x".repeat(101), "latitude": 0, "longitude": 0}),
            "specialization",
        ),
        (json!({"specialization": "Cardiology", "longitude": 0}), "latitude"),
        (json!({"specialization": "Cardiology", "latitude": 0}), "longitude"),
        (json!({"specialization": "Cardiology", "latitude": 91, "longitude": 0}), "latitude"),
        (json!({"specialization": "Cardiology", "latitude": 1000, "longitude": 0}), "latitude"),
        (json!({"specialization": "Cardiology", "latitude": 0, "longitude": -181}), "longitude"),
        (json!({"specialization": "Cardiology", "latitude": "abc", "longitude": 0}), "latitude"),
    ];

    for (body, field) in cases {
        let reply = app.post_json("/doctors/profile", &body, Some(&doctor.token)).await;

        assert_eq!(reply.status, 422, "{body}: {:?}", reply.body);
        assert_eq!(reply.body["errors"][0]["field"], field, "{body}: {:?}", reply.body);
        assert!(reply.detail().contains(field), "{body}: {:?}", reply.body);
    }
}

#[tokio::test]
async fn only_doctors_have_a_doctor_profile() {
    let app = TestApp::new();
    let admin_token = app.admin_token().await;
    let patient = app.account("Patient", None).await;

    let by_patient = app.doctor_profile(&patient.token, "Cardiology", 40.7128, -74.0060).await;
    let by_admin = app.doctor_profile(&admin_token, "Cardiology", 40.7128, -74.0060).await;
    let anonymous = app
        .post_json(
            "/doctors/profile",
            &json!({"specialization": "Cardiology", "latitude": 0, "longitude": 0}),
            None,
        )
        .await;

    assert_eq!(by_patient.status, 403, "{:?}", by_patient.body);
    assert_eq!(by_admin.status, 403, "{:?}", by_admin.body);
    assert_eq!(anonymous.status, 401, "{:?}", anonymous.body);
    assert_eq!(anonymous.header("www-authenticate"), Some("Bearer"));
}

#[tokio::test]
async fn listing_doctors_needs_a_token() {
    let app = TestApp::new();
    let expired = expired_token(Role::Patient);

    let anonymous = app.get("/doctors", None).await;
    let late = app.get("/doctors", Some(&expired)).await;

    for reply in [&anonymous, &late] {
        assert_eq!(reply.status, 401, "{:?}", reply.body);
        assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
    }
}

#[tokio::test]
async fn any_signed_in_user_filters_doctors_by_specialization_without_case() {
    let app = TestApp::new();
    let admin_token = app.admin_token().await;
    let tag = unique_tag();
    let specialization = format!("Dermatology-{tag}");
    let (doctor_token, first) = app.doctor(&admin_token, &specialization, 40.7128, -74.0060).await;
    let (_, second) =
        app.doctor(&admin_token, &specialization.to_uppercase(), 48.8566, 2.3522).await;
    let (_, _other) = app.doctor(&admin_token, &format!("Oncology-{tag}"), 40.7128, -74.0060).await;
    let patient = app.account("Patient", None).await;
    let query = format!("/doctors?specialization=dermatology-{tag}");

    let by_patient = app.get(&query, Some(&patient.token)).await;
    let by_doctor = app.get(&query, Some(&doctor_token)).await;
    let by_admin = app.get(&query, Some(&admin_token)).await;
    let by_prefix = app.get("/doctors?specialization=dermatology", Some(&patient.token)).await;

    for reply in [&by_patient, &by_doctor, &by_admin] {
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        let mut found = ids(reply);
        found.sort_unstable();
        let mut expected = vec![first, second];
        expected.sort_unstable();
        assert_eq!(found, expected, "{:?}", reply.body);
        for doctor in doctors(reply) {
            let mut keys: Vec<&str> =
                doctor.as_object().expect("an object").keys().map(String::as_str).collect();
            keys.sort_unstable();
            assert_eq!(keys, ["h3_index", "id", "specialization", "username"], "{doctor}");
            assert!(
                doctor["specialization"]
                    .as_str()
                    .is_some_and(|s| s.eq_ignore_ascii_case(&specialization)),
                "{doctor}"
            );
        }
    }
    assert!(
        !ids(&by_prefix).contains(&first),
        "an exact match, not a prefix: {:?}",
        by_prefix.body
    );
}

#[tokio::test]
async fn a_doctor_without_a_profile_is_not_listed() {
    let app = TestApp::new();
    let admin_token = app.admin_token().await;
    let without = app.account("Doctor", Some(&admin_token)).await;
    let (_, with) =
        app.doctor(&admin_token, &format!("Listed {}", unique_tag()), 40.7128, -74.0060).await;

    let pages = app.all_pages("/doctors?limit=100", &admin_token).await;

    let mut listed = Vec::new();
    for page in &pages {
        assert_eq!(page.status, 200, "{:?}", page.body);
        listed.extend(ids(page));
    }
    assert!(listed.contains(&with), "{listed:?}");
    assert!(!listed.contains(&without.id), "{listed:?}");
}

#[tokio::test]
async fn a_specialization_list_pages_through_link_headers() {
    let app = TestApp::new();
    let admin_token = app.admin_token().await;
    let specialization = format!("Paged {}", unique_tag());
    let mut expected = Vec::new();
    for _ in 0..3 {
        let (_, id) = app.doctor(&admin_token, &specialization, 40.7128, -74.0060).await;
        expected.push(id);
    }
    expected.sort_unstable();

    let pages = app
        .all_pages(&format!("/doctors?specialization={specialization}&limit=2"), &admin_token)
        .await;

    let mut seen = Vec::new();
    for page in &pages {
        assert_eq!(page.status, 200, "{:?}", page.body);
        assert!(doctors(page).len() <= 2, "{:?}", page.body);
        seen.extend(ids(page));
    }
    assert!(pages.len() >= 2, "a Link header after the first page");
    seen.sort_unstable();
    assert_eq!(seen, expected, "each doctor once");
}

#[tokio::test]
async fn a_nearby_search_lists_doctors_within_k_rings_nearest_first() {
    let app = TestApp::new();
    let admin_token = app.admin_token().await;
    let origin = remote_point();
    let near = (origin.0 + 0.03, origin.1);
    let far = (origin.0 + 0.5, origin.1);
    let ring_of_near = rings_between(origin, near).expect("within 5 rings");
    assert!(ring_of_near >= 1, "the near doctor is in another cell");
    let spec = format!("Nearby {}", unique_tag());
    // Created farthest first, so that creation order cannot pass for ring order.
    let (_, far_id) = app.doctor(&admin_token, &spec, far.0, far.1).await;
    let (_, near_id) = app.doctor(&admin_token, &spec, near.0, near.1).await;
    let (_, here_id) = app.doctor(&admin_token, &spec, origin.0, origin.1).await;
    let patient = app.account("Patient", None).await;
    let around = |k: &str| format!("/doctors?near_lat={}&near_lng={}{k}", origin.0, origin.1);

    let k5 = app.get(&around("&k=5"), Some(&patient.token)).await;
    let k0 = app.get(&around("&k=0"), Some(&patient.token)).await;
    let default_k = app.get(&around(""), Some(&patient.token)).await;

    assert_eq!(k5.status, 200, "{:?}", k5.body);
    assert_eq!(ids(&k5), vec![here_id, near_id], "{:?}", k5.body);
    assert_eq!(k5.body[0]["ring"], 0, "{:?}", k5.body);
    assert_eq!(k5.body[1]["ring"], ring_of_near, "{:?}", k5.body);
    assert_eq!(k5.body[0]["h3_index"], cell_of(origin.0, origin.1).to_string());
    assert_eq!(k5.body[0]["specialization"], spec.as_str());
    assert!(k5.body[0]["username"].is_string(), "{:?}", k5.body);
    assert!(!ids(&k5).contains(&far_id), "{:?}", k5.body);
    assert_eq!(k0.status, 200, "{:?}", k0.body);
    assert_eq!(ids(&k0), vec![here_id], "{:?}", k0.body);
    assert_eq!(default_k.status, 200, "{:?}", default_k.body);
    let expected_default = if ring_of_near <= 1 { vec![here_id, near_id] } else { vec![here_id] };
    assert_eq!(ids(&default_k), expected_default, "k defaults to 1");
}

#[tokio::test]
async fn a_nearby_search_combines_with_a_specialization_and_pages() {
    let app = TestApp::new();
    let admin_token = app.admin_token().await;
    let origin = remote_point();
    let tag = unique_tag();
    let (wanted, other) = (format!("Wanted {tag}"), format!("Other {tag}"));
    let mut expected = Vec::new();
    for _ in 0..3 {
        let (_, id) = app.doctor(&admin_token, &wanted, origin.0, origin.1).await;
        expected.push(id);
    }
    let (_, other_id) = app.doctor(&admin_token, &other, origin.0, origin.1).await;
    let path = format!(
        "/doctors?near_lat={}&near_lng={}&k=0&specialization={}&limit=2",
        origin.0,
        origin.1,
        wanted.to_lowercase()
    );

    let pages = app.all_pages(&path, &admin_token).await;

    let mut seen = Vec::new();
    for page in &pages {
        assert_eq!(page.status, 200, "{:?}", page.body);
        assert!(doctors(page).len() <= 2, "{:?}", page.body);
        for doctor in doctors(page) {
            assert_eq!(doctor["ring"], 0, "{doctor}");
        }
        seen.extend(ids(page));
    }
    assert_eq!(pages.len(), 2, "3 doctors at 2 a page");
    assert!(!seen.contains(&other_id), "{seen:?}");
    seen.sort_unstable();
    expected.sort_unstable();
    assert_eq!(seen, expected, "each doctor once");
}

#[tokio::test]
async fn bad_nearby_parameters_give_422_naming_the_field() {
    let app = TestApp::new();
    let patient = app.account("Patient", None).await;
    let cases = [
        ("near_lat=0&near_lng=0&k=6", "k"),
        ("near_lat=0&near_lng=0&k=-1", "k"),
        ("near_lat=0&near_lng=0&k=two", "k"),
        ("near_lat=10", "near_lng"),
        ("near_lng=10", "near_lat"),
        ("k=2", "k"),
        ("near_lat=abc&near_lng=0", "near_lat"),
        ("near_lat=91&near_lng=0", "near_lat"),
        ("near_lat=0&near_lng=181", "near_lng"),
        ("near_lat=NaN&near_lng=0", "near_lat"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
    ];

    for (query, field) in cases {
        let reply = app.get(&format!("/doctors?{query}"), Some(&patient.token)).await;

        assert_eq!(reply.status, 422, "{query}: {:?}", reply.body);
        assert_eq!(reply.body["errors"][0]["field"], field, "{query}: {:?}", reply.body);
    }
}

#[tokio::test]
async fn a_doctors_cursor_is_refused_when_tampered_or_used_by_someone_else() {
    let app = TestApp::new();
    let admin_token = app.admin_token().await;
    let specialization = format!("Cursor {}", unique_tag());
    for _ in 0..2 {
        app.doctor(&admin_token, &specialization, 40.7128, -74.0060).await;
    }
    let first = app
        .get(&format!("/doctors?specialization={specialization}&limit=1"), Some(&admin_token))
        .await;
    let link = next_link(&first).expect("a Link header to the second page");
    let patient = app.account("Patient", None).await;

    let by_someone_else = app.get_link(&link, &patient.token).await;
    let by_owner = app.get_link(&link, &admin_token).await;

    assert_eq!(by_someone_else.status, 422, "{:?}", by_someone_else.body);
    assert_eq!(by_someone_else.body["errors"][0]["field"], "next");
    assert_eq!(by_owner.status, 200, "{:?}", by_owner.body);
    assert_eq!(doctors(&by_owner).len(), 1, "{:?}", by_owner.body);
}

#[tokio::test]
async fn concurrent_profile_updates_by_one_doctor_never_fail_and_leave_one_practice() {
    let app = TestApp::new();
    let admin_token = app.admin_token().await;
    let doctor = app.account("Doctor", Some(&admin_token)).await;
    let tag = unique_tag();
    let updates: Vec<(String, (f64, f64))> =
        (0..8).map(|i| (format!("Concurrent {tag} {i}"), remote_point())).collect();

    let replies = join_all(
        updates
            .iter()
            .map(|(spec, (lat, lng))| app.doctor_profile(&doctor.token, spec, *lat, *lng)),
    )
    .await;

    let mut by_spec = Vec::new();
    let mut by_place = Vec::new();
    for (spec, (lat, lng)) in &updates {
        let listed = app.get(&format!("/doctors?specialization={spec}"), Some(&doctor.token)).await;
        let near = app
            .get(&format!("/doctors?near_lat={lat}&near_lng={lng}&k=0"), Some(&doctor.token))
            .await;
        if ids(&listed).contains(&doctor.id) {
            by_spec.push(listed.body[0].clone());
        }
        if ids(&near).contains(&doctor.id) {
            by_place.push(spec.clone());
        }
    }
    assert_eq!(by_spec.len(), 1, "listed under one specialization: {by_spec:?}");
    assert_eq!(
        by_place,
        vec![by_spec[0]["specialization"].as_str().unwrap_or_default()],
        "found near one place only, the one of its profile"
    );
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert!(statuses.iter().filter(|s| **s == 201).count() <= 1, "created once: {replies:?}");
    assert!(
        statuses.iter().all(|s| [200, 201, 503].contains(s)),
        "each update is stored, or refused as busy (503) to be retried, never a 500: \
         {statuses:?}: {replies:?}"
    );
}

#[tokio::test]
async fn a_specialization_filter_ignores_case_beyond_ascii() {
    let app = TestApp::new();
    let admin_token = app.admin_token().await;
    let specialization = format!("Ärztliche Öffnung {}", unique_tag());
    let (token, id) = app.doctor(&admin_token, &specialization, 40.7128, -74.0060).await;

    let lower = app
        .get(&format!("/doctors?specialization={}", specialization.to_lowercase()), Some(&token))
        .await;
    let upper = app
        .get(&format!("/doctors?specialization={}", specialization.to_uppercase()), Some(&token))
        .await;

    for reply in [&lower, &upper] {
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        assert_eq!(ids(reply), vec![id], "{:?}", reply.body);
        assert_eq!(reply.body[0]["specialization"], specialization.as_str());
    }
}

#[tokio::test]
async fn nearby_searches_reach_across_the_antimeridian_and_around_a_pole() {
    let app = TestApp::new();
    let admin_token = app.admin_token().await;
    let spec = format!("Edges {}", unique_tag());
    let lat = -40.0 + f64::from(rand::random::<u8>()) / 40.0;
    let (_, east) = app.doctor(&admin_token, &spec, lat, 179.98).await;
    let (_, polar) = app.doctor(&admin_token, &spec, 89.995, -100.0).await;
    let around = |lat: f64, lng: f64| {
        format!("/doctors?near_lat={lat}&near_lng={lng}&k=5&specialization={spec}")
    };

    let from_the_west = app.get(&around(lat, -179.98), Some(&admin_token)).await;
    let from_the_pole = app.get(&around(90.0, 180.0), Some(&admin_token)).await;

    assert_eq!(from_the_west.status, 200, "{:?}", from_the_west.body);
    assert_eq!(ids(&from_the_west), vec![east], "{:?}", from_the_west.body);
    let ring = from_the_west.body[0]["ring"].as_u64().expect("a ring");
    assert_eq!(
        u32::try_from(ring).ok(),
        rings_between((lat, -179.98), (lat, 179.98)),
        "{:?}",
        from_the_west.body
    );
    assert_eq!(from_the_pole.status, 200, "{:?}", from_the_pole.body);
    assert_eq!(ids(&from_the_pole), vec![polar], "{:?}", from_the_pole.body);
}
