//! What a worker holds of each partner: claimed, in flight, and the room it may use.

use std::collections::HashMap;

use crate::webhooks::entities::partners;

/// What this worker holds of each partner, and how much it may: at most its room in flight
/// (the configured cap, or one while it is failing), and as many again claimed and waiting.
/// A waiting delivery then waits for one round of the partner's requests at most, which ends
/// within the timeout, so it is sent well within its lease.
#[derive(Default)]
pub(super) struct Holdings {
    partners: HashMap<String, Held>,
}

#[derive(Default)]
struct Held {
    /// Claimed, waiting or in flight.
    claimed: usize,
    in_flight: usize,
    /// Its room as last seen.
    room: usize,
}

impl Holdings {
    /// A claimed delivery of `partner` joins the waiting ones.
    pub(super) fn take(&mut self, partner: &partners::Model, room: usize) {
        let held = self.partners.entry(partner.id.clone()).or_default();
        held.claimed += 1;
        held.room = room;
    }

    /// Whether a waiting delivery of this partner may be sent now.
    pub(super) fn may_send(&self, partner_id: &str) -> bool {
        self.partners
            .get(partner_id)
            .is_some_and(|held| held.in_flight < held.room)
    }

    pub(super) fn sending(&mut self, partner_id: &str) {
        if let Some(held) = self.partners.get_mut(partner_id) {
            held.in_flight += 1;
        }
    }

    /// A delivery of this partner was sent (`sent`) or given back.
    pub(super) fn done(&mut self, partner_id: &str, sent: bool) {
        if let Some(held) = self.partners.get_mut(partner_id) {
            held.claimed = held.claimed.saturating_sub(1);
            if sent {
                held.in_flight = held.in_flight.saturating_sub(1);
            }
            if held.claimed == 0 {
                self.partners.remove(partner_id);
            }
        }
    }

    /// Whether a partner the last claim left out has room enough again to be worth a claim:
    /// a quarter of what it may hold (one, for a partner being probed).
    pub(super) fn worth_claiming(&self, partner_id: &str) -> bool {
        self.partners.get(partner_id).is_none_or(|held| {
            let quota = 2 * held.room;
            quota.saturating_sub(held.claimed) >= (quota / 4).max(1)
        })
    }

    /// What each partner this worker holds may still claim; others may claim twice their room.
    pub(super) fn free(&self) -> HashMap<String, usize> {
        self.partners
            .iter()
            .map(|(id, held)| (id.clone(), (2 * held.room).saturating_sub(held.claimed)))
            .collect()
    }
}
