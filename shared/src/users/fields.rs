//! Validated account fields. Raw strings become these at the edge, so the domain never sees an
//! unchecked email, username or password.

use secrecy::SecretString;

use crate::error::FieldError;

const MAX_EMAIL_BYTES: usize = 254;
const MAX_USERNAME_CHARS: usize = 50;
pub const MIN_PASSWORD_CHARS: usize = 8;
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// An email address, trimmed and lower-cased: two spellings of one address are one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let normalised = Self::normalise(raw);
        let valid = normalised.len() <= MAX_EMAIL_BYTES
            && email_address::EmailAddress::is_valid(&normalised)
            && normalised
                .rsplit_once('@')
                .is_some_and(|(_, domain)| domain.contains('.'))
            && !normalised.starts_with('"');
        if !valid {
            return Err(FieldError::new("email", "must be a valid email address"));
        }
        Ok(Self(normalised))
    }

    /// The form used for uniqueness and lookups.
    pub fn normalise(raw: &str) -> String {
        raw.trim().to_lowercase()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A display name, trimmed; unique regardless of case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let trimmed = raw.trim();
        let chars = trimmed.chars().count();
        if chars == 0 {
            return Err(FieldError::new("username", "must not be empty"));
        }
        if chars > MAX_USERNAME_CHARS {
            let message = format!("must be at most {MAX_USERNAME_CHARS} characters");
            return Err(FieldError::new("username", message));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(FieldError::new(
                "username",
                "must not contain control characters",
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form used for uniqueness.
    pub fn unique_key(&self) -> String {
        self.0.to_lowercase()
    }
}

/// A new password that meets the rules. Kept secret: never logged, never echoed.
#[derive(Debug)]
pub struct NewPassword(SecretString);

impl NewPassword {
    pub fn parse(raw: String) -> Result<Self, FieldError> {
        if raw.chars().count() < MIN_PASSWORD_CHARS {
            let message = format!("must be at least {MIN_PASSWORD_CHARS} characters");
            return Err(FieldError::new("password", message));
        }
        if raw.len() > MAX_PASSWORD_BYTES {
            let message = format!("must be at most {MAX_PASSWORD_BYTES} bytes");
            return Err(FieldError::new("password", message));
        }
        Ok(Self(SecretString::from(raw)))
    }

    pub fn into_secret(self) -> SecretString {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        let email = Email::parse("  Alice.Smith@Example.COM ").expect("valid");

        assert_eq!(email.as_str(), "alice.smith@example.com");
    }

    #[test]
    fn malformed_emails_are_refused() {
        for raw in [
            "",
            "alice",
            "alice@",
            "@example.com",
            "a b@example.com",
            "alice@localhost",
        ] {
            assert!(Email::parse(raw).is_err(), "{raw:?} should be refused");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(Email::parse(&long).is_err());
    }

    #[test]
    fn usernames_are_trimmed_bounded_and_unique_without_case() {
        assert_eq!(Username::parse("  Dr Who ").unwrap().as_str(), "Dr Who");
        assert_eq!(Username::parse("Dr Who").unwrap().unique_key(), "dr who");
        assert!(Username::parse("   ").is_err());
        assert!(Username::parse(&"x".repeat(50)).is_ok());
        assert!(Username::parse(&"x".repeat(51)).is_err());
        assert!(Username::parse("tab\there").is_err());
    }

    #[test]
    fn passwords_need_eight_characters_and_at_most_1024_bytes() {
        assert!(NewPassword::parse("1234567".into()).is_err());
        assert!(NewPassword::parse("12345678".into()).is_ok());
        assert!(
            NewPassword::parse("é".repeat(8)).is_ok(),
            "characters, not bytes"
        );
        assert!(NewPassword::parse("x".repeat(1024)).is_ok());
        let error = NewPassword::parse("x".repeat(1025)).unwrap_err();
        assert_eq!(error.field, "password");
    }
}
