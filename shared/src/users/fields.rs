//! Validated account fields. Raw strings become these at the edge, so the domain never sees an
//! unchecked email, username or password.

use secrecy::SecretString;
use unicode_normalization::UnicodeNormalization;

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
                .is_some_and(|(_, domain)| domain.contains('.') && !domain.starts_with('['))
            && !normalised.starts_with('"')
            && !normalised.chars().any(|c| is_invisible(c) || c.is_whitespace());
        if !valid {
            return Err(FieldError::new("email", "must be a valid email address"));
        }
        Ok(Self(normalised))
    }

    /// The form used for uniqueness and lookups: compatibility-normalised (NFKC, so that
    /// full-width letters and composed or decomposed accents are one spelling), trimmed,
    /// lower-cased.
    pub fn normalise(raw: &str) -> String {
        raw.nfkc().collect::<String>().trim().to_lowercase()
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
        let normalised: String = raw.nfkc().collect();
        let trimmed = normalised.trim();
        let chars = trimmed.chars().count();
        if chars == 0 {
            return Err(FieldError::new("username", "must not be empty"));
        }
        if chars > MAX_USERNAME_CHARS {
            let message = format!("must be at most {MAX_USERNAME_CHARS} characters");
            return Err(FieldError::new("username", message));
        }
        let hidden = |c: char| c.is_control() || is_invisible(c) || (c.is_whitespace() && c != ' ');
        if trimmed.chars().any(hidden) {
            let message = "must not contain control, invisible or special space characters";
            return Err(FieldError::new("username", message));
        }
        if !trimmed.chars().any(char::is_alphanumeric) {
            return Err(FieldError::new("username", "must contain a letter or a digit"));
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
        let raw = normalise_password(&raw);
        if raw.chars().count() < MIN_PASSWORD_CHARS {
            let message = format!("must be at least {MIN_PASSWORD_CHARS} characters");
            return Err(FieldError::new("password", message));
        }
        if raw.len() > MAX_PASSWORD_BYTES {
            let message = format!("must be at most {MAX_PASSWORD_BYTES} bytes");
            return Err(FieldError::new("password", message));
        }
        if raw.trim().is_empty() {
            return Err(FieldError::new("password", "must not be only spaces"));
        }
        if super::common_passwords::is_common(&raw) {
            let message = "is one of the most commonly used passwords, which are tried first when \
                accounts are attacked; choose a less predictable one";
            return Err(FieldError::new("password", message));
        }
        Ok(Self(SecretString::from(raw)))
    }

    /// [`NewPassword::parse`] for a field with another name (`new_password`).
    pub fn parse_field(raw: String, field: &str) -> Result<Self, FieldError> {
        Self::parse(raw).map_err(|error| FieldError::new(field, error.message))
    }

    pub fn into_secret(self) -> SecretString {
        self.0
    }
}

/// The form a password is hashed and checked in: NFKC, so that the same characters typed on
/// different keyboards (composed or decomposed accents) are the same password.
pub fn normalise_password(raw: &str) -> String {
    raw.nfkc().collect()
}

/// Characters that display as nothing (Unicode's default-ignorable code points): two names that
/// differ only by them would look the same.
fn is_invisible(c: char) -> bool {
    matches!(
        u32::from(c),
        0x00AD | 0x034F | 0x061C | 0x115F | 0x1160 | 0x17B4 | 0x17B5 | 0x180B..=0x180F
            | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F | 0x3164 | 0xFE00..=0xFE0F
            | 0xFEFF | 0xFFA0 | 0xFFF0..=0xFFF8 | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A
            | 0xE0000..=0xE0FFF
    )
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
        for raw in ["", "alice", "alice@", "@example.com", "a b@example.com", "alice@localhost"] {
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
    fn lookalike_spellings_of_one_email_are_one_address() {
        let plain = Email::parse("cafe.kate@example.com").unwrap();
        let composed = Email::parse("caf\u{e9}@example.com").unwrap();
        let decomposed = Email::parse("cafe\u{301}@example.com").unwrap();
        let full_width = Email::parse("\u{ff43}afe.kate@example.com").unwrap();

        assert_eq!(composed, decomposed);
        assert_eq!(full_width, plain);
    }

    #[test]
    fn invisible_characters_and_ip_literals_are_refused_in_emails() {
        for raw in ["ka\u{200b}te@example.com", "kate@exa\u{ad}mple.com", "kate@[127.0.0.1]"] {
            assert!(Email::parse(raw).is_err(), "{raw:?}");
        }
    }

    #[test]
    fn lookalike_usernames_share_one_unique_key_or_are_refused() {
        let key = |raw: &str| Username::parse(raw).map(|u| u.unique_key());

        assert_eq!(key("\u{ff4b}ate").unwrap(), key("kate").unwrap());
        assert_eq!(key("\u{212a}ate").unwrap(), key("kate").unwrap());
        for raw in ["kate\u{200b}", "ka\u{202e}te", "ka\u{2028}te", "\u{301}\u{301}\u{301}"] {
            assert!(Username::parse(raw).is_err(), "{raw:?}");
        }
    }

    #[test]
    fn passwords_are_normalised_and_not_only_spaces() {
        assert!(NewPassword::parse(" ".repeat(8)).is_err());
        assert_eq!(normalise_password("cafe\u{301}-latte"), normalise_password("caf\u{e9}-latte"));
    }

    #[test]
    fn common_passwords_are_refused_saying_why() {
        let error = NewPassword::parse("Password123".into()).unwrap_err();

        assert_eq!(error.field, "password");
        assert!(error.message.contains("commonly used"), "{}", error.message);
        let renamed = NewPassword::parse_field("qwertyuiop".into(), "new_password").unwrap_err();
        assert_eq!(renamed.field, "new_password");
    }

    #[test]
    fn passwords_need_eight_characters_and_at_most_1024_bytes() {
        assert!(NewPassword::parse("1234567".into()).is_err());
        assert!(NewPassword::parse("1234567".into()).unwrap_err().message.contains("at least 8"));
        assert!(NewPassword::parse("8 chars!".into()).is_ok());
        assert!(NewPassword::parse("é".repeat(8)).is_ok(), "characters, not bytes");
        assert!(NewPassword::parse("x".repeat(1024)).is_ok());
        let error = NewPassword::parse("x".repeat(1025)).unwrap_err();
        assert_eq!(error.field, "password");
    }
}
