//! Dense tables for the engine's hot paths: connections indexed by id, with
//! each host's open connections listed, and the event queue's payload slab.

use swarmhub_core::ConnId;

use super::SimConn;

/// Connections by id (ids are handed out sequentially, so a vector indexes them).
#[derive(Default)]
pub(crate) struct ConnTable {
    slots: Vec<Option<SimConn>>,
    by_host: Vec<Vec<ConnId>>,
}

impl ConnTable {
    pub(crate) fn get(&self, id: &ConnId) -> Option<&SimConn> {
        self.slots.get(id.0 as usize)?.as_ref()
    }

    pub(crate) fn get_mut(&mut self, id: &ConnId) -> Option<&mut SimConn> {
        self.slots.get_mut(id.0 as usize)?.as_mut()
    }

    pub(crate) fn contains_key(&self, id: &ConnId) -> bool {
        self.get(id).is_some()
    }

    pub(crate) fn insert(&mut self, id: ConnId, conn: SimConn) {
        let i = id.0 as usize;
        if self.slots.len() <= i {
            self.slots.resize_with(i + 1, || None);
        }
        if self.by_host.len() <= conn.host {
            self.by_host.resize_with(conn.host + 1, Vec::new);
        }
        self.by_host[conn.host].push(id);
        self.slots[i] = Some(conn);
    }

    pub(crate) fn remove(&mut self, id: &ConnId) -> Option<SimConn> {
        let conn = self.slots.get_mut(id.0 as usize)?.take()?;
        let list = &mut self.by_host[conn.host];
        if let Some(pos) = list.iter().position(|c| c == id) {
            list.swap_remove(pos);
        }
        Some(conn)
    }

    /// Open connections of `host`, in no particular but deterministic order.
    pub(crate) fn of_host(&self, host: usize) -> Vec<ConnId> {
        let mut v = self.by_host.get(host).cloned().unwrap_or_default();
        v.sort();
        v
    }
}
