//! Typed configuration, read once at cold start.
//!
//! Values come from the process environment first, then from a `.env` file, as the predecessor
//! read them. Tests build a [`Config`] from a map through [`Config::from_lookup`], so they never
//! change the process environment.
//!
//! The signing key comes from the first of these that is set:
//! 1. `SECRET_KEY` (environment, then `.env`), in any mode: the predecessor's contract;
//! 2. `SECRET_KEY_ARN`: an AWS Secrets Manager secret whose text is the key, read once by
//!    [`Config::load`] (the deployed functions have only this);
//! 3. with `APP_ENV=local` only, the development key, with a warning.
//!
//! Otherwise the function stops at start.

use std::collections::HashMap;
use std::fmt;

use jsonwebtoken::Algorithm;
use secrecy::{ExposeSecret, SecretString};

use crate::throttle::ThrottleConfig;

/// The key used when `APP_ENV=local` and neither `SECRET_KEY` nor `SECRET_KEY_ARN` is set.
/// Refused in any other mode.
const DEVELOPMENT_SECRET_KEY: &str = "local-development-key-never-use-outside-local-mode";
pub(crate) const MIN_SECRET_KEY_CHARS: usize = 32;
const MAX_TOKEN_MINUTES: i64 = 24 * 60;

/// Where the function runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEnv {
    /// On a developer's machine, against the emulator.
    Local,
    /// Deployed. The default, so that a forgotten setting fails safe.
    Aws,
}

#[derive(Clone)]
pub struct Config {
    pub app_env: AppEnv,
    pub table_name: String,
    pub event_bus_name: String,
    pub jwt: JwtConfig,
    /// Length of an appointment; appointments start on this grid from midnight UTC.
    pub appointment_minutes: u32,
    /// Limits of failed sign-in attempts.
    pub login_throttle: ThrottleConfig,
}

#[derive(Clone)]
pub struct JwtConfig {
    pub secret_key: SecretString,
    pub algorithm: Algorithm,
    pub access_token_expire_minutes: i64,
}

impl fmt::Debug for JwtConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtConfig")
            .field("secret_key", &"[redacted]")
            .field("algorithm", &self.algorithm)
            .field("access_token_expire_minutes", &self.access_token_expire_minutes)
            .finish()
    }
}

/// A setting that stops the function at start.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("SECRET_KEY must be at least {MIN_SECRET_KEY_CHARS} characters long (it has {0})")]
    SecretKeyTooShort(usize),
    #[error("neither SECRET_KEY nor SECRET_KEY_ARN is set; one is required unless APP_ENV=local")]
    SecretKeyMissing,
    #[error("SECRET_KEY_ARN is set but its secret was not read (Config::load reads it)")]
    SecretNotRead,
    #[error("the secret named by SECRET_KEY_ARN ({arn}) could not be read: {reason}")]
    SecretUnreadable { arn: String, reason: String },
    #[error("the secret named by SECRET_KEY_ARN ({arn}) holds no text; store the key as a string")]
    SecretNotText { arn: String },
    #[error(
        "the secret named by SECRET_KEY_ARN ({arn}) must be at least {MIN_SECRET_KEY_CHARS} \
         characters long (it has {chars})"
    )]
    SecretTooShort { arn: String, chars: usize },
    #[error("SECRET_KEY is the local development key, which is refused unless APP_ENV=local")]
    DevelopmentKeyOutsideLocal,
    #[error("ALGORITHM `{0}` is not supported; use HS256, HS384 or HS512")]
    UnsupportedAlgorithm(String),
    #[error("ACCESS_TOKEN_EXPIRE_MINUTES must be 1 to {MAX_TOKEN_MINUTES} (got `{0}`)")]
    BadTokenLifetime(String),
    #[error("APPOINTMENT_MINUTES must be 5, 10, 15, 20, 30, 45, 60, 90 or 120 (got `{0}`)")]
    BadAppointmentMinutes(String),
    #[error("APP_ENV must be `local` or `aws` (got `{0}`)")]
    BadAppEnv(String),
    #[error("{name} must be a whole number from 1 to {max} (got `{value}`)")]
    BadLimit { name: &'static str, max: u32, value: String },
}

impl Config {
    /// What a function reads at cold start: the process environment and `.env`, and, when only
    /// `SECRET_KEY_ARN` names the signing key, that secret from Secrets Manager (one call).
    pub async fn load(secrets: &aws_sdk_secretsmanager::Client) -> Result<Self, ConfigError> {
        Self::load_with(env_lookup(), secrets).await
    }

    /// [`Config::load`] with the values from `lookup` instead of the process environment.
    pub async fn load_with(
        lookup: impl Fn(&str) -> Option<String>,
        secrets: &aws_sdk_secretsmanager::Client,
    ) -> Result<Self, ConfigError> {
        let fetched = match (lookup("SECRET_KEY"), secret_key_arn(&lookup)) {
            (None, Some(arn)) => Some(crate::secret::read_signing_key(secrets, &arn).await?),
            _ => None,
        };
        Self::build(&lookup, fetched)
    }

