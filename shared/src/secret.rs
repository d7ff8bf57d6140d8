//! The signing key in AWS Secrets Manager. A deployed function's environment names the secret
//! (`SECRET_KEY_ARN`), never its value; the functions that sign or verify tokens read it once, at
//! cold start, through [`crate::Config::load`]. Event consumers and the redrive never read it.

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::DisplayErrorContext;
use secrecy::SecretString;

use crate::config::{ConfigError, MIN_SECRET_KEY_CHARS};

/// The key stored as the text of the secret `arn` (its current version), at least
/// [`MIN_SECRET_KEY_CHARS`] characters long.
pub async fn read_signing_key(client: &Client, arn: &str) -> Result<SecretString, ConfigError> {
    let output = client.get_secret_value().secret_id(arn).send().await.map_err(|error| {
        let reason = match error.as_service_error() {
            Some(e) if e.is_resource_not_found_exception() => {
                "it does not exist, or has no current value".to_owned()
            }
            _ => DisplayErrorContext(&error).to_string(),
        };
        ConfigError::SecretUnreadable { arn: arn.to_owned(), reason }
    })?;
    let Some(key) = output.secret_string else {
        return Err(ConfigError::SecretNotText { arn: arn.to_owned() });
    };
    let chars = key.chars().count();
    if chars < MIN_SECRET_KEY_CHARS {
        return Err(ConfigError::SecretTooShort { arn: arn.to_owned(), chars });
    }
    Ok(SecretString::from(key))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use aws_sdk_secretsmanager::operation::get_secret_value::{
        GetSecretValueError, GetSecretValueOutput,
    };
    use aws_sdk_secretsmanager::types::error::ResourceNotFoundException;
    use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
    use secrecy::ExposeSecret;

    use super::*;
    use crate::Config;

    const ARN: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:clinic/signing-key-Ab1";
    const KEY: &str = "a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1";

    /// A client whose every GetSecretValue of [`ARN`] answers `text`.
    fn holding(text: &'static str) -> Rule {
        mock!(Client::get_secret_value)
            .match_requests(|request| request.secret_id() == Some(ARN))
            .then_output(move || GetSecretValueOutput::builder().secret_string(text).build())
    }

    fn client(rule: &Rule) -> Client {
        mock_client!(aws_sdk_secretsmanager, RuleMode::MatchAny, [rule])
    }

    /// What a deployed function has: the secret's ARN and nothing else about the key.
    fn deployed(extra: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let mut map: HashMap<String, String> =
            HashMap::from([("SECRET_KEY_ARN".into(), ARN.into())]);
        map.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        move |key| map.get(key).cloned()
    }

    #[tokio::test]
    async fn the_key_is_the_secret_text() {
        let rule = holding(KEY);

        let config = Config::load_with(deployed(&[]), &client(&rule)).await.expect("loaded");

        assert_eq!(config.jwt.secret_bytes(), KEY.as_bytes());
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_missing_secret_stops_the_function_naming_the_arn() {
        let rule = mock!(Client::get_secret_value).then_error(|| {
            GetSecretValueError::ResourceNotFoundException(
                ResourceNotFoundException::builder()
                    .message("Secrets Manager can't find the specified secret.")
                    .build(),
            )
        });

        let error = Config::load_with(deployed(&[]), &client(&rule)).await.err();

        let reason = "it does not exist, or has no current value".to_owned();
        assert_eq!(error, Some(ConfigError::SecretUnreadable { arn: ARN.into(), reason }));
        assert!(error.unwrap().to_string().contains(ARN));
    }

    #[tokio::test]
    async fn a_short_secret_is_refused_with_its_length_and_never_shown() {
        let rule = holding("too-short-a-key");

        let error = Config::load_with(deployed(&[]), &client(&rule)).await.err();

        assert_eq!(error, Some(ConfigError::SecretTooShort { arn: ARN.into(), chars: 15 }));
        let message = error.unwrap().to_string();
        assert!(message.contains("at least 32") && !message.contains("too-short-a-key"));
    }

    #[tokio::test]
    async fn a_binary_secret_is_refused() {
        let rule =
            mock!(Client::get_secret_value).then_output(|| GetSecretValueOutput::builder().build());

        let error = Config::load_with(deployed(&[]), &client(&rule)).await.err();

        assert_eq!(error, Some(ConfigError::SecretNotText { arn: ARN.into() }));
    }

    #[tokio::test]
    async fn secret_key_wins_over_the_arn_and_nothing_is_fetched() {
        let rule = holding(KEY);
        let own = "my-own-key-from-the-environment-0123456789";

        let config =
            Config::load_with(deployed(&[("SECRET_KEY", own)]), &client(&rule)).await.expect("ok");

        assert_eq!(config.jwt.secret_key.expose_secret(), own);
        assert_eq!(rule.num_calls(), 0);
    }

    #[tokio::test]
    async fn local_mode_without_either_uses_the_development_key_without_fetching() {
        let rule = holding(KEY);
        let lookup = |key: &str| (key == "APP_ENV").then(|| "local".to_owned());

        let config = Config::load_with(lookup, &client(&rule)).await.expect("local");

        assert_ne!(config.jwt.secret_bytes(), KEY.as_bytes());
        assert_eq!(rule.num_calls(), 0);
    }

    #[test]
    fn the_synchronous_reader_refuses_an_arn_it_cannot_read() {
        assert_eq!(Config::from_lookup(deployed(&[])).err(), Some(ConfigError::SecretNotRead));
    }
}
