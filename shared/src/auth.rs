//! Access tokens: issuing, verifying, and reading the bearer token of a request. Whether a
//! verified token still stands for its account is checked against the store (`session.rs`).

use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation, decode, encode};
use lambda_http::Request;
use lambda_http::http::header::AUTHORIZATION;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::config::JwtConfig;
use crate::users::{Role, User, UserId};

/// Clock skew tolerated on `exp`: Lambda hosts keep good time, so a few seconds are enough and a
/// token does not outlive its stated lifetime by a minute (the library's default).
const LEEWAY_SECONDS: u64 = 5;

/// The leeway as a timestamp difference.
const LEEWAY: i64 = LEEWAY_SECONDS as i64;

/// Whether `sub` is a user id written the one way tokens are issued: digits, no sign, no
/// leading zero.
fn is_canonical_id(sub: &str) -> bool {
    !sub.is_empty() && !sub.starts_with('0') && sub.bytes().all(|b| b.is_ascii_digit())
}

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// The user id, as a string (as the predecessor's tokens had it).
    pub sub: String,
    pub role: Role,
    pub iat: i64,
    pub exp: i64,
    /// The account's `token_version` when the token was issued; tokens issued before this claim
    /// existed count as version 0, as do accounts stored before it.
    #[serde(default)]
    pub token_version: u64,
}

/// A token whose signature and lifetime were checked: who it names, with what role and version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedToken {
    pub id: UserId,
    pub role: Role,
    pub token_version: u64,
}

/// A caller whose token was verified and still matches their account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthedUser {
    pub id: UserId,
    pub role: Role,
}

/// Why a request is not authenticated or not allowed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("Not authenticated: send an `Authorization: Bearer <token>` header.")]
    Missing,
    #[error("The Authorization header must use the Bearer scheme.")]
    NotBearer,
    #[error("The access token has expired. Please log in again.")]
    Expired,
    #[error("The access token is invalid.")]
    Invalid,
    /// The account was disabled, removed, or changed (role, password) since the token was issued.
    #[error("The access token is no longer valid. Please log in again.")]
    Revoked,
    #[error("{0}")]
    Forbidden(&'static str),
}

/// An issued token, as the login response carries it.
#[derive(Debug)]
pub struct IssuedToken {
    pub access_token: String,
    pub expires_in_seconds: i64,
}

/// Signing and verification keys, built once per cold start.
pub struct JwtKeys {
    header: Header,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    lifetime_seconds: i64,
}

impl JwtKeys {
    pub fn new(config: &JwtConfig) -> Result<Self, jsonwebtoken::errors::Error> {
        let mut validation = Validation::new(config.algorithm);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iat", "sub"]);
        Ok(Self {
            header: Header::new(config.algorithm),
            encoding: EncodingKey::from_secret(config.secret_bytes())?,
            decoding: DecodingKey::from_secret(config.secret_bytes())?,
            validation,
            lifetime_seconds: config.access_token_expire_minutes * 60,
        })
    }

    /// Issues a token for an account at `now`.
    pub fn issue(&self, user: &User, now: OffsetDateTime) -> anyhow::Result<IssuedToken> {
        let iat = now.unix_timestamp();
        let claims = Claims {
            sub: user.id.to_string(),
            role: user.role,
            iat,
            exp: iat + self.lifetime_seconds,
            token_version: user.token_version,
        };
        let access_token = encode(&self.header, &claims, &self.encoding)?;
        Ok(IssuedToken { access_token, expires_in_seconds: self.lifetime_seconds })
    }

