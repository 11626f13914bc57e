//! Which other nodes hold active devices of a tenant, kept incrementally
//! by the replica.
//!
//! The dead-node sweep (`hub::cluster`) asks this of every tenant twice a
//! second. Scanning the records for it held the replica's lock over every
//! record each time (with 50 000 agents, the largest hub symbol of a
//! reconnect storm, where the same lock applies every reconnection). Like
//! the channel counters, each delta takes the old record's contribution out
//! and puts the new one in, so the question costs the number of nodes.

use crate::domain::AgentRecord;
use std::collections::HashMap;

/// Active devices per node, over every record of the replica.
#[derive(Debug, Default)]
pub struct DeviceNodes {
    active: HashMap<String, usize>,
}

impl DeviceNodes {
    /// Recounts from scratch (a replica loaded from the store).
    pub fn rebuild<'a>(&mut self, records: impl Iterator<Item = &'a AgentRecord>) {
        self.active.clear();
        for record in records {
            self.add(record);
        }
    }

    /// Replaces `old`'s contribution with `new`'s.
    pub fn update(&mut self, old: Option<&AgentRecord>, new: &AgentRecord) {
        if let Some(old) = old {
            self.remove(old);
        }
        self.add(new);
    }

    /// Takes out the contribution of a record that left the tenant.
    pub fn remove(&mut self, old: &AgentRecord) {
        for device in old.devices.iter().filter(|d| d.active) {
            if let Some(count) = self.active.get_mut(&device.node) {
                *count -= 1;
                if *count == 0 {
                    self.active.remove(&device.node);
                }
            }
        }
    }

    fn add(&mut self, record: &AgentRecord) {
        for device in record.devices.iter().filter(|d| d.active) {
            match self.active.get_mut(&device.node) {
                Some(count) => *count += 1,
                None => {
                    self.active.insert(device.node.clone(), 1);
                }
            }
        }
    }

    /// The nodes holding at least one active device, but `except`.
    pub fn nodes_except(&self, except: &str) -> Vec<String> {
        self.active
            .keys()
            .filter(|node| node.as_str() != except)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Device, Role, Settings};

    fn record(id: &str, devices: &[(&str, &str, bool)]) -> AgentRecord {
        let mut r = AgentRecord::new(id, id, &[Role::Agent], [], &Settings::default());
        r.devices = devices
            .iter()
            .map(|(device, node, active)| Device {
                id: device.to_string(),
                kind: "softphone".to_string(),
                label: None,
                active: *active,
                node: node.to_string(),
                since_ms: 0,
            })
            .collect();
        r
    }

    fn sorted(mut nodes: Vec<String>) -> Vec<String> {
        nodes.sort();
        nodes
    }

    #[test]
    fn counts_follow_every_update_and_removal() {
        let mut nodes = DeviceNodes::default();
        let a1 = record("a1", &[("d1", "n1", true), ("d2", "n2", true)]);
        let a2 = record("a2", &[("d3", "n2", true), ("d4", "n3", false)]);
        nodes.rebuild([&a1, &a2].into_iter());
        assert_eq!(sorted(nodes.nodes_except("x")), ["n1", "n2"]);
        assert_eq!(sorted(nodes.nodes_except("n1")), ["n2"]);

        // a1's device on n2 goes inactive: a2 still holds one there.
        let a1b = record("a1", &[("d1", "n1", true), ("d2", "n2", false)]);
        nodes.update(Some(&a1), &a1b);
        assert_eq!(sorted(nodes.nodes_except("x")), ["n1", "n2"]);
        // a2 leaves the tenant: n2 has no active device left.
        nodes.remove(&a2);
        assert_eq!(sorted(nodes.nodes_except("x")), ["n1"]);
        // A new agent's device on n3.
        let a3 = record("a3", &[("d5", "n3", true)]);
        nodes.update(None, &a3);
        assert_eq!(sorted(nodes.nodes_except("n1")), ["n3"]);
    }
}
