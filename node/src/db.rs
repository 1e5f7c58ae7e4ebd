//! The embedded database (SQLite, bundled) of the hub and of the client.
//!
//! One schema serves both: `settings` (key/value), `users` (hub only), `images`
//! (the hub's catalog, or the client's local store). SQLite rather than a
//! single-process store so `swarmhub hub user rm` works while `hub serve` runs:
//! the server notices changes through `PRAGMA data_version`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};

use crate::store::FileStamp;

/// A database failure, naming the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// SQLite refused an operation.
    #[error("database {path}: {error}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        error: rusqlite::Error,
    },
    /// A stored value did not parse.
    #[error("database {path}: corrupt {what}: {detail}")]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// Which value.
        what: String,
        /// The parse error.
        detail: String,
    },
    /// The user exists already.
    #[error("user {0:?} already exists; remove it first with `swarmhub hub user rm {0}`")]
    UserExists(String),
    /// No such user.
    #[error("no user named {0:?}")]
    NoSuchUser(String),
}

/// One image row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRow {
    /// `NAME:TAG`.
    pub name: String,
    /// Info hash, hex.
    pub info_hash: String,
    /// The bencoded metainfo.
    pub metainfo: Vec<u8>,
    /// Size and modification time of every file when it was hashed.
    pub stamps: Vec<FileStamp>,
}

/// One user as authentication sees it ([`Db::auth_rows`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthRow {
    /// User (certificate identity).
    pub name: String,
    /// Revoked.
    pub revoked: bool,
    /// Key its certificates must carry, once enrolled.
    pub cert_key: Option<String>,
    /// SHA-256 of its client secret, once enrolled.
    pub secret_hash: Option<String>,
}

/// One user row (hub).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRow {
    /// User (identity) name.
    pub name: String,
    /// Enrolled: a client secret was issued.
    pub enrolled: bool,
    /// Revoked by `hub user rm`.
    pub revoked: bool,
}

/// An open database.
pub struct Db {
    conn: Connection,
    path: PathBuf,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    key_hash TEXT,
    secret_hash TEXT UNIQUE,
    revoked INTEGER NOT NULL DEFAULT 0,
    cert_key TEXT
);
CREATE TABLE IF NOT EXISTS images (
    name TEXT PRIMARY KEY,
    info_hash TEXT NOT NULL,
    metainfo BLOB NOT NULL,
    stamps TEXT NOT NULL
);
";

