//! Piece picker: decides which blocks to request from which peer, keeps per-block
//! bookkeeping, and handles endgame and failed hashes.
//!
//! Policy (rarest-first strategy): the first `random_first_pieces` pieces are
//! chosen at random among those the peer has (rare pieces are slow to finish, and a
//! new peer needs something to trade quickly); after that the rarest piece the peer
//! has, ties broken at random. Partially downloaded pieces are always continued
//! before a new piece is started. A driver may name priority pieces (a reader
//! waiting for them, such as the container mirror streaming a blob): those
//! are started first, the rarest of them first (ties at random), whatever
//! the strategy. When every missing block is already requested
//! (strict endgame), outstanding blocks are requested again from other peers, and
//! the picker reports whom to cancel when a block arrives.

mod invariants;
mod rarity;

use std::collections::BTreeMap;

use rand::RngExt;

use crate::metainfo::Geometry;
use crate::pieceset::PieceSet;
use crate::rng::Rng;
use crate::wire::BlockRef;
use crate::ConnId;
use rarity::RarityIndex;

/// How new pieces are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PickStrategy {
    /// Rarest piece first, random tie-break (the BitTorrent default).
    #[default]
    RarestFirst,
    /// Uniformly random piece among those the peer has.
    Random,
    /// Lowest piece index first (what streaming clients do; poor for swarms).
    Sequential,
}

/// Picker knobs.
#[derive(Clone, Debug, PartialEq)]
pub struct PickerConfig {
    /// Strategy for new pieces. Default: rarest-first.
    pub strategy: PickStrategy,
    /// Pieces picked at random before rarest-first takes over. Default: 4.
    pub random_first_pieces: u32,
    /// Block size in bytes. Default: 16 KiB.
    pub block_len: u32,
    /// In endgame, how many peers may be asked for the same block at once. Default: 2.
    pub endgame_max_duplicates: usize,
    /// Endgame starts only when every missing block is requested and at most
    /// this many bytes of them are still outstanding (at least one block):
    /// only the last blocks are asked of a second peer, so endgame costs at
    /// most this much in duplicates, or one block where blocks are larger
    /// (a swarm of 8 MiB blocks with a 16-block limit duplicated up to
    /// 128 MiB per peer). Default: 256 KiB (16 blocks of 16 KiB).
    pub endgame_max_bytes: u64,
    /// Rarest-first tie-break toward the front, for a node that trades with
    /// seeds only (`front_first` of [`Picker::pick`]): among the pieces of the
    /// rarest availability the peer offers, those within this many bytes of
    /// the lowest piece not yet started are preferred, at random among them
    /// (the window is 8 to 64 pieces). Pieces then arrive near file order, so
    /// each file's SHA-256 is fed as pieces verify instead of in a pass at the
    /// end. Off when a neighbour downloads too: independent pickers that
    /// favoured the same pieces would have less to trade. 0 turns it off.
    /// Default: 32 MiB.
    pub in_order_window_bytes: u64,
}

