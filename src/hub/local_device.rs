//! An agent device connected to this node: what its session and the node's
//! device registry share.
//!
//! Idle agent connections are the hub's bulk, and each has one device, so
//! the device is kept once (BENCHMARKS.md, memory per connection): the
//! session and the registry hold the same `Arc`, the registry's key is the
//! same allocation as [`LocalDevice::key`], and the tenant and agent ids are
//! read out of that key rather than kept beside it.

use crate::protocol::DeviceHello;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The separator of a registry key's parts (ASCII's unit separator). The
/// ids are read out of a key by position, never by splitting at it.
const SEP: char = '\u{1f}';

/// The key of a device in the node's registry: `tenant␟agent␟device`.
pub fn device_key(tenant: &str, agent_id: &str, device_id: &str) -> String {
    format!("{tenant}{SEP}{agent_id}{SEP}{device_id}")
}

/// One agent device whose connection is on this node.
#[derive(Debug)]
pub struct LocalDevice {
    /// [`device_key`] of the device: the registry's key, shared with it.
    key: Arc<str>,
    /// Where the agent id is in `key`: the tenant id is what comes before
    /// it (and its separator).
    agent: Range<usize>,
    /// The device as its `hello` named it.
    pub hello: DeviceHello,
    /// Whether the device is active: set when it comes up, cleared when its
    /// TTL lapses; read by the node's sweep through the registry.
    active: AtomicBool,
}

impl LocalDevice {
    pub fn new(tenant: &str, agent_id: &str, hello: DeviceHello) -> Arc<Self> {
        let start = tenant.len() + SEP.len_utf8();
        Arc::new(LocalDevice {
            key: device_key(tenant, agent_id, &hello.id).into(),
            agent: start..start + agent_id.len(),
            hello,
            active: AtomicBool::new(false),
        })
    }

    pub fn key(&self) -> &Arc<str> {
        &self.key
    }

    pub fn tenant(&self) -> &str {
        &self.key[..self.agent.start - SEP.len_utf8()]
    }

    pub fn agent_id(&self) -> &str {
        &self.key[self.agent.clone()]
    }

    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    pub fn set_active(&self, active: bool) {
        self.active.store(active, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(id: &str) -> DeviceHello {
        DeviceHello {
            id: id.into(),
            kind: "softphone".into(),
            label: None,
        }
    }

    #[test]
    fn reads_its_ids_out_of_its_key() {
        let d = LocalDevice::new("acme-é", "agent/7", hello("phone 1"));
        assert_eq!(d.tenant(), "acme-é");
        assert_eq!(d.agent_id(), "agent/7");
        assert_eq!(&**d.key(), device_key("acme-é", "agent/7", "phone 1"));
        assert!(!d.is_active());
        d.set_active(true);
        assert!(d.is_active());
    }

    #[test]
    fn empty_ids_still_split() {
        let d = LocalDevice::new("", "", hello(""));
        assert_eq!((d.tenant(), d.agent_id()), ("", ""));
        assert_eq!(&**d.key(), "\u{1f}\u{1f}");
    }
}
