//! Password hashes for the config's users: argon2 PHC strings made by
//! `datalog-rrd hash-password`, checked when the config is validated and
//! verified (`Logins`, with throttling) by the web UI and the embedded
//! broker. Apart from them, so that config and web do not import each
//! other.

mod logins;
mod throttle;

pub use logins::{Logins, Verdict};

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

/// Checks that a configured hash is an argon2 PHC string.
pub fn check_hash(phc: &str) -> Result<(), String> {
    let hash = PasswordHash::new(phc).map_err(|e| {
        format!("not a PHC string ({e}); make one with `datalog-rrd hash-password`")
    })?;
    match hash.algorithm.as_str() {
        "argon2id" | "argon2i" | "argon2d" => Ok(()),
        other => Err(format!("{other}: only argon2 hashes are accepted")),
    }
}

/// A new argon2id PHC string for `password`, with a random salt.
pub fn hash_password(password: &str) -> Result<String, String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `password` matches the PHC string `phc` (false for a malformed
/// one).
pub fn verify(phc: &str, password: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_only_its_password() {
        let hash = hash_password("s3cret").unwrap();
        assert!(check_hash(&hash).is_ok());
        assert!(verify(&hash, "s3cret"));
        assert!(!verify(&hash, "S3cret"));
        assert!(!verify("plaintext", "plaintext"));
    }

    #[test]
    fn only_argon2_phc_strings_are_accepted() {
        assert!(check_hash("plaintext").is_err());
        assert!(check_hash("$2b$12$abcdefghijklmnopqrstuv").is_err());
        assert!(check_hash("$pbkdf2-sha256$i=1000$c2FsdA$aGFzaA").is_err());
    }
}
