//! A bounded cache of open file handles, least recently used evicted first.
//!
//! [`crate::store::Storage`] opens an image's files on demand through it, so an
//! image may hold any number of files while the process keeps at most
//! `capacity` of them open per image.

use std::collections::HashMap;
use std::fs::File;
use std::sync::Arc;

/// Open handles keyed by file index, with a use stamp for LRU eviction.
#[derive(Debug)]
pub(crate) struct HandleCache {
    capacity: usize,
    tick: u64,
    open: HashMap<usize, (Arc<File>, u64)>,
}

impl HandleCache {
    /// A cache holding at most `capacity` (at least 1) handles.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            tick: 0,
            open: HashMap::new(),
        }
    }

    /// The handle of file `index`, opened with `open` when not cached. A handle
    /// evicted while a caller still uses it stays open until that caller drops it.
    pub(crate) fn get_or_open(
        &mut self,
        index: usize,
        open: impl FnOnce() -> std::io::Result<File>,
    ) -> std::io::Result<Arc<File>> {
        self.tick += 1;
        if let Some((file, used)) = self.open.get_mut(&index) {
            *used = self.tick;
            return Ok(file.clone());
        }
        let file = Arc::new(open()?);
        if self.open.len() >= self.capacity {
            // Capacity is small (tens), so a scan beats keeping a linked list.
            let oldest = self
                .open
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(&i, _)| i);
            if let Some(i) = oldest {
                self.open.remove(&i);
            }
        }
        self.open.insert(index, (file.clone(), self.tick));
        Ok(file)
    }

    /// How many handles are open now.
    pub(crate) fn len(&self) -> usize {
        self.open.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used_and_never_exceeds_capacity() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = |i: usize| dir.path().join(format!("f{i}"));
        for i in 0..5 {
            std::fs::write(path(i), [i as u8]).expect("write");
        }
        let mut cache = HandleCache::new(2);
        let mut opens = Vec::new();
        let get = |c: &mut HandleCache, i: usize, opens: &mut Vec<usize>| {
            c.get_or_open(i, || {
                opens.push(i);
                File::open(path(i))
            })
            .expect("open")
        };
        get(&mut cache, 0, &mut opens);
        get(&mut cache, 1, &mut opens);
        get(&mut cache, 0, &mut opens); // 0 is now the most recent
        get(&mut cache, 2, &mut opens); // evicts 1
        assert_eq!(cache.len(), 2);
        get(&mut cache, 0, &mut opens); // still cached
        get(&mut cache, 1, &mut opens); // reopened, evicts 2
        assert_eq!(opens, vec![0, 1, 2, 1]);
        let missing = cache.get_or_open(9, || File::open(path(9)));
        assert!(missing.is_err());
        assert_eq!(cache.len(), 2);
    }
}
