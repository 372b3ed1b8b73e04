//! The `state` messages the broker has not acknowledged, in memory or in the spool.

use std::collections::VecDeque;

use tracing::{info, warn};

use super::Message;
use super::spool::{Spool, SpoolStats};

/// Where a `state` message lives until the broker acknowledges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateRef {
    /// Sent at once, kept in memory ([`Outbox::live`]).
    Live(u64),
    /// Sent from the spool.
    Spooled(u64),
}

/// The `state` messages the broker has not acknowledged: on disk in the spool, or, sent at
/// once while the link is up and nothing older waits, in memory until their PUBACK. When the
/// link drops or the daemon stops, those in memory go to the spool behind the older ones, so
/// the `state` topic keeps the meter's order through any outage.
pub struct Outbox {
    spool: Spool,
    live: VecDeque<(u64, Message)>,
    next_live: u64,
    /// The spool refused a message: said once until it takes one again.
    failing: bool,
    /// The spool could not be read: wait for the next sync tick before trying again.
    read_paused: bool,
    /// Spooled messages sent on this link and not yet acknowledged.
    spooled_in_flight: usize,
}

impl Outbox {
    /// An outbox over `spool`, which may hold messages from before a restart.
    pub fn new(spool: Spool) -> Self {
        Outbox {
            spool,
            live: VecDeque::new(),
            next_live: 0,
            failing: false,
            read_paused: false,
            spooled_in_flight: 0,
        }
    }

    /// Keeps a message sent at once until it is acknowledged; returns its reference.
    pub fn keep_live(&mut self, m: &Message) -> StateRef {
        let id = self.next_live;
        self.next_live += 1;
        self.live.push_back((id, m.clone()));
        StateRef::Live(id)
    }

    /// Appends a message to the spool; a refusal (disk full) loses this one, counted.
    pub fn store(&mut self, m: &Message) {
        match self.spool.append(&m.topic, &m.payload) {
            Ok(_) if self.failing => {
                info!("the spool takes messages again");
                self.failing = false;
            }
            Ok(_) => {}
            Err(e) if !self.failing => {
                warn!(error = %e, "cannot write to the spool (mqtt.spool_dir); state messages are dropped until it can");
                self.failing = true;
            }
            Err(_) => {}
        }
    }

    /// Whether spooled messages wait to be sent and the spool can be read now.
    pub fn has_unsent(&self) -> bool {
        self.spool.has_unsent() && !self.read_paused
    }

    /// The next spooled message to send, if any.
    pub fn next_unsent(&mut self) -> Option<(Message, StateRef)> {
        match self.spool.next_unsent() {
            Ok(record) => record.map(|r| {
                self.spooled_in_flight += 1;
                (
                    Message::new(r.topic, r.payload, false, 1),
                    StateRef::Spooled(r.seq),
                )
            }),
            Err(e) => {
                warn!(error = %e, "cannot read the spool (mqtt.spool_dir); trying again in a second");
                self.read_paused = true;
                None
            }
        }
    }

    /// The broker acknowledged this message: forget it.
    pub fn acked(&mut self, r: StateRef) {
        match r {
            StateRef::Live(id) => {
                if let Some(at) = self.live.iter().position(|(i, _)| *i == id) {
                    self.live.remove(at);
                }
            }
            StateRef::Spooled(seq) => {
                self.spooled_in_flight = self.spooled_in_flight.saturating_sub(1);
                self.spool.ack(seq);
            }
        }
    }

    /// The link is lost or the daemon stops: unacknowledged live messages go to the spool,
    /// behind the older ones, and everything unacknowledged is sent again on the next link.
    pub fn spill(&mut self) {
        for (_, m) in std::mem::take(&mut self.live) {
            self.store(&m);
        }
        self.spool.rewind();
        self.spooled_in_flight = 0;
    }

    /// Nothing waits for an acknowledgement.
    pub fn idle(&self) -> bool {
        self.live.is_empty() && self.spool.stats().backlog == 0
    }

    /// Whether the next sync tick has something to do.
    pub fn needs_sync(&self) -> bool {
        self.read_paused || self.spool.needs_sync()
    }

    /// Makes what was written durable and forgets what was acknowledged; once a second.
    pub fn sync(&mut self) {
        self.read_paused = false;
        if let Err(e) = self.spool.sync() {
            warn!(error = %e, "cannot sync the spool (mqtt.spool_dir)");
        }
    }

    /// Spooled messages sent on this link and not yet acknowledged.
    pub fn spooled_in_flight(&self) -> usize {
        self.spooled_in_flight
    }

    /// The spool's directory.
    pub fn dir(&self) -> &std::path::Path {
        self.spool.dir()
    }

    /// The spool's figures, for `diag`.
    pub fn stats(&self) -> SpoolStats {
        self.spool.stats()
    }

    /// Whether spooled messages wait that were not sent on this connection (whatever the
    /// state of reading them).
    pub fn spool_has_unsent(&self) -> bool {
        self.spool.has_unsent()
    }
}
