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
use shared::auth::{AuthedUser, JwtKeys};
use shared::ids::{RandomIds, SystemClock};
use shared::store::DynamoStore;
use shared::users::register::{NewUser, RegisterRequest, register};
use shared::users::{Role, UserId};

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
        Self {
            status,
            headers,
            body,
        }
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
        Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            client: Client::new(),
        }
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
        let request = self
            .client
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body);
        Reply::read(request.send().await.expect("the API answers")).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        Reply::read(request.send().await.expect("the API answers")).await
    }

    pub async fn get_with_authorization(&self, path: &str, authorization: &str) -> Reply {
        let request = self
            .client
            .get(self.url(path))
            .header("authorization", authorization);
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
        let form = [
            ("username", email),
            ("password", password),
            ("grant_type", "password"),
        ];
        let request = self.client.post(self.url("/login")).form(&form);
        Reply::read(request.send().await.expect("the API answers")).await
    }

    /// A token for a user, asserting that login works.
    pub async fn token_for(&self, email: &str) -> String {
        let reply = self.login_form(email, PASSWORD).await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        reply.body["access_token"]
            .as_str()
            .expect("a token")
            .to_owned()
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
        let operator = AuthedUser {
            id: UserId::new(0),
            role: Role::Admin,
        };
        register(
            &emulator_store().await,
            &RandomIds,
            &SystemClock,
            Some(operator),
            new_user,
        )
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
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok(),
        "AWS_ENDPOINT_URL is not set: run the end-to-end tests with `make test`"
    );
    let config = Config::from_env().expect("the test environment is configured");
    DynamoStore::from_config(&config).await
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
    keys.issue(UserId::new(1), role, two_hours_ago)
        .expect("a token")
        .access_token
}