    /// Reads the process environment, falling back to a `.env` file in the working directory or
    /// one of its parents. Reads no secret: with only `SECRET_KEY_ARN` set it fails; functions
    /// use [`Config::load`].
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(env_lookup())
    }

    /// [`Config::from_env`] with the values from `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::build(&lookup, None)
    }

    fn build(
        lookup: &impl Fn(&str) -> Option<String>,
        fetched_key: Option<SecretString>,
    ) -> Result<Self, ConfigError> {
        let app_env = match lookup("APP_ENV").as_deref().map(str::trim) {
            None | Some("") | Some("aws") => AppEnv::Aws,
            Some("local") => AppEnv::Local,
            Some(other) => return Err(ConfigError::BadAppEnv(other.to_owned())),
        };
        let secret_key = match (lookup("SECRET_KEY"), fetched_key) {
            (Some(key), _) => {
                if secret_key_arn(lookup).is_some() {
                    tracing::warn!("SECRET_KEY is set, so SECRET_KEY_ARN is ignored");
                }
                secret_key(app_env, Some(key))?
            }
            (None, Some(key)) => {
                refuse_development_key(app_env, key.expose_secret())?;
                key
            }
            (None, None) if secret_key_arn(lookup).is_some() => {
                return Err(ConfigError::SecretNotRead);
            }
            (None, None) => secret_key(app_env, None)?,
        };
        let jwt = JwtConfig {
            secret_key,
            algorithm: algorithm(lookup("ALGORITHM"))?,
            access_token_expire_minutes: token_minutes(lookup("ACCESS_TOKEN_EXPIRE_MINUTES"))?,
        };
        Ok(Self {
            app_env,
            table_name: lookup("TABLE_NAME").unwrap_or_else(|| "clinic".to_owned()),
            event_bus_name: lookup("EVENT_BUS_NAME").unwrap_or_else(|| "clinic".to_owned()),
            jwt,
            appointment_minutes: appointment_minutes(lookup("APPOINTMENT_MINUTES"))?,
            login_throttle: login_throttle(lookup)?,
        })
    }
}

/// The process environment, then a `.env` file in the working directory or one of its parents.
fn env_lookup() -> impl Fn(&str) -> Option<String> {
    let dotenv: HashMap<String, String> = dotenvy::dotenv_iter()
        .map(|entries| entries.filter_map(Result::ok).collect())
        .unwrap_or_default();
    move |key| std::env::var(key).ok().or_else(|| dotenv.get(key).cloned())
}

/// `SECRET_KEY_ARN`, unless unset or blank.
fn secret_key_arn(lookup: &impl Fn(&str) -> Option<String>) -> Option<String> {
    lookup("SECRET_KEY_ARN").map(|arn| arn.trim().to_owned()).filter(|arn| !arn.is_empty())
}

fn login_throttle(lookup: impl Fn(&str) -> Option<String>) -> Result<ThrottleConfig, ConfigError> {
    let defaults = ThrottleConfig::default();
    let limit = |name: &'static str, default: u32, max: u32| {
        let Some(value) = lookup(name) else { return Ok(default) };
        match value.trim().parse::<u32>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(ConfigError::BadLimit { name, max, value }),
        }
    };
    Ok(ThrottleConfig {
        max_failures_per_account: limit(
            "LOGIN_MAX_FAILURES",
            defaults.max_failures_per_account,
            1000,
        )?,
        max_failures_per_address: limit(
            "LOGIN_MAX_FAILURES_PER_ADDRESS",
            defaults.max_failures_per_address,
            1_000_000,
        )?,
        window_seconds: limit("LOGIN_WINDOW_SECONDS", defaults.window_seconds, 86_400)?,
    })
}

fn secret_key(app_env: AppEnv, value: Option<String>) -> Result<SecretString, ConfigError> {
    match (value, app_env) {
        (None, AppEnv::Local) => {
            tracing::warn!("SECRET_KEY is not set: using the local development key");
            Ok(SecretString::from(DEVELOPMENT_SECRET_KEY))
        }
        (None, AppEnv::Aws) => Err(ConfigError::SecretKeyMissing),
        (Some(key), _) => {
            refuse_development_key(app_env, &key)?;
            let chars = key.chars().count();
            if chars < MIN_SECRET_KEY_CHARS {
                return Err(ConfigError::SecretKeyTooShort(chars));
            }
            Ok(SecretString::from(key))
        }
    }
}

fn refuse_development_key(app_env: AppEnv, key: &str) -> Result<(), ConfigError> {
    if app_env == AppEnv::Aws && key == DEVELOPMENT_SECRET_KEY {
        return Err(ConfigError::DevelopmentKeyOutsideLocal);
    }
    Ok(())
}

fn algorithm(value: Option<String>) -> Result<Algorithm, ConfigError> {
    match value.as_deref().map(str::trim) {
        None | Some("") | Some("HS256") => Ok(Algorithm::HS256),
        Some("HS384") => Ok(Algorithm::HS384),
        Some("HS512") => Ok(Algorithm::HS512),
        Some(other) => Err(ConfigError::UnsupportedAlgorithm(other.to_owned())),
    }
}

