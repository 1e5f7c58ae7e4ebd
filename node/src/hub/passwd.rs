//! The admin console's password: an argon2id hash in the hub database
//! (`hub admin passwd`), or, for a hub started without one, a generated
//! password written once to a 0600 file in the hub folder.

use std::io::Write;
use std::path::PathBuf;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use super::admin::AdminError;
use crate::db::Db;
use crate::paths::HubPaths;
use crate::util::random_hex;

/// Setting key: the admin password's argon2id hash (PHC string).
pub const SETTING_ADMIN_PASSWORD: &str = "admin_password";
/// Shortest admin password accepted.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Where a hub started without a password writes the one it generated.
pub const GENERATED_FILE: &str = "admin-password.txt";

/// The argon2id hash of `password` with a fresh random salt.
fn hash(password: &str) -> Result<String, AdminError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| AdminError::Io(format!("no OS randomness: {e}")))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| AdminError::Io(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AdminError::Io(format!("hashing the admin password: {e}")))
}

/// `hub admin passwd`: store `password` (at least [`MIN_PASSWORD_CHARS`]).
pub fn set_password(db: &Db, password: &str) -> Result<(), AdminError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AdminError::Io(format!(
            "the admin password must have at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    db.set_setting(SETTING_ADMIN_PASSWORD, &hash(password)?)?;
    Ok(())
}

/// Whether `password` matches the stored hash (false when none is stored).
pub fn verify(db: &Db, password: &str) -> Result<bool, AdminError> {
    Ok(verify_hash(stored_hash(db)?.as_deref(), password))
}

/// The stored hash, if a password is set (read it under the database lock,
/// then verify without holding it: argon2 takes tens of milliseconds).
pub fn stored_hash(db: &Db) -> Result<Option<String>, AdminError> {
    Ok(db.setting(SETTING_ADMIN_PASSWORD)?)
}

/// Whether `password` matches `stored` (an argon2 PHC string).
pub fn verify_hash(stored: Option<&str>, password: &str) -> bool {
    let Some(stored) = stored else {
        return false;
    };
    let Ok(parsed) = PasswordHash::new(stored) else {
        tracing::error!(
            "the stored admin password hash is corrupt; set one with `swarmhub hub admin passwd`"
        );
        return false;
    };
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// At `hub serve` start: with no admin password set, generate one, store its
/// hash and write it to `DIR/admin-password.txt` (mode 0600); returns that
/// file. Never prompts (the hub runs under systemd).
pub fn ensure_password(paths: &HubPaths, db: &Db) -> Result<Option<PathBuf>, AdminError> {
    if db.setting(SETTING_ADMIN_PASSWORD)?.is_some() {
        return Ok(None);
    }
    let password = random_hex(12).map_err(|e| AdminError::Io(e.to_string()))?;
    let file = paths.root.join(GENERATED_FILE);
    let io = |e: std::io::Error| AdminError::Io(format!("{}: {e}", file.display()));
    let _ = std::fs::remove_file(&file);
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&file)
            .map_err(io)?;
        writeln!(f, "{password}").map_err(io)?;
    }
    db.set_setting(SETTING_ADMIN_PASSWORD, &hash(&password)?)?;
    Ok(Some(file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_is_hashed_checked_and_generated_once() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().expect("tempdir");
        let paths = HubPaths::new(tmp.path().join("hub"));
        let db = super::super::admin::open_db(&paths).expect("db");
        assert!(!verify(&db, "anything at all").expect("verify"));
        let file = ensure_password(&paths, &db)
            .expect("ensure")
            .expect("generated");
        let mode = std::fs::metadata(&file).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let generated = std::fs::read_to_string(&file).expect("read");
        assert!(verify(&db, generated.trim()).expect("verify"));
        assert_eq!(ensure_password(&paths, &db).expect("again"), None);
        assert!(set_password(&db, "short").is_err());
        set_password(&db, "correct horse battery").expect("set");
        assert!(verify(&db, "correct horse battery").expect("verify"));
        assert!(!verify(&db, generated.trim()).expect("verify"));
        let stored = db
            .setting(SETTING_ADMIN_PASSWORD)
            .expect("get")
            .expect("set");
        assert!(stored.starts_with("$argon2id$"), "{stored}");
    }
}
