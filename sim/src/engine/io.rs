//! How the engine carries out node outputs: connections, message queues and
//! flows, piece verification, announces, and node events.

use std::collections::VecDeque;
use std::net::SocketAddr;

use swarmhub_core::node::AnnounceParams;
use swarmhub_core::tracker::Auth;
use swarmhub_core::wire::Message;
use swarmhub_core::{ConnId, Duration, Input, NodeEvent, Output};

/// Payload standing for a corrupt block.
const CORRUPT_MARK: &[u8] = b"X";

use super::{identity, Ev, HostState, Item, Sim, SimConn, HUB};
use crate::net::FlowId;

impl Sim {
    /// Feed an input to host `h`'s node and carry out everything it outputs.
    pub(crate) fn input(&mut self, h: usize, input: Input) {
        let now = self.now;
        let Some(node) = self.hosts[h].node.as_mut() else {
            return;
        };
        if self.check {
            self.touched.push(h);
        }
        if let Err(e) = node.handle_input(now, input) {
            // A driver bug, not a peer's fault: record it loudly in the trace.
            self.record(h, format!("api-error {e}"));
            return;
        }
        self.drain(h);
    }

    fn drain(&mut self, h: usize) {
        loop {
            let Some(node) = self.hosts[h].node.as_mut() else {
                return;
            };
            let out = node.poll_output();
            match out {
                Output::Timeout(t) => {
                    if t.as_micros() == u64::MAX {
                        return;
                    }
                    // Never schedule in the past: a deadline that is due now fires next.
                    let t = t.max(self.now + Duration::from_micros(1));
                    let host = &mut self.hosts[h];
                    if host.timer_at.is_none_or(|cur| t < cur) {
                        host.timer_at = Some(t);
                        let inc = host.incarnation;
                        self.schedule(t, Ev::Timer(h, inc));
                    }
                    return;
                }
                Output::SendHandshake { conn, handshake } => {
                    self.enqueue(conn, Item::Handshake(handshake))
                }
                Output::Transmit { conn, msg } => self.enqueue(conn, Item::Msg(msg)),
                Output::SendBlock { conn, block } => self.enqueue(conn, Item::Block(block)),
                Output::StoreBlock { block, data } => {
                    if data.as_ref() == CORRUPT_MARK {
                        self.tainted.insert((h, block.piece));
                    }
                }
                Output::VerifyPiece { piece } => {
                    let ok = !self.tainted.remove(&(h, piece));
                    let inc = self.hosts[h].incarnation;
                    self.schedule_in(
                        Duration::ZERO,
                        Ev::Verify {
                            host: h,
                            inc,
                            piece,
                            ok,
                        },
                    );
                }
                Output::Connect { addr } => self.connect(h, addr),
                Output::Disconnect { conn } => self.close(conn, true),
                Output::Announce(params) => self.send_announce(h, params),
                Output::Event(e) => self.node_event(h, e),
            }
        }
    }

    fn node_event(&mut self, h: usize, e: NodeEvent) {
        match &e {
            NodeEvent::Complete => self.on_complete(h),
            NodeEvent::PeerBanned {
                identity, reason, ..
            } => {
                let whom = identity.as_deref().and_then(host_of_identity);
                self.bans.push(super::Ban {
                    at: self.now,
                    by: h,
                    whom,
                    reason: format!("{reason:?}"),
                });
            }
            NodeEvent::BlockReceived { .. }
            | NodeEvent::BlockWasted { .. }
            | NodeEvent::BlockUploaded { .. } => {
                // Counted by the engine itself; too many to trace one by one.
                return;
            }
            _ => {}
        }
        self.record(h, format!("{e:?}"));
    }

    fn connect(&mut self, h: usize, addr: SocketAddr) {
        let inc = self.hosts[h].incarnation;
        let target = self.addrs.get(&addr).copied();
        let lat = target.map_or(Duration::from_millis(1), |t| self.latency(h, t));
        let reachable = target.is_some_and(|t| t != h && self.hosts[t].state == HostState::Active);
        let Some(t) = target.filter(|_| reachable) else {
            // Connection refused after one round trip.
            self.schedule_in(lat + lat, Ev::ConnectFailed { host: h, inc, addr });
            return;
        };
        let (a, b) = (ConnId(self.next_conn), ConnId(self.next_conn + 1));
        self.next_conn += 2;
        let conn = |host, peer, peer_host| SimConn {
            host,
            peer,
            peer_host,
            queue: VecDeque::new(),
            sending: None,
        };
        self.conns.insert(a, conn(h, b, t));
        self.conns.insert(b, conn(t, a, h));
        // The acceptor learns of the connection after one latency, the dialer
        // after the SYN-ACK returns.
        self.schedule_in(lat, Ev::Connected { conn: b });
        self.schedule_in(lat + lat, Ev::Connected { conn: a });
    }