    /// Verifies a token: the configured algorithm only, a valid signature, `exp` in the future.
    pub fn verify(&self, token: &str) -> Result<VerifiedToken, AuthError> {
        use jsonwebtoken::errors::ErrorKind;

        let data =
            decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| {
                match e.kind() {
                    ErrorKind::ExpiredSignature => AuthError::Expired,
                    _ => AuthError::Invalid,
                }
            })?;
        let claims = data.claims;
        let issued_in_future = claims.iat > OffsetDateTime::now_utc().unix_timestamp() + LEEWAY;
        if issued_in_future || !is_canonical_id(&claims.sub) {
            return Err(AuthError::Invalid);
        }
        let id = claims.sub.parse::<UserId>().map_err(|_| AuthError::Invalid)?;
        Ok(VerifiedToken { id, role: claims.role, token_version: claims.token_version })
    }

    /// The request's bearer token, verified: `None` without an `Authorization` header; a header
    /// that is present must hold a valid token.
    pub fn bearer(&self, request: &Request) -> Result<Option<VerifiedToken>, AuthError> {
        let mut values = request.headers().get_all(AUTHORIZATION).iter();
        let Some(value) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(AuthError::Invalid);
        }
        let value = value.to_str().map_err(|_| AuthError::NotBearer)?;
        let (scheme, token) = value.trim().split_once(' ').ok_or(AuthError::NotBearer)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::NotBearer);
        }
        self.verify(token.trim()).map(Some)
    }
}

impl AuthedUser {
    /// Allows the caller when their role is one of `allowed`.
    pub fn require(&self, allowed: &[Role], message: &'static str) -> Result<(), AuthError> {
        if allowed.contains(&self.role) { Ok(()) } else { Err(AuthError::Forbidden(message)) }
    }
}

