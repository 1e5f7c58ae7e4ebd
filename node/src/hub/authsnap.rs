//! The users and certificate keys that announces and API calls are checked
//! against, held in memory: the hot path never waits on the database. The
//! hub rebuilds the snapshot whenever the database changes (user add or rm,
//! enrollment, a certificate key bound) and swaps it in whole.

use std::collections::HashMap;

use crate::db::{Db, DbError};

#[derive(Clone, Debug)]
struct UserAuth {
    revoked: bool,
    cert_key: Option<String>,
}

/// Who is enrolled, revoked, and bound to which certificate key.
#[derive(Clone, Debug, Default)]
pub(crate) struct AuthSnapshot {
    users: HashMap<String, UserAuth>,
    /// SHA-256 of a client secret -> user.
    secrets: HashMap<String, String>,
}

impl AuthSnapshot {
    /// Read every user from `db`.
    pub(crate) fn load(db: &Db) -> Result<Self, DbError> {
        let mut snap = AuthSnapshot::default();
        for row in db.auth_rows()? {
            if let Some(h) = row.secret_hash {
                snap.secrets.insert(h, row.name.clone());
            }
            snap.users.insert(
                row.name,
                UserAuth {
                    revoked: row.revoked,
                    cert_key: row.cert_key,
                },
            );
        }
        Ok(snap)
    }

    /// Whether `name` is revoked and the key its certificates must carry;
    /// `None` if no such user.
    pub(crate) fn cert_state(&self, name: &str) -> Option<(bool, Option<&str>)> {
        self.users
            .get(name)
            .map(|u| (u.revoked, u.cert_key.as_deref()))
    }

    /// The user holding the secret whose SHA-256 is `secret_hash`, and
    /// whether it is revoked.
    pub(crate) fn user_by_secret(&self, secret_hash: &str) -> Option<(&str, bool)> {
        let name = self.secrets.get(secret_hash)?;
        let revoked = self.users.get(name).is_none_or(|u| u.revoked);
        Some((name.as_str(), revoked))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::secret_hash;

    #[test]
    fn snapshot_follows_enrollment_binding_and_revocation() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let db = Db::open(&tmp.path().join("hub.db")).expect("db");
        db.add_user("a", &secret_hash("key-a")).expect("add");
        let s = AuthSnapshot::load(&db).expect("load");
        assert_eq!(s.cert_state("a"), Some((false, None)));
        assert_eq!(s.cert_state("b"), None);
        db.enroll(&secret_hash("key-a"), &secret_hash("secret-a"))
            .expect("enroll");
        db.set_cert_key("a", "k1").expect("bind");
        let s = AuthSnapshot::load(&db).expect("load");
        assert_eq!(s.cert_state("a"), Some((false, Some("k1"))));
        assert_eq!(
            s.user_by_secret(&secret_hash("secret-a")),
            Some(("a", false))
        );
        assert_eq!(s.user_by_secret(&secret_hash("other")), None);
        db.revoke_user("a").expect("revoke");
        let s = AuthSnapshot::load(&db).expect("load");
        assert_eq!(s.cert_state("a"), Some((true, Some("k1"))));
    }
}
