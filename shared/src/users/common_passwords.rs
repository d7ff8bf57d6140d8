//! Passwords too common to accept: the first guesses of anyone trying accounts one after another.
//! The list (`common-passwords.txt`, a few hundred entries, each at least as long as the length
//! rule asks) is compiled in; a password is compared with it after normalisation (NFKC, trimmed,
//! lower-cased), so `Password1` and ` PASSWORD1 ` are refused like `password1`.

use super::fields::normalise_password;

const LIST: &str = include_str!("common-passwords.txt");

/// The entries of the list, without its comments.
fn entries() -> impl Iterator<Item = &'static str> {
    LIST.lines().map(str::trim).filter(|line| !line.is_empty() && !line.starts_with('#'))
}

/// The form a password is compared in.
fn comparable(password: &str) -> String {
    normalise_password(password).trim().to_lowercase()
}

/// Whether a password is one of the listed common ones.
pub fn is_common(password: &str) -> bool {
    let candidate = comparable(password);
    entries().any(|entry| entry == candidate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::MIN_PASSWORD_CHARS;

    #[test]
    fn listed_passwords_are_refused_whatever_their_case_and_surrounding_spaces() {
        for password in ["password1", "Password1", " PASSWORD1 ", "qwertyuiop", "iloveyou"] {
            assert!(is_common(password), "{password:?}");
        }
    }

    #[test]
    fn a_passphrase_is_not_common() {
        for password in ["correct horse battery", "a long admin passphrase", "password1x"] {
            assert!(!is_common(password), "{password:?}");
        }
    }

    #[test]
    fn full_width_spellings_are_the_same_password() {
        assert!(is_common("\u{ff50}assword1"));
    }

    #[test]
    fn the_list_holds_a_few_hundred_distinct_entries_in_comparable_form() {
        let all: Vec<&str> = entries().collect();
        let distinct: std::collections::HashSet<&&str> = all.iter().collect();

        assert!(all.len() >= 300, "only {} entries", all.len());
        assert_eq!(distinct.len(), all.len(), "duplicates in the list");
        for entry in all {
            assert_eq!(comparable(entry), entry, "{entry:?} is not in comparable form");
            assert!(
                entry.chars().count() >= MIN_PASSWORD_CHARS,
                "{entry:?} is too short to matter"
            );
        }
    }
}