impl From<AuthError> for crate::error::ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Forbidden(message) => Self::Forbidden(message.to_owned()),
            other => Self::Unauthorized(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::users::UserStatus;
    use jsonwebtoken::Algorithm;

    fn keys_with(secret: &str, algorithm: &str) -> JwtKeys {
        let config = Config::from_lookup(|key| match key {
            "SECRET_KEY" => Some(secret.to_owned()),
            "ALGORITHM" => Some(algorithm.to_owned()),
            _ => None,
        })
        .expect("valid test config");
        JwtKeys::new(&config.jwt).expect("keys")
    }

    fn keys() -> JwtKeys {
        keys_with("test-secret-key-that-is-long-enough-000", "HS256")
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    fn user(id: u64, role: Role) -> User {
        User {
            id: UserId::new(id),
            username: format!("user-{id}"),
            email: format!("user-{id}@example.com"),
            role,
            status: UserStatus::Active,
            password_hash: String::new(),
            created_at: OffsetDateTime::UNIX_EPOCH,
            token_version: 3,
        }
    }

    fn bearer(token: &str) -> Request {
        let mut request = Request::default();
        let value = format!("Bearer {token}").parse().expect("header value");
        request.headers_mut().insert(AUTHORIZATION, value);
        request
    }

    #[test]
    fn an_issued_token_verifies_to_its_user_and_role() {
        let keys = keys();
        let token = keys.issue(&user(42, Role::Doctor), now()).expect("issue");

        let verified = keys.bearer(&bearer(&token.access_token)).expect("valid");

        let expected = VerifiedToken { id: UserId::new(42), role: Role::Doctor, token_version: 3 };
        assert_eq!(verified, Some(expected));
        assert_eq!(token.expires_in_seconds, 30 * 60);
    }

    #[test]
    fn the_token_carries_sub_role_iat_exp_and_version() {
        let keys = keys();
        let issued_at = now();
        let token = keys.issue(&user(7, Role::Patient), issued_at).expect("issue");

        let payload = token.access_token.split('.').nth(1).expect("three parts");
        let json = base64_url_decode(payload);

        assert_eq!(json["sub"], "7");
        assert_eq!(json["role"], "Patient");
        assert_eq!(json["iat"], issued_at.unix_timestamp());
        assert_eq!(json["exp"], issued_at.unix_timestamp() + 1800);
        assert_eq!(json["token_version"], 3);
    }

    #[test]
    fn a_token_without_a_version_is_version_zero() {
        let keys = keys();
        let exp = now().unix_timestamp() + 600;
        let claims = serde_json::json!({"sub": "5", "role": "Admin", "iat": 0, "exp": exp});
        let token = encode(&Header::default(), &claims, &keys.encoding).expect("encode");

        assert_eq!(keys.verify(&token).expect("valid").token_version, 0);
    }

    #[test]
    fn an_expired_token_is_refused_beyond_the_leeway() {
        let keys = keys();
        let long_ago = now() - time::Duration::minutes(31);
        let token = keys.issue(&user(1, Role::Patient), long_ago).expect("issue");

        assert_eq!(keys.verify(&token.access_token), Err(AuthError::Expired));
    }

    #[test]
    fn a_token_signed_with_another_key_is_refused() {
        let forged = keys_with("another-secret-key-that-is-long-enough", "HS256")
            .issue(&user(1, Role::Admin), now())
            .expect("issue");

        assert_eq!(keys().verify(&forged.access_token), Err(AuthError::Invalid));
    }

    #[test]
    fn a_token_with_another_algorithm_is_refused() {
        let secret = "test-secret-key-that-is-long-enough-000";
        let other = keys_with(secret, "HS512").issue(&user(1, Role::Admin), now());

        assert_eq!(keys().verify(&other.expect("issue").access_token), Err(AuthError::Invalid));
        assert_eq!(Header::new(Algorithm::HS512).alg, Algorithm::HS512);
    }

    #[test]
    fn an_unsigned_token_is_refused() {
        let header = base64_url_encode(br#"{"alg":"none","typ":"JWT"}"#);
        let exp = now().unix_timestamp() + 600;
        let claims = format!(r#"{{"sub":"1","role":"Admin","iat":0,"exp":{exp}}}"#);
        let token = format!("{header}.{}.", base64_url_encode(claims.as_bytes()));

        assert_eq!(keys().verify(&token), Err(AuthError::Invalid));
    }

    #[test]
    fn a_token_without_exp_is_refused() {
        let keys = keys();
        let claims = serde_json::json!({"sub": "1", "role": "Admin", "iat": 0});
        let token = encode(&Header::default(), &claims, &keys.encoding).expect("encode");

        assert_eq!(keys.verify(&token), Err(AuthError::Invalid));
    }

    #[test]
    fn odd_subjects_future_iat_and_future_nbf_are_refused() {
        let keys = keys();
        let now = now().unix_timestamp();
        let sign = |claims: &serde_json::Value| {
            encode(&Header::default(), claims, &keys.encoding).expect("encode")
        };
        let exp = now + 600;
        let claims = |sub: &str, iat: i64| {
            let mut claims = serde_json::json!({"sub": sub, "role": "Patient"});
            claims["iat"] = iat.into();
            claims["exp"] = exp.into();
            claims
        };

        assert!(keys.verify(&sign(&claims("42", now))).is_ok());
        for sub in ["+42", "042", "", "4 2"] {
            assert_eq!(keys.verify(&sign(&claims(sub, now))), Err(AuthError::Invalid), "{sub:?}");
        }
        assert_eq!(keys.verify(&sign(&claims("42", now + 3600))), Err(AuthError::Invalid));
        let mut not_yet = claims("42", now);
        not_yet["nbf"] = (now + 3600).into();
        assert_eq!(keys.verify(&sign(&not_yet)), Err(AuthError::Invalid));
    }

    #[test]
    fn two_authorization_headers_are_refused() {
        let keys = keys();
        let token = keys.issue(&user(1, Role::Patient), now()).expect("issue");
        let mut request = bearer(&token.access_token);
        let second = format!("Bearer {}", token.access_token).parse().expect("header");
        request.headers_mut().append(AUTHORIZATION, second);

        assert_eq!(keys.bearer(&request), Err(AuthError::Invalid));
    }

    #[test]
    fn headers_other_than_bearer_are_refused() {
        let keys = keys();
        let mut request = Request::default();
        request.headers_mut().insert(AUTHORIZATION, "Basic dXNlcjpwYXNz".parse().unwrap());

        assert_eq!(keys.bearer(&request), Err(AuthError::NotBearer));
        assert_eq!(keys.bearer(&Request::default()), Ok(None));
    }

    #[test]
    fn a_wrong_role_is_forbidden_not_unauthenticated() {
        let user = AuthedUser { id: UserId::new(1), role: Role::Patient };

        let error = user.require(&[Role::Admin], "Admins only").expect_err("forbidden");

        assert_eq!(crate::error::ApiError::from(error).status(), 403);
    }

    fn base64_url_encode(bytes: &[u8]) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    fn base64_url_decode(text: &str) -> serde_json::Value {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).expect("b64");
        serde_json::from_slice(&bytes).expect("json")
    }
}
