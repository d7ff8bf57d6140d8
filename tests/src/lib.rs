//! Helpers for the end-to-end tests: a client for the API that `make test` serves, and direct
//! access to the emulator for setting up what no public endpoint may create (the first Admin).
//!
//! The tests need the stack: run them with `make test`, which sets `API_URL` and the emulator's
//! settings. Without them a test fails with a message saying so, rather than passing silently.

use std::sync::atomic::{AtomicU64, Ordering};

use rand::Rng;
use reqwest::{Client, Response};
use serde_json::{Value, json};
use shared::Config;
use shared::auth::JwtKeys;
use shared::events::{Delivery, EventBridgeBus, Trace};
use shared::ids::RandomIds;
use shared::store::DynamoStore;
use shared::users::register::{NewUser, RegisterRequest, Registrar, register};
use shared::users::{Role, User, UserId, UserStatus};

/// The API under test.
pub struct TestApp {
    pub base_url: String,
    pub client: Client,
}

/// A response, read once: status, headers and the JSON body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    async fn read(response: Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("a readable body");
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("status {status}: body is not JSON: {text:?}"));
        Self { status, headers, body }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn detail(&self) -> &str {
        self.body["detail"].as_str().unwrap_or_default()
    }
}

/// A password that passes the rules.
pub const PASSWORD: &str = "correct horse battery";

impl TestApp {
    pub fn new() -> Self {
        let base_url = std::env::var("API_URL")
            .expect("API_URL is not set: run the end-to-end tests with `make test`");
        Self { base_url: base_url.trim_end_matches('/').to_owned(), client: Client::new() }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub async fn post_json(&self, path: &str, body: &Value, token: Option<&str>) -> Reply {
        let mut request = self.client.post(self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        Reply::read(request.send().await.expect("the API answers")).await
    }

    pub async fn post_raw(&self, path: &str, content_type: &str, body: Vec<u8>) -> Reply {
        let request =
            self.client.post(self.url(path)).header("content-type", content_type).body(body);
        Reply::read(request.send().await.expect("the API answers")).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        send_get(request).await
    }

    pub async fn get_with_authorization(&self, path: &str, authorization: &str) -> Reply {
        let request = self.client.get(self.url(path)).header("authorization", authorization);
        Reply::read(request.send().await.expect("the API answers")).await
    }

    pub async fn register(&self, body: &Value, token: Option<&str>) -> Reply {
        self.post_json("/register", body, token).await
    }

    /// Registers a new patient with a unique email and username, returning its email.
    pub async fn register_patient(&self) -> String {
        let person = Person::new();
        let reply = self.register(&person.json("Patient"), None).await;
        assert_eq!(reply.status, 201, "{:?}", reply.body);
        person.email
    }

    /// Logs in with the OAuth2 password form, as the predecessor's clients and Swagger UI do.
    pub async fn login_form(&self, email: &str, password: &str) -> Reply {
        let form = [("username", email), ("password", password), ("grant_type", "password")];
        let request = self.client.post(self.url("/login")).form(&form);
        Reply::read(request.send().await.expect("the API answers")).await
    }

    /// A token for a user, asserting that login works.
    pub async fn token_for(&self, email: &str) -> String {
        let reply = self.login_form(email, PASSWORD).await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        reply.body["access_token"].as_str().expect("a token").to_owned()
    }

    /// Creates an Admin directly in the emulator (no public endpoint may) and logs it in.
    pub async fn admin_token(&self) -> String {
        let person = Person::new();
        let request = RegisterRequest {
            username: person.username.clone(),
            email: person.email.clone(),
            password: PASSWORD.to_owned(),
            role: Role::Admin,
        };
        let new_user = NewUser::try_from(request).expect("valid admin");
        let (store, bus) = emulator_clients().await;
        let delivery = Delivery { bus: &bus, outbox: &store };
        register(&store, &RandomIds, &trace(), &delivery, Registrar::Operator, new_user)
            .await
            .expect("the admin is stored");
        self.token_for(&person.email).await
    }
}

impl Default for TestApp {
    fn default() -> Self {
        Self::new()
    }
}

/// The store the functions use, reached directly through the emulator.
pub async fn emulator_store() -> DynamoStore {
    emulator_clients().await.0
}

/// The store and the event bus the functions use, reached directly through the emulator.
pub async fn emulator_clients() -> (DynamoStore, EventBridgeBus) {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok(),
        "AWS_ENDPOINT_URL is not set: run the end-to-end tests with `make test`"
    );
    let config = Config::from_env().expect("the test environment is configured");
    shared::app::clients(&config.table_name, &config.event_bus_name).await
}

/// A trace for operations run directly from a test.
pub fn trace() -> Trace {
    Trace::new(Some("e2e-test".into()), time::OffsetDateTime::now_utc())
}

/// A unique person for a test: emails and usernames never collide between tests or runs.
pub struct Person {
    pub username: String,
    pub email: String,
}

impl Person {
    pub fn new() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tag: u32 = rand::rng().random();
        Self {
            username: format!("user-{tag:08x}-{n}"),
            email: format!("u{tag:08x}.{n}@example.com"),
        }
    }