impl Db {
    /// Open (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Db, DbError> {
        let err = |error| DbError::Sqlite {
            path: path.to_owned(),
            error,
        };
        if let Some(parent) = path.parent() {
            // A missing folder shows up as SQLite's "unable to open" just below.
            let _ = std::fs::create_dir_all(parent);
        }
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        // Databases made before certificates: add the column (once).
        let has_cert_key = conn.prepare("SELECT cert_key FROM users LIMIT 0").is_ok();
        if !has_cert_key {
            conn.execute_batch("ALTER TABLE users ADD COLUMN cert_key TEXT")
                .map_err(err)?;
        }
        Ok(Db {
            conn,
            path: path.to_owned(),
        })
    }

    fn err(&self, error: rusqlite::Error) -> DbError {
        DbError::Sqlite {
            path: self.path.clone(),
            error,
        }
    }

    /// Changes when another connection commits (SQLite `data_version`).
    pub fn data_version(&self) -> Result<i64, DbError> {
        self.conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    // ---- settings ----

    /// A setting, if set.
    pub fn setting(&self, key: &str) -> Result<Option<String>, DbError> {
        self.conn
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.err(e))
    }

    /// A boolean setting (`1`/`0`), `default` when unset.
    pub fn flag(&self, key: &str, default: bool) -> Result<bool, DbError> {
        Ok(self.setting(key)?.map_or(default, |v| v == "1"))
    }

    /// Set a setting.
    pub fn set_setting(&self, key: &str, value: &str) -> Result<(), DbError> {
        self.conn
            .execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Remove a setting (back to its default).
    pub fn remove_setting(&self, key: &str) -> Result<(), DbError> {
        self.conn
            .execute("DELETE FROM settings WHERE key = ?1", [key])
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    // ---- users (hub) ----

    /// Add a user with a one-time enrollment key (stored hashed). A revoked name
    /// is enrolled again: it gets a fresh key, its old secret stays dead, and
    /// the hub lifts the tracker's revocation when it picks the change up.
    pub fn add_user(&self, name: &str, key_hash: &str) -> Result<(), DbError> {
        let revoked: Option<bool> = self
            .conn
            .query_row("SELECT revoked FROM users WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.err(e))?;
        match revoked {
            Some(false) => Err(DbError::UserExists(name.to_owned())),
            Some(true) => self
                .conn
                .execute(
                    "UPDATE users SET revoked = 0, key_hash = ?2, secret_hash = NULL,
                     cert_key = NULL WHERE name = ?1",
                    params![name, key_hash],
                )
                .map(|_| ())
                .map_err(|e| self.err(e)),
            None => self
                .conn
                .execute(
                    "INSERT INTO users (name, key_hash) VALUES (?1, ?2)",
                    params![name, key_hash],
                )
                .map(|_| ())
                .map_err(|e| self.err(e)),
        }
    }

    /// Revoke a user: its secret stops working at once.
    pub fn revoke_user(&self, name: &str) -> Result<(), DbError> {
        let n = self
            .conn
            .execute(
                "UPDATE users SET revoked = 1, key_hash = NULL WHERE name = ?1",
                [name],
            )
            .map_err(|e| self.err(e))?;
        if n == 0 {
            return Err(DbError::NoSuchUser(name.to_owned()));
        }
        Ok(())
    }

    /// Trade a one-time enrollment key for a client secret: returns the user name,
    /// or `None` if no active user holds that key.
    pub fn enroll(&self, key_hash: &str, secret_hash: &str) -> Result<Option<String>, DbError> {
        let name: Option<String> = self
            .conn
            .query_row(
                "UPDATE users SET key_hash = NULL, secret_hash = ?2
                 WHERE key_hash = ?1 AND revoked = 0 RETURNING name",
                params![key_hash, secret_hash],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(name)
    }

    /// Whether user `name` is revoked, and the key (SHA-256 of the public
    /// key info, hex) its certificates must carry; `None` if no such user.
    pub fn user_cert_state(&self, name: &str) -> Result<Option<(bool, Option<String>)>, DbError> {
        self.conn
            .query_row(
                "SELECT revoked, cert_key FROM users WHERE name = ?1",
                [name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Bind user `name` to the key its certificates carry.
    pub fn set_cert_key(&self, name: &str, cert_key: &str) -> Result<(), DbError> {
        self.conn
            .execute(
                "UPDATE users SET cert_key = ?2 WHERE name = ?1",
                params![name, cert_key],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Every enrolled user's certificate key, by name.
    pub fn cert_keys(&self) -> Result<Vec<(String, String)>, DbError> {
        let mut st = self
            .conn
            .prepare("SELECT name, cert_key FROM users WHERE cert_key IS NOT NULL")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// The user holding a client secret, and whether it is revoked.
    pub fn user_by_secret(&self, secret_hash: &str) -> Result<Option<(String, bool)>, DbError> {
        self.conn
            .query_row(
                "SELECT name, revoked FROM users WHERE secret_hash = ?1",
                [secret_hash],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// What authentication needs of every user: name, revoked, the key its
    /// certificates carry, the hash of its client secret.
    pub fn auth_rows(&self) -> Result<Vec<AuthRow>, DbError> {
        let mut st = self
            .conn
            .prepare("SELECT name, revoked, cert_key, secret_hash FROM users")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| {
                Ok(AuthRow {
                    name: r.get(0)?,
                    revoked: r.get(1)?,
                    cert_key: r.get(2)?,
                    secret_hash: r.get(3)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Every user, by name.
    pub fn users(&self) -> Result<Vec<UserRow>, DbError> {
        let mut st = self
            .conn
            .prepare("SELECT name, secret_hash IS NOT NULL, revoked FROM users ORDER BY name")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| {
                Ok(UserRow {
                    name: r.get(0)?,
                    enrolled: r.get(1)?,
                    revoked: r.get(2)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    // ---- images ----

    /// Insert or replace an image.
    pub fn put_image(&self, row: &ImageRow) -> Result<(), DbError> {
        let stamps = serde_json::to_string(&row.stamps).map_err(|e| DbError::Corrupt {
            path: self.path.clone(),
            what: format!("stamps of {}", row.name),
            detail: e.to_string(),
        })?;
        self.conn
            .execute(
                "INSERT OR REPLACE INTO images (name, info_hash, metainfo, stamps)
                 VALUES (?1, ?2, ?3, ?4)",
                params![row.name, row.info_hash, row.metainfo, stamps],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Remove an image; false if it was not there.
    pub fn remove_image(&self, name: &str) -> Result<bool, DbError> {
        self.conn
            .execute("DELETE FROM images WHERE name = ?1", [name])
            .map(|n| n > 0)
            .map_err(|e| self.err(e))
    }

    /// One image.
    pub fn image(&self, name: &str) -> Result<Option<ImageRow>, DbError> {
        Ok(self.images()?.into_iter().find(|r| r.name == name))
    }

    /// Every image, by name.
    pub fn images(&self) -> Result<Vec<ImageRow>, DbError> {
        let mut st = self
            .conn
            .prepare("SELECT name, info_hash, metainfo, stamps FROM images ORDER BY name")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (name, info_hash, metainfo, stamps) = row.map_err(|e| self.err(e))?;
            let stamps = serde_json::from_str(&stamps).map_err(|e| DbError::Corrupt {
                path: self.path.clone(),
                what: format!("stamps of {name}"),
                detail: e.to_string(),
            })?;
            out.push(ImageRow {
                name,
                info_hash,
                metainfo,
                stamps,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enrollment_key_is_single_use_and_revocation_sticks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(&dir.path().join("t.db")).expect("open");
        db.add_user("alice", "k1").expect("add");
        assert!(matches!(
            db.add_user("alice", "k2"),
            Err(DbError::UserExists(_))
        ));
        assert_eq!(db.enroll("k1", "s1").expect("enroll"), Some("alice".into()));
        assert_eq!(db.enroll("k1", "s2").expect("enroll"), None);
        assert_eq!(
            db.user_by_secret("s1").expect("q"),
            Some(("alice".into(), false))
        );
        db.revoke_user("alice").expect("revoke");
        assert_eq!(
            db.user_by_secret("s1").expect("q"),
            Some(("alice".into(), true))
        );
        assert!(matches!(db.revoke_user("bob"), Err(DbError::NoSuchUser(_))));
        // Re-enrolling a revoked name: new key works once, the old secret stays dead.
        db.add_user("alice", "k3").expect("re-add revoked name");
        assert_eq!(db.user_by_secret("s1").expect("q"), None);
        assert_eq!(db.enroll("k1", "s3").expect("enroll"), None);
        assert_eq!(db.enroll("k3", "s3").expect("enroll"), Some("alice".into()));
        assert_eq!(
            db.user_by_secret("s3").expect("q"),
            Some(("alice".into(), false))
        );
    }

    #[test]
    fn settings_and_images_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(&dir.path().join("t.db")).expect("open");
        assert!(db.flag("p2p", true).expect("flag"));
        db.set_setting("p2p", "0").expect("set");
        assert!(!db.flag("p2p", true).expect("flag"));
        let row = ImageRow {
            name: "a:1".into(),
            info_hash: "00".into(),
            metainfo: vec![1, 2, 3],
            stamps: vec![FileStamp {
                path: "f".into(),
                len: 3,
                mtime_ns: 7,
            }],
        };
        db.put_image(&row).expect("put");
        assert_eq!(db.image("a:1").expect("get"), Some(row));
        assert!(db.remove_image("a:1").expect("rm"));
        assert!(!db.remove_image("a:1").expect("rm"));
    }
}