    pub(super) fn connected(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let (h, peer_host) = (c.host, c.peer_host);
        let outbound = conn.0 % 2 == 1;
        let addr = if outbound {
            self.hosts[peer_host].addr
        } else {
            SocketAddr::new(
                self.hosts[peer_host].addr.ip(),
                40_000 + (conn.0 % 20_000) as u16,
            )
        };
        let identity = Some(identity(peer_host));
        self.input(
            h,
            Input::Connected {
                conn,
                addr,
                outbound,
                identity,
            },
        );
    }

    fn enqueue(&mut self, conn: ConnId, item: Item) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.queue.push_back(item);
        if c.sending.is_none() {
            self.pump(conn);
        }
    }

    /// Start sending what is queued on `conn`: control messages go at once
    /// (after the latency), a piece message becomes a flow and holds the queue.
    fn pump(&mut self, conn: ConnId) {
        loop {
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            if c.sending.is_some() {
                return;
            }
            let Some(item) = c.queue.pop_front() else {
                return;
            };
            let (src, dst, peer) = (c.host, c.peer_host, c.peer);
            match item {
                Item::Block(block) => {
                    let bytes = Message::Piece(block, bytes::Bytes::new()).wire_len() as u64;
                    let mut out = Vec::new();
                    let (sn, dn) = (self.hosts[src].net, self.hosts[dst].net);
                    let flow = self.net.start(self.now, sn, dn, bytes, conn.0, &mut out);
                    if let Some(c) = self.conns.get_mut(&conn) {
                        c.sending = Some((flow, Item::Block(block)));
                    }
                    self.reschedule(out);
                    return;
                }
                other => {
                    let lat = self.latency(src, dst);
                    self.schedule_in(
                        lat,
                        Ev::Arrive {
                            conn: peer,
                            item: other,
                        },
                    );
                }
            }
        }
    }

    fn reschedule(&mut self, out: Vec<crate::net::Reschedule>) {
        for r in out {
            self.schedule_flow(r.flow, r.at);
        }
    }

    /// The finish event of `flow` fired.
    pub(super) fn flow_done(&mut self, flow: FlowId) {
        // The connection of a flow is its tag.
        let Some(conn) = self.net.tag(flow).map(ConnId) else {
            return;
        };
        if let Err(r) = self.net.due(self.now, flow) {
            self.flow_events_early += 1;
            // The flow slowed down since this event was set: not done yet.
            self.schedule_flow(flow, r.at);
            return;
        }
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        // `sending` stays set while the sender's node reacts, so blocks it
        // queues now wait for this flow instead of starting another one.
        let Some((_, item)) = c.sending.clone() else {
            return;
        };
        let (src, dst, peer) = (c.host, c.peer_host, c.peer);
        if let Item::Block(block) = &item {
            let block = *block;
            self.hosts[src].bytes_up += u64::from(block.length);
            self.bytes_in_transit += u64::from(block.length);
            let lat = self.latency(src, dst);
            self.schedule_in(lat, Ev::Arrive { conn: peer, item });
            self.input(src, Input::BlockSent { conn, block });
        }
        // Control messages queued behind the block go now; if another block
        // follows, the flow carries it at the same rate (the connection keeps
        // streaming), otherwise the flow ends and its capacity is shared out.
        self.pump_control(conn);
        let next_block = self
            .conns
            .get_mut(&conn)
            .and_then(|c| match c.queue.front() {
                Some(Item::Block(b)) => {
                    let b = *b;
                    c.queue.pop_front();
                    Some(b)
                }
                _ => None,
            });
        match next_block {
            Some(block) => {
                let bytes = Message::Piece(block, bytes::Bytes::new()).wire_len() as u64;
                if let Some(r) = self.net.extend(self.now, flow, bytes) {
                    if let Some(c) = self.conns.get_mut(&conn) {
                        c.sending = Some((flow, Item::Block(block)));
                    }
                    self.schedule_flow(flow, r.at);
                }
            }
            None => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.sending = None;
                }
                let mut out = Vec::new();
                self.net.finish(self.now, flow, &mut out);
                self.reschedule(out);
            }
        }
    }

    /// Send the control messages at the head of `conn`'s queue (they take no capacity).
    fn pump_control(&mut self, conn: ConnId) {
        loop {
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            if matches!(c.queue.front(), None | Some(Item::Block(_))) {
                return;
            }
            let item = c.queue.pop_front().expect("non-empty");
            let (src, dst, peer) = (c.host, c.peer_host, c.peer);
            let lat = self.latency(src, dst);
            self.schedule_in(lat, Ev::Arrive { conn: peer, item });
        }
    }

    pub(super) fn arrive(&mut self, conn: ConnId, item: Item) {
        if let Item::Block(block) = &item {
            self.bytes_in_transit -= u64::from(block.length);
            if !self.conns.contains_key(&conn) {
                self.bytes_lost += u64::from(block.length);
            }
        }
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let (h, from) = (c.host, c.peer_host);
        let input = match item {
            Item::Handshake(handshake) => Input::Handshake { conn, handshake },
            Item::Msg(msg) => Input::Message { conn, msg },
            Item::Block(block) => {
                let len = u64::from(block.length);
                let net = self.hosts[from].net;
                let to = self.hosts[h].net;
                for &l in self.net.path_of_hosts(net, to) {
                    self.link_bytes[l] += len;
                    self.step_link_bytes[l] += len;
                }
                if from == HUB {
                    self.hosts[h].bytes_down_hub += len;
                    self.step_bytes_hub += len;
                } else {
                    self.hosts[h].bytes_down_peers += len;
                    self.step_bytes_peers += len;
                }
                // The simulator moves no payload; a corrupt sender's block carries
                // a one-byte marker instead, and a stored marked block fails its piece.
                let data = if self.hosts[from].corrupt {
                    bytes::Bytes::from_static(CORRUPT_MARK)
                } else {
                    bytes::Bytes::new()
                };
                Input::Message {
                    conn,
                    msg: Message::Piece(block, data),
                }
            }
        };
        self.input(h, input);
    }

    /// Close our end of `conn`; the other end hears of it after the latency.
    pub(crate) fn close(&mut self, conn: ConnId, notify_peer: bool) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        if let Some((flow, _)) = c.sending {
            self.flow_queue.remove(flow);
            let mut out = Vec::new();
            self.net.finish(self.now, flow, &mut out);
            self.reschedule(out);
        }
        if notify_peer && self.conns.contains_key(&c.peer) {
            let lat = self.latency(c.host, c.peer_host);
            self.schedule_in(lat, Ev::Closed { conn: c.peer });
        }
    }

    pub(super) fn remote_closed(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let h = c.host;
        self.close(conn, false);
        self.input(
            h,
            Input::Closed {
                conn,
                reason: "connection closed by peer".into(),
            },
        );
    }

    fn send_announce(&mut self, h: usize, params: AnnounceParams) {
        let inc = self.hosts[h].incarnation;
        let lat = self.latency(h, HUB);
        if self.hub_down {
            // The client's HTTP request times out.
            let result = Err("hub unreachable: connection timed out".to_string());
            self.schedule_in(
                Duration::from_secs(5),
                Ev::AnnounceReply {
                    host: h,
                    inc,
                    result,
                },
            );
            return;
        }
        self.schedule_in(
            lat,
            Ev::AnnounceAtHub {
                host: h,
                inc,
                params,
            },
        );
    }

    pub(super) fn announce_at_hub(&mut self, h: usize, inc: u32, p: AnnounceParams) {
        let lat = self.latency(h, HUB);
        let result = if self.hub_down {
            Err("hub unreachable: connection timed out".to_string())
        } else {
            let req = p.to_request(
                self.info_hash,
                self.hosts[h].peer_id,
                self.hosts[h].addr.ip(),
            );
            let auth = Auth::Verified {
                identity: identity(h),
                registered: true,
            };
            self.tracker
                .handle_announce(self.now, &auth, &req)
                .map_err(|e| e.to_string())
        };
        self.schedule_in(
            lat,
            Ev::AnnounceReply {
                host: h,
                inc,
                result,
            },
        );
    }
}

/// The host an identity names (see [`identity`]).
fn host_of_identity(identity: &str) -> Option<usize> {
    if identity == "hub" {
        return Some(HUB);
    }
    identity.strip_prefix("peer-")?.parse().ok()
}