fn token_minutes(value: Option<String>) -> Result<i64, ConfigError> {
    let Some(raw) = value else { return Ok(30) };
    match raw.trim().parse::<i64>() {
        Ok(minutes) if (1..=MAX_TOKEN_MINUTES).contains(&minutes) => Ok(minutes),
        _ => Err(ConfigError::BadTokenLifetime(raw)),
    }
}

fn appointment_minutes(value: Option<String>) -> Result<u32, ConfigError> {
    const ALLOWED: [u32; 9] = [5, 10, 15, 20, 30, 45, 60, 90, 120];
    let Some(raw) = value else { return Ok(30) };
    match raw.trim().parse::<u32>() {
        Ok(minutes) if ALLOWED.contains(&minutes) => Ok(minutes),
        _ => Err(ConfigError::BadAppointmentMinutes(raw)),
    }
}

impl JwtConfig {
    pub fn secret_bytes(&self) -> &[u8] {
        self.secret_key.expose_secret().as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|key| map.get(key).cloned())
    }

    const GOOD_KEY: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn defaults_match_the_predecessor() {
        let config = config(&[("SECRET_KEY", GOOD_KEY)]).expect("valid");

        assert_eq!(config.jwt.algorithm, Algorithm::HS256);
        assert_eq!(config.jwt.access_token_expire_minutes, 30);
        assert_eq!(config.app_env, AppEnv::Aws);
    }

    #[test]
    fn a_short_secret_key_is_refused_with_its_length() {
        let error = config(&[("SECRET_KEY", "short")]).err();

        assert_eq!(error, Some(ConfigError::SecretKeyTooShort(5)));
        assert!(ConfigError::SecretKeyTooShort(5).to_string().contains("at least 32"));
    }

    #[test]
    fn an_unsupported_algorithm_is_refused() {
        let error = config(&[("SECRET_KEY", GOOD_KEY), ("ALGORITHM", "RS256")]).err();

        assert_eq!(error, Some(ConfigError::UnsupportedAlgorithm("RS256".into())));
    }

    #[test]
    fn the_development_key_is_used_only_in_local_mode() {
        let local = config(&[("APP_ENV", "local")]).expect("local mode has a development key");
        assert_eq!(local.jwt.secret_bytes(), DEVELOPMENT_SECRET_KEY.as_bytes());

        assert_eq!(config(&[]).err(), Some(ConfigError::SecretKeyMissing));
        assert_eq!(
            config(&[("SECRET_KEY", DEVELOPMENT_SECRET_KEY)]).err(),
            Some(ConfigError::DevelopmentKeyOutsideLocal)
        );
    }

    #[test]
    fn token_lifetime_must_be_a_sensible_number_of_minutes() {
        for bad in ["0", "-5", "abc", "100000"] {
            let result = config(&[("SECRET_KEY", GOOD_KEY), ("ACCESS_TOKEN_EXPIRE_MINUTES", bad)]);
            assert_eq!(result.err(), Some(ConfigError::BadTokenLifetime(bad.into())), "{bad}");
        }
    }

    #[test]
    fn appointments_last_30_minutes_unless_configured_to_a_divisor_of_a_day() {
        let config = config(&[("SECRET_KEY", GOOD_KEY)]).expect("valid");
        assert_eq!(config.appointment_minutes, 30);

        let ok = config_with_minutes("15").expect("valid");
        assert_eq!(ok.appointment_minutes, 15);
        for bad in ["0", "7", "1441", "x"] {
            let error = config_with_minutes(bad).err();
            assert_eq!(error, Some(ConfigError::BadAppointmentMinutes(bad.into())), "{bad}");
        }
    }

    fn config_with_minutes(minutes: &str) -> Result<Config, ConfigError> {
        config(&[("SECRET_KEY", GOOD_KEY), ("APPOINTMENT_MINUTES", minutes)])
    }

    #[test]
    fn sign_in_limits_default_to_5_per_account_50_per_address_in_15_minutes() {
        let defaults = config(&[("SECRET_KEY", GOOD_KEY)]).expect("valid").login_throttle;
        assert_eq!(defaults, ThrottleConfig::default());
        let numbers = (defaults.max_failures_per_account, defaults.max_failures_per_address);
        assert_eq!((numbers, defaults.window_seconds), ((5, 50), 900));

        let short = config(&[("SECRET_KEY", GOOD_KEY), ("LOGIN_WINDOW_SECONDS", "3")]);
        assert_eq!(short.expect("valid").login_throttle.window_seconds, 3);
        for (name, bad) in [("LOGIN_MAX_FAILURES", "0"), ("LOGIN_WINDOW_SECONDS", "a day")] {
            let error = config(&[("SECRET_KEY", GOOD_KEY), (name, bad)]).err().expect("refused");
            assert!(error.to_string().starts_with(name), "{error}");
        }
    }

    #[test]
    fn the_secret_never_appears_in_debug_output() {
        let config = config(&[("SECRET_KEY", GOOD_KEY)]).expect("valid");

        assert!(!format!("{:?}", config.jwt).contains(GOOD_KEY));
    }
}