impl Default for PickerConfig {
    fn default() -> Self {
        PickerConfig {
            strategy: PickStrategy::RarestFirst,
            random_first_pieces: 4,
            block_len: crate::wire::BLOCK_LEN,
            endgame_max_duplicates: 2,
            endgame_max_bytes: 256 << 10,
            in_order_window_bytes: 32 << 20,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum BlockState {
    Missing,
    Requested(Vec<ConnId>),
    Received(ConnId),
}

#[derive(Clone, Debug)]
struct Partial {
    blocks: Vec<BlockState>,
    missing: u32,
    received: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PieceState {
    Wanted,
    Partial,
    Verifying,
    Have,
}

/// What became of a block that arrived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlockOutcome {
    /// Stored; `cancel` lists peers that were also asked for it (endgame);
    /// `piece_complete` means every block of the piece is now in and it must be verified.
    Accepted {
        /// Peers to send a cancel for this block.
        cancel: Vec<ConnId>,
        /// All blocks of the piece are in.
        piece_complete: bool,
    },
    /// The block was already received from someone (an endgame race); drop it.
    Duplicate,
    /// Nobody asked for this block (wrong offset or length, or a piece we are
    /// not downloading); drop it.
    Unrequested,
}

/// The verdict on a piece, with the peers that supplied its blocks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyOutcome {
    /// Peers that supplied at least one block, with the number of blocks each.
    pub contributors: Vec<(ConnId, u32)>,
}

/// The piece picker of one node for one image.
#[derive(Clone, Debug)]
pub struct Picker {
    config: PickerConfig,
    geometry: Geometry,
    have: PieceSet,
    state: Vec<PieceState>,
    availability: Vec<u32>,
    rarity: RarityIndex,
    partials: BTreeMap<u32, Partial>,
    missing_in_partials: u64,
    seq_cursor: u32,
    /// Pieces to start before any other, the rarest first (empty: none).
    priority: Vec<u32>,
}

impl Picker {
    /// A picker for an image of `geometry`, starting with the pieces in `have`.
    pub fn new(config: PickerConfig, geometry: Geometry, have: PieceSet) -> Self {
        let n = geometry.num_pieces();
        let mut rarity = RarityIndex::new(n);
        let mut state = vec![PieceState::Wanted; n as usize];
        for piece in have.iter() {
            state[piece as usize] = PieceState::Have;
            rarity.set_key(piece, 0, true);
        }
        Picker {
            config,
            geometry,
            have,
            state,
            availability: vec![0; n as usize],
            rarity,
            partials: BTreeMap::new(),
            missing_in_partials: 0,
            seq_cursor: 0,
            priority: Vec::new(),
        }
    }

    /// Pieces verified so far.
    pub fn have(&self) -> &PieceSet {
        &self.have
    }

    /// True when every piece is verified.
    pub fn is_complete(&self) -> bool {
        self.have.is_full()
    }

    /// Bytes still missing (not verified).
    pub fn bytes_left(&self) -> u64 {
        let have_bytes: u64 = if self.have.is_full() {
            self.geometry.total_length
        } else {
            self.have
                .iter()
                .map(|p| u64::from(self.geometry.piece_len(p)))
                .sum()
        };
        self.geometry.total_length - have_bytes
    }

    /// How many connected peers have `piece`.
    pub fn availability(&self, piece: u32) -> u32 {
        self.availability.get(piece as usize).copied().unwrap_or(0)
    }

    /// True when every missing block is already requested from someone and
    /// at most `endgame_max_bytes` of them (at least one block) are still
    /// outstanding.
    pub fn in_endgame(&self) -> bool {
        let blocks =
            (self.config.endgame_max_bytes / u64::from(self.config.block_len.max(1))).max(1);
        self.rarity.wanted_len() == 0
            && self.missing_in_partials == 0
            && !self.is_complete()
            && self.outstanding_blocks() <= blocks
    }

    /// Blocks requested and not yet received, over every partial piece.
    pub fn outstanding_blocks(&self) -> u64 {
        self.partials
            .values()
            .map(|p| (p.blocks.len() as u64).saturating_sub(u64::from(p.missing + p.received)))
            .sum()
    }

    /// True when a peer having `has` has something we still need.
    pub fn is_interesting(&self, has: &PieceSet) -> bool {
        has.iter().any(|p| {
            matches!(
                self.state[p as usize],
                PieceState::Wanted | PieceState::Partial
            )
        })
    }

    /// True when [`Picker::pick`] would find a block to ask `peer` (which has
    /// `has`) for now: a piece not started, a block of a started piece that
    /// nobody is asked for, or in endgame a block whose duplicates are not
    /// used up. A peer that has only what we already ask others for is of no
    /// use to us until that changes, however interesting its pieces are.
    pub fn can_pick(&self, peer: ConnId, has: &PieceSet) -> bool {
        let endgame = self.in_endgame();
        let limit = self.config.endgame_max_duplicates;
        has.iter().any(|p| match self.state[p as usize] {
            PieceState::Wanted => true,
            PieceState::Partial => self.partials.get(&p).is_some_and(|partial| {
                partial.missing > 0
                    || (endgame
                        && partial.blocks.iter().any(|b| {
                            matches!(b, BlockState::Requested(peers)
                                if peers.len() < limit && !peers.contains(&peer))
                        }))
            }),
            PieceState::Verifying | PieceState::Have => false,
        })
    }

    /// True when `piece` is still to be downloaded (not verified, not awaiting
    /// verification).
    pub fn is_interesting_piece(&self, piece: u32) -> bool {
        matches!(
            self.state.get(piece as usize),
            Some(PieceState::Wanted | PieceState::Partial)
        )
    }

    /// A peer announced a full set of pieces (bitfield).
    pub fn add_peer(&mut self, has: &PieceSet) {
        for piece in has.iter() {
            self.inc(piece);
        }
    }

    /// A peer with `has` went away, or its bitfield is replaced.
    pub fn remove_peer(&mut self, peer: ConnId, has: &PieceSet) {
        for piece in has.iter() {
            self.dec(piece);
        }
        self.drop_requests_of(peer);
    }

    /// A peer announced one more piece (have).
    pub fn peer_has(&mut self, piece: u32) {
        if piece < self.geometry.num_pieces() {
            self.inc(piece);
        }
    }

    fn inc(&mut self, piece: u32) {
        let a = &mut self.availability[piece as usize];
        *a += 1;
        let a = *a;
        if self.state[piece as usize] == PieceState::Wanted {
            self.rarity.set_key(piece, a, false);
        }
    }

    fn dec(&mut self, piece: u32) {
        let a = &mut self.availability[piece as usize];
        *a = a.saturating_sub(1);
        let a = *a;
        if self.state[piece as usize] == PieceState::Wanted {
            self.rarity.set_key(piece, a, false);
        }
    }

    /// Choose up to `max` blocks to request from `peer`, which has `has`.
    /// Appends to `out`; never returns a block of a piece the peer lacks, a
    /// verified piece, or a block already requested from this peer. With
    /// `front_first` (the caller trades with seeds only, so no neighbour needs
    /// the pieces we pick to differ from theirs), ties of rarity go to the
    /// pieces nearest the front ([`PickerConfig::in_order_window_bytes`]).
    pub fn pick(
        &mut self,
        peer: ConnId,
        has: &PieceSet,
        max: usize,
        front_first: bool,
        rng: &mut Rng,
        out: &mut Vec<BlockRef>,
    ) {
        let start = out.len();
        let budget = |out: &Vec<BlockRef>| max.saturating_sub(out.len() - start);
        // 1. Continue partial pieces.
        let partial_pieces: Vec<u32> = self.partials.keys().copied().collect();
        for piece in partial_pieces {
            if budget(out) == 0 {
                return;
            }
            if has.contains(piece) {
                self.take_missing(piece, peer, budget(out), out);
            }
        }
        // 2. Start new pieces.
        while budget(out) > 0 {
            let Some(piece) = self.choose_new_piece(has, front_first, rng) else {
                break;
            };
            self.start_piece(piece);
            self.take_missing(piece, peer, budget(out), out);
        }
        // 3. Endgame: ask for blocks already requested from others.
        if budget(out) > 0 && self.in_endgame() {
            self.take_endgame(peer, has, budget(out), out);
        }
    }

    /// Start these pieces before any other when a peer has them, the rarest
    /// first, ties at random (replaces the previous list; empty clears it).
    /// Pieces outside the image, verified or already started are passed over.
    pub fn set_priority(&mut self, pieces: Vec<u32>) {
        self.priority = pieces;
    }

    fn choose_new_piece(&self, has: &PieceSet, front_first: bool, rng: &mut Rng) -> Option<u32> {
        if self.rarity.wanted_len() == 0 {
            return None;
        }
        let wanted =
            |p: u32| self.state.get(p as usize) == Some(&PieceState::Wanted) && has.contains(p);
        // The rarest of them; among equally rare ones, one of the first
        // PRIORITY_SPREAD in the list's order (the order its readers need
        // them) at random. A streaming reader then gets the front of what it
        // waits for among the first pieces, and readers on several machines
        // that want the same pieces still fetch different ones from the hub
        // and trade the rest.
        if let Some(rarest) = self
            .priority
            .iter()
            .filter(|&&p| wanted(p))
            .map(|&p| self.availability[p as usize])
            .min()
        {
            let mut front = [0u32; PRIORITY_SPREAD];
            let mut n = 0;
            for &p in &self.priority {
                if wanted(p) && self.availability[p as usize] == rarest {
                    front[n] = p;
                    n += 1;
                    if n == PRIORITY_SPREAD {
                        break;
                    }
                }
            }
            return Some(front[rng.random_range(0..n)]);
        }
        let random = self.config.strategy == PickStrategy::Random
            || (self.config.strategy == PickStrategy::RarestFirst
                && self.have.count() < self.config.random_first_pieces);
        if self.config.strategy == PickStrategy::Sequential {
            return (self.seq_cursor..self.geometry.num_pieces())
                .find(|&p| self.state[p as usize] == PieceState::Wanted && has.contains(p));
        }
        if random {
            // Pieces of availability 0 cannot be in `has`: scan from bucket 1.
            return scan_from_random(self.rarity.wanted_from(1), has, rng);
        }
        let rarest = (1..self.rarity.cap())
            .find_map(|k| scan_from_random(self.rarity.bucket(k), has, rng))?;
        if !front_first {
            return Some(rarest);
        }
        Some(self.front_of_class(rarest, has, rng).unwrap_or(rarest))
    }

    /// A piece of `rarest`'s availability that `has` offers within the
    /// in-order window ([`PickerConfig::in_order_window_bytes`]), at random.
    fn front_of_class(&self, rarest: u32, has: &PieceSet, rng: &mut Rng) -> Option<u32> {
        if self.config.in_order_window_bytes == 0 {
            return None;
        }
        let piece_len = u64::from(self.geometry.piece_length).max(1);
        let window = (self.config.in_order_window_bytes / piece_len).clamp(8, MAX_WINDOW as u64);
        let end = (u64::from(self.seq_cursor) + window).min(u64::from(self.geometry.num_pieces()));
        let k = self.availability[rarest as usize];
        let mut front = [0u32; MAX_WINDOW];
        let mut n = 0;
        for p in self.seq_cursor..end as u32 {
            if self.state[p as usize] == PieceState::Wanted
                && self.availability[p as usize] == k
                && has.contains(p)
            {
                front[n] = p;
                n += 1;
            }
        }
        (n > 0).then(|| front[rng.random_range(0..n)])
    }

    fn start_piece(&mut self, piece: u32) {
        let blocks = self.geometry.num_blocks(piece, self.config.block_len);
        self.state[piece as usize] = PieceState::Partial;
        self.rarity.set_key(piece, 0, true);
        self.partials.insert(
            piece,
            Partial {
                blocks: vec![BlockState::Missing; blocks as usize],
                missing: blocks,
                received: 0,
            },
        );
        self.missing_in_partials += u64::from(blocks);
        while self.seq_cursor < self.geometry.num_pieces()
            && self.state[self.seq_cursor as usize] != PieceState::Wanted
        {
            self.seq_cursor += 1;
        }
    }

    fn block_ref(&self, piece: u32, block: u32) -> BlockRef {
        BlockRef {
            piece,
            begin: block * self.config.block_len,
            length: self.geometry.block_len(piece, block, self.config.block_len),
        }
    }

    fn take_missing(&mut self, piece: u32, peer: ConnId, max: usize, out: &mut Vec<BlockRef>) {
        let Some(partial) = self.partials.get_mut(&piece) else {
            return;
        };
        if partial.missing == 0 {
            return;
        }
        let mut taken = Vec::new();
        for (i, b) in partial.blocks.iter_mut().enumerate() {
            if taken.len() == max {
                break;
            }
            if *b == BlockState::Missing {
                *b = BlockState::Requested(vec![peer]);
                partial.missing -= 1;
                taken.push(i as u32);
            }
        }
        self.missing_in_partials -= taken.len() as u64;
        for block in taken {
            out.push(self.block_ref(piece, block));
        }
    }

    fn take_endgame(&mut self, peer: ConnId, has: &PieceSet, max: usize, out: &mut Vec<BlockRef>) {
        let limit = self.config.endgame_max_duplicates;
        let mut taken = Vec::new();
        for (&piece, partial) in self.partials.iter_mut() {
            if !has.contains(piece) {
                continue;
            }
            for (i, b) in partial.blocks.iter_mut().enumerate() {
                if taken.len() == max {
                    break;
                }
                if let BlockState::Requested(peers) = b {
                    if peers.len() < limit && !peers.contains(&peer) {
                        peers.push(peer);
                        taken.push((piece, i as u32));
                    }
                }
            }
        }
        for (piece, block) in taken {
            out.push(self.block_ref(piece, block));
        }
    }

    /// A request to `peer` for `block` is abandoned (choked, timed out, rejected).
    pub fn request_dropped(&mut self, peer: ConnId, block: BlockRef) {
        let Some(index) = self.block_index(block) else {
            return;
        };
        if let Some(partial) = self.partials.get_mut(&block.piece) {
            if let BlockState::Requested(peers) = &mut partial.blocks[index] {
                peers.retain(|p| *p != peer);
                if peers.is_empty() {
                    partial.blocks[index] = BlockState::Missing;
                    partial.missing += 1;
                    self.missing_in_partials += 1;
                }
            }
        }
    }

    /// Forget every outstanding request to `peer` (it went away).
    pub fn drop_requests_of(&mut self, peer: ConnId) {
        for partial in self.partials.values_mut() {
            for b in partial.blocks.iter_mut() {
                if let BlockState::Requested(peers) = b {
                    peers.retain(|p| *p != peer);
                    if peers.is_empty() {
                        *b = BlockState::Missing;
                        partial.missing += 1;
                        self.missing_in_partials += 1;
                    }
                }
            }
        }
    }

    fn block_index(&self, block: BlockRef) -> Option<usize> {
        if block.piece >= self.geometry.num_pieces()
            || !block.begin.is_multiple_of(self.config.block_len)
        {
            return None;
        }
        let index = block.begin / self.config.block_len;
        if index >= self.geometry.num_blocks(block.piece, self.config.block_len)
            || self
                .geometry
                .block_len(block.piece, index, self.config.block_len)
                != block.length
        {
            return None;
        }
        Some(index as usize)
    }

    /// `block` arrived from `peer`. `late` says the block was asked of this
    /// peer and the request was given up (timed out and cancelled): the copy
    /// that was already on its way is taken even if the block has been asked
    /// of someone else since, and those others are cancelled.
    pub fn block_received(&mut self, peer: ConnId, block: BlockRef, late: bool) -> BlockOutcome {
        let Some(index) = self.block_index(block) else {
            return BlockOutcome::Unrequested;
        };
        let Some(partial) = self.partials.get_mut(&block.piece) else {
            return match self.state[block.piece as usize] {
                PieceState::Have | PieceState::Verifying => BlockOutcome::Duplicate,
                _ => BlockOutcome::Unrequested,
            };
        };
        let cancel = match &partial.blocks[index] {
            BlockState::Received(_) => return BlockOutcome::Duplicate,
            BlockState::Requested(peers) if peers.contains(&peer) => {
                peers.iter().copied().filter(|p| *p != peer).collect()
            }
            // A late block for a request we gave up on is still welcome.
            BlockState::Missing => {
                partial.missing -= 1;
                self.missing_in_partials -= 1;
                Vec::new()
            }
            BlockState::Requested(peers) if late => peers.clone(),
            BlockState::Requested(_) => return BlockOutcome::Unrequested,
        };
        partial.blocks[index] = BlockState::Received(peer);
        partial.received += 1;
        let piece_complete = partial.received as usize == partial.blocks.len();
        if piece_complete {
            self.state[block.piece as usize] = PieceState::Verifying;
        }
        BlockOutcome::Accepted {
            cancel,
            piece_complete,
        }
    }

    /// The verdict on a piece that was complete. On success the piece is ours; on
    /// failure it is queued again. Either way, the contributors are returned so the
    /// caller can credit or blame them.
    pub fn piece_verified(&mut self, piece: u32, ok: bool) -> Option<VerifyOutcome> {
        if self.state.get(piece as usize) != Some(&PieceState::Verifying) {
            return None;
        }
        let partial = self.partials.remove(&piece)?;
        let mut contributors: Vec<(ConnId, u32)> = Vec::new();
        for b in &partial.blocks {
            if let BlockState::Received(p) = b {
                match contributors.iter_mut().find(|(c, _)| c == p) {
                    Some((_, n)) => *n += 1,
                    None => contributors.push((*p, 1)),
                }
            }
        }
        if ok {
            self.state[piece as usize] = PieceState::Have;
            self.have.insert(piece);
        } else {
            self.state[piece as usize] = PieceState::Wanted;
            let a = self.availability[piece as usize];
            self.rarity.set_key(piece, a, false);
            self.seq_cursor = self.seq_cursor.min(piece);
        }
        Some(VerifyOutcome { contributors })
    }
}

impl Picker {
    /// `piece` was obtained and verified outside the swarm (the hub's HTTP web
    /// seed). It becomes ours at once; returns the outstanding requests for its
    /// blocks, which the caller cancels. False in the second value when the
    /// piece was already ours (nothing changed).
    pub fn piece_obtained(&mut self, piece: u32) -> (Vec<(ConnId, BlockRef)>, bool) {
        let mut cancels = Vec::new();
        match self.state.get(piece as usize) {
            None | Some(PieceState::Have) => return (cancels, false),
            Some(PieceState::Wanted) => self.rarity.set_key(piece, 0, true),
            Some(PieceState::Partial | PieceState::Verifying) => {
                if let Some(partial) = self.partials.remove(&piece) {
                    self.missing_in_partials -= u64::from(partial.missing);
                    for (i, b) in partial.blocks.iter().enumerate() {
                        if let BlockState::Requested(peers) = b {
                            let block = self.block_ref(piece, i as u32);
                            cancels.extend(peers.iter().map(|p| (*p, block)));
                        }
                    }
                }
            }
        }
        self.state[piece as usize] = PieceState::Have;
        self.have.insert(piece);
        (cancels, true)
    }
}

/// Equally rare priority pieces chosen among, from the front of the list.
const PRIORITY_SPREAD: usize = 4;
/// The in-order window's length in pieces is at most this.
const MAX_WINDOW: usize = 64;

/// First piece of `pieces` that `has` contains, scanning from a random start.
fn scan_from_random(pieces: &[u32], has: &PieceSet, rng: &mut Rng) -> Option<u32> {
    if pieces.is_empty() {
        return None;
    }
    let start = rng.random_range(0..pieces.len());
    let (a, b) = pieces.split_at(start);
    b.iter().chain(a).copied().find(|&p| has.contains(p))
}

#[cfg(test)]
mod tests;