    pub fn json(&self, role: &str) -> Value {
        json!({"username": self.username, "email": self.email, "password": PASSWORD, "role": role})
    }
}

impl Default for Person {
    fn default() -> Self {
        Self::new()
    }
}

/// A token signed with the stack's key that expired an hour ago.
pub fn expired_token(role: Role) -> String {
    let config = Config::from_env().expect("the test environment is configured");
    let keys = JwtKeys::new(&config.jwt).expect("keys");
    let two_hours_ago = time::OffsetDateTime::now_utc() - time::Duration::hours(2);
    let someone = User {
        id: UserId::new(1),
        username: "someone".into(),
        email: "someone@example.com".into(),
        role,
        status: UserStatus::Active,
        password_hash: String::new(),
        created_at: two_hours_ago,
        token_version: 0,
    };
    keys.issue(&someone, two_hours_ago).expect("a token").access_token
}

// --- Profiles, doctors and appointments ------------------------------------------------------

/// A short random tag that keeps names (specializations, places) unique to one test and run.
pub fn unique_tag() -> String {
    format!("{:08x}", rand::rng().random::<u32>())
}

/// A signed-in account made for one test.
pub struct Account {
    pub person: Person,
    pub id: u64,
    pub token: String,
}

impl TestApp {
    /// A POST without a body.
    pub async fn post_empty(&self, path: &str, token: Option<&str>) -> Reply {
        let mut request = self.client.post(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        Reply::read(request.send().await.expect("the API answers")).await
    }

    /// A GET of a `Link` target: a path (resolved against the API) or an absolute URL.
    pub async fn get_link(&self, link: &str, token: &str) -> Reply {
        let url = if link.starts_with("http://") || link.starts_with("https://") {
            link.to_owned()
        } else {
            self.url(link)
        };
        send_get(self.client.get(url).bearer_auth(token)).await
    }

    /// Registers a new account of `role` (Doctor and Admin need `admin_token`) and logs it in.
    pub async fn account(&self, role: &str, admin_token: Option<&str>) -> Account {
        let person = Person::new();
        let reply = self.register(&person.json(role), admin_token).await;
        assert_eq!(reply.status, 201, "{role}: {:?}", reply.body);
        let id = reply.body["id"].as_u64().expect("an integer id");
        let token = self.token_for(&person.email).await;
        Account { person, id, token }
    }

    /// `POST /setup-patient` with the coordinates in a JSON body.
    pub async fn setup_patient(&self, token: &str, lat: f64, lng: f64) -> Reply {
        let body = json!({"latitude": lat, "longitude": lng});
        self.post_json("/setup-patient", &body, Some(token)).await
    }

    /// A new patient with a profile at the point, asserting that it was created.
    pub async fn patient_at(&self, lat: f64, lng: f64) -> Account {
        let patient = self.account("Patient", None).await;
        let reply = self.setup_patient(&patient.token, lat, lng).await;
        assert_eq!(reply.status, 201, "{:?}", reply.body);
        patient
    }

    /// `POST /doctors/profile`.
    pub async fn doctor_profile(
        &self,
        token: &str,
        specialization: &str,
        lat: f64,
        lng: f64,
    ) -> Reply {
        let body = json!({"specialization": specialization, "latitude": lat, "longitude": lng});
        self.post_json("/doctors/profile", &body, Some(token)).await
    }

    /// A new doctor, created by the admin, with a practice at the point: its token and id.
    pub async fn doctor(
        &self,
        admin_token: &str,
        specialization: &str,
        lat: f64,
        lng: f64,
    ) -> (String, u64) {
        let doctor = self.account("Doctor", Some(admin_token)).await;
        let reply = self.doctor_profile(&doctor.token, specialization, lat, lng).await;
        assert_eq!(reply.status, 201, "{:?}", reply.body);
        (doctor.token, doctor.id)
    }

    /// `POST /appointments` with the predecessor's body.
    pub async fn book(&self, token: &str, doctor_id: u64, datetime: &str) -> Reply {
        let body = json!({"doctor_id": doctor_id, "datetime": datetime});
        self.post_json("/appointments", &body, Some(token)).await
    }

    /// Every page of a list, following `Link: rel="next"` from `path` until there is none.
    pub async fn all_pages(&self, path: &str, token: &str) -> Vec<Reply> {
        let mut pages = vec![self.get(path, Some(token)).await];
        while let Some(link) = pages.last().and_then(next_link) {
            assert!(pages.len() < 1000, "the Link headers never end: {link}");
            let page = self.get_link(&link, token).await;
            assert_eq!(page.status, 200, "following {link}: {:?}", page.body);
            pages.push(page);
        }
        pages
    }
}

/// Sends a GET, repeating it (twice at most) while the answer is a fault of cargo-lambda's local
/// HTTP front rather than of a function: a `application/problem+json` 500 whose `type` is
/// `https://httpstatuses.com/500`. The functions never answer that way (their errors are
/// `{"detail": ...}`, and a panic comes back as the runtime's `errorType` body), API Gateway
/// has no such fault, and a GET is safe to repeat. Each repeat is printed.
async fn send_get(request: reqwest::RequestBuilder) -> Reply {
    let mut attempt = 0;
    loop {
        let again = request.try_clone().expect("a GET has no streaming body");
        let reply = Reply::read(again.send().await.expect("the API answers")).await;
        if attempt == 2 || !is_local_front_fault(&reply) {
            return reply;
        }
        attempt += 1;
        eprintln!(
            "the local HTTP front answered its own 500 ({:?}); repeating the GET",
            reply.body
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

fn is_local_front_fault(reply: &Reply) -> bool {
    reply.status == 500 && reply.body["type"] == "https://httpstatuses.com/500"
}

/// The target of a `Link` header's `rel="next"` entry (RFC 8288), if there is one.
pub fn next_link(reply: &Reply) -> Option<String> {
    reply
        .headers
        .get_all(reqwest::header::LINK)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .find_map(|entry| {
            let (target, params) = entry.trim().strip_prefix('<')?.split_once('>')?;
            params
                .split(';')
                .filter_map(|param| param.trim().split_once('='))
                .any(|(name, value)| {
                    name.trim().eq_ignore_ascii_case("rel")
                        && value
                            .trim()
                            .trim_matches('"')
                            .split_whitespace()
                            .any(|rel| rel.eq_ignore_ascii_case("next"))
                })
                .then(|| target.to_owned())
        })
}

/// The value of one query parameter in a link or URL (not decoded).
pub fn query_param(link: &str, name: &str) -> Option<String> {
    let (_, query) = link.split_once('?')?;
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

/// A half-hour slot (on the grid from midnight UTC) at a random time of the day `days_ahead`
/// days from now: from 1 to 365 days, so it is always in the future and bookable.
pub fn future_slot_time(days_ahead: i64) -> time::OffsetDateTime {
    assert!((1..=365).contains(&days_ahead), "{days_ahead} days ahead");
    let day = (time::OffsetDateTime::now_utc() + time::Duration::days(days_ahead)).date();
    let minute: i64 = 30 * rand::rng().random_range(0..48);
    day.midnight().assume_utc() + time::Duration::minutes(minute)
}

/// [`future_slot_time`] as the predecessor sent it: `2030-06-01T10:00:00`, no offset (UTC).
pub fn future_slot(days_ahead: i64) -> String {
    naive(future_slot_time(days_ahead))
}

/// A UTC time without its offset: `2030-06-01T10:00:00`.
pub fn naive(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// A time as the API shows it: RFC 3339 in UTC, `2030-06-01T10:00:00Z`.
pub fn rfc3339(t: time::OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(&time::format_description::well_known::Rfc3339)
        .expect("a formattable time")
}

/// A random point in the empty South Pacific, far from any other test's practice, so nearby
/// searches around it see only the doctors a test put there.
pub fn remote_point() -> (f64, f64) {
    let mut rng = rand::rng();
    (-45.0 + rng.random_range(0.0..20.0), -150.0 + rng.random_range(0.0..30.0))
}

// --- Accounts, sign-in throttling, CORS -------------------------------------------------------

/// The sign-in limits the stack's functions run with (`make test` shortens the window).
pub fn login_limits() -> shared::throttle::ThrottleConfig {
    Config::from_env().expect("the test environment is configured").login_throttle
}

/// The web origin `make test` allows (`CORS_ALLOWED_ORIGINS`).
pub fn allowed_origin() -> String {
    let origins = std::env::var("CORS_ALLOWED_ORIGINS")
        .expect("CORS_ALLOWED_ORIGINS is not set: run the end-to-end tests with `make test`");
    origins.split(',').next().unwrap_or_default().trim().to_owned()
}

impl TestApp {
    /// A PATCH with a JSON body.
    pub async fn patch_json(&self, path: &str, body: &Value, token: Option<&str>) -> Reply {
        let mut request = self.client.patch(self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        Reply::read(request.send().await.expect("the API answers")).await
    }

    /// `PATCH /users/{id}` by an Admin.
    pub async fn update_user(&self, admin_token: &str, id: u64, body: Value) -> Reply {
        self.patch_json(&format!("/users/{id}"), &body, Some(admin_token)).await
    }

    /// `POST /users/me/password`.
    pub async fn change_password(&self, token: &str, current: &str, new: &str) -> Reply {
        let body = json!({"current_password": current, "new_password": new});
        self.post_json("/users/me/password", &body, Some(token)).await
    }

    /// An Admin account, created directly in the emulator, with its id and token.
    pub async fn admin_account(&self) -> Account {
        let token = self.admin_token().await;
        let me = self.get("/users/me", Some(&token)).await;
        assert_eq!(me.status, 200, "{:?}", me.body);
        let email = me.body["email"].as_str().expect("an email").to_owned();
        let username = me.body["username"].as_str().expect("a username").to_owned();
        let id = me.body["id"].as_u64().expect("an id");
        Account { person: Person { username, email }, id, token }
    }

    /// A request with a method and headers only, answered without a JSON body (a CORS
    /// preflight): its status and headers.
    pub async fn bare(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (u16, reqwest::header::HeaderMap) {
        let mut request = self.client.request(method, self.url(path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("the API answers");
        (response.status().as_u16(), response.headers().clone())
    }
}
