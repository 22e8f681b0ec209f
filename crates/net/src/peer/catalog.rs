//! The peer catalog: the latest announcement of every node, each expiring when it is not
//! refreshed in time. Shared (a cheap clone) by the peer sessions that fill it, the API that
//! lists it and the subscribers it pushes to.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, PoisonError, Weak},
    time::Duration,
};

use mempulse_primitives::{NodeId, ValidatorId};
use tokio::{sync::watch, time::Instant};

use super::{metrics::PeerMetrics, types::Announcement};

/// How long an announcement stays without a refresh, by default (four heartbeats of a 500 ms
/// slot).
pub const CATALOG_EXPIRY_DEFAULT: Duration = Duration::from_secs(1);

/// Most nodes a catalog holds by default; announcements of further nodes are refused (`full`).
pub const CATALOG_NODES_MAX_DEFAULT: usize = 1024;

/// Settings of a [`Catalog`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogConfig {
    /// How long an announcement stays without a refresh.
    pub expiry: Duration,
    /// Most nodes held.
    pub nodes_max: usize,
    /// When set, only these nodes may announce, each as its listed validator (the validators
    /// file's `streams`).
    pub members: Option<BTreeMap<NodeId, ValidatorId>>,
}

impl Default for CatalogConfig {
    fn default() -> Self {
        Self { expiry: CATALOG_EXPIRY_DEFAULT, nodes_max: CATALOG_NODES_MAX_DEFAULT, members: None }
    }
}

/// What merging an announcement did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Merged {
    /// A node the catalog did not hold.
    Inserted,
    /// A newer version replaced the node's entry.
    Updated,
    /// The same version again: only the expiry moved.
    Refreshed,
}

/// Why an announcement was not merged (label values of the refused counter).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum AnnounceRefusal {
    /// It names another node than the session's authenticated peer.
    NotFromPeer,
    /// The node is not a member of the deployment.
    UnknownNode,
    /// The node announced another validator than the one it is listed under.
    WrongValidator,
    /// An older version than the one held, or the same version saying something else.
    Stale,
    /// The catalog holds its most nodes.
    Full,
}

impl AnnounceRefusal {
    /// Every refusal, in label order.
    pub const ALL: [Self; 5] =
        [Self::NotFromPeer, Self::UnknownNode, Self::WrongValidator, Self::Stale, Self::Full];

    /// Stable label value.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NotFromPeer => "not_from_peer",
            Self::UnknownNode => "unknown_node",
            Self::WrongValidator => "wrong_validator",
            Self::Stale => "stale",
            Self::Full => "full",
        }
    }

    pub(crate) const fn index(self) -> usize {
        match self {
            Self::NotFromPeer => 0,
            Self::UnknownNode => 1,
            Self::WrongValidator => 2,
            Self::Stale => 3,
            Self::Full => 4,
        }
    }
}

/// One catalog entry with its age (time since its last refresh).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogEntry {
    /// The latest announcement.
    pub announcement: Announcement,
    /// Time since it was last received.
    pub age: Duration,
}

#[derive(Debug)]
struct Held {
    announcement: Announcement,
    received: Instant,
}

#[derive(Debug)]
struct Inner {
    config: CatalogConfig,
    entries: Mutex<BTreeMap<NodeId, Held>>,
    changes: watch::Sender<u64>,
}

/// The latest announcement per node. Cheap to clone (shared); listed by ascending node id.
#[derive(Clone, Debug)]
pub struct Catalog {
    inner: Arc<Inner>,
}

impl Catalog {
    /// An empty catalog.
    #[must_use]
    pub fn new(config: CatalogConfig) -> Self {
        let (changes, _) = watch::channel(0);
        Self { inner: Arc::new(Inner { config, entries: Mutex::new(BTreeMap::new()), changes }) }
    }

    /// The settings.
    #[must_use]
    pub fn config(&self) -> &CatalogConfig {
        &self.inner.config
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, BTreeMap<NodeId, Held>> {
        self.inner.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn changed(&self, len: usize) {
        PeerMetrics::get().catalog_nodes.set(len as f64);
        self.inner.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Merges `announcement`, received at `now`: a newer version replaces the node's entry
    /// (subscribers are told), the same version refreshes its expiry.
    ///
    /// # Errors
    /// The [`AnnounceRefusal`] when the node is not a member (or not of that validator), the
    /// version is older than the one held (or equal with other content), or the catalog is full.
    pub fn merge(
        &self,
        announcement: Announcement,
        now: Instant,
    ) -> Result<Merged, AnnounceRefusal> {
        if let Some(members) = &self.inner.config.members {
            match members.get(&announcement.node) {
                None => return Err(AnnounceRefusal::UnknownNode),
                Some(v) if *v != announcement.validator => {
                    return Err(AnnounceRefusal::WrongValidator);
                }
                Some(_) => {}
            }
        }
        let (merged, len) = {
            let mut entries = self.entries();
            let full = entries.len() >= self.inner.config.nodes_max;
            let merged = match entries.get_mut(&announcement.node) {
                None if full => return Err(AnnounceRefusal::Full),
                None => {
                    entries.insert(announcement.node, Held { announcement, received: now });
                    Merged::Inserted
                }
                Some(held) if announcement.version > held.announcement.version => {
                    *held = Held { announcement, received: now };
                    Merged::Updated
                }
                Some(held)
                    if announcement.version == held.announcement.version
                        && announcement == held.announcement =>
                {
                    held.received = held.received.max(now);
                    Merged::Refreshed
                }
                Some(_) => return Err(AnnounceRefusal::Stale),
            };
            (merged, entries.len())
        };
        if merged != Merged::Refreshed {
            self.changed(len);
        }
        Ok(merged)
    }

    /// Drops the entries not refreshed within the expiry before `now`; returns how many.
    #[must_use = "the count of expired entries"]
    pub fn expire(&self, now: Instant) -> usize {
        let expiry = self.inner.config.expiry;
        let (dropped, len) = {
            let mut entries = self.entries();
            let before = entries.len();
            entries.retain(|_, held| now.saturating_duration_since(held.received) < expiry);
            (before - entries.len(), entries.len())
        };
        if dropped > 0 {
            self.changed(len);
        }
        dropped
    }

    /// Every announcement, ascending by node.
    #[must_use]
    pub fn snapshot(&self) -> Vec<Announcement> {
        self.entries().values().map(|held| held.announcement.clone()).collect()
    }

    /// Every entry with its age at `now`, ascending by node.
    #[must_use]
    pub fn entries_at(&self, now: Instant) -> Vec<CatalogEntry> {
        self.entries()
            .values()
            .map(|held| CatalogEntry {
                announcement: held.announcement.clone(),
                age: now.saturating_duration_since(held.received),
            })
            .collect()
    }

    /// The announcement of `node`, if held.
    #[must_use]
    pub fn get(&self, node: NodeId) -> Option<Announcement> {
        self.entries().get(&node).map(|held| held.announcement.clone())
    }

    /// Nodes held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries().len()
    }

    /// Whether no node is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A receiver whose value changes on every change of the catalog (an insert, a newer
    /// version, an expiry; not a refresh).
    #[must_use]
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }

    /// Expires entries every `period` until every other handle of this catalog is dropped.
    pub async fn run_expiry(self, period: Duration) {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        drop(self);
        let mut tick = tokio::time::interval(period.max(Duration::from_millis(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(inner) = weak.upgrade() else { return };
            let _ = Self { inner }.expire(Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use mempulse_primitives::Height;
    use mempulse_schedule::{Tag, Tags};

    use super::*;
    use crate::peer::PeerRole;

    fn announcement(node: u64, version: u64) -> Announcement {
        Announcement {
            node: NodeId(node),
            validator: ValidatorId(node.div_ceil(3)),
            stream_addr: format!("127.0.0.1:{}", 7500 + node),
            api_addr: String::new(),
            tags: Tags::EMPTY,
            role: PeerRole::Follower,
            height: Height(1),
            version,
        }
    }

    #[test]
    fn newer_versions_replace_older_ones_and_refreshes_do_not_notify() {
        let catalog = Catalog::new(CatalogConfig::default());
        let mut changes = catalog.subscribe();
        let t0 = Instant::now();
        assert_eq!(catalog.merge(announcement(2, 5), t0), Ok(Merged::Inserted));
        assert_eq!(catalog.merge(announcement(1, 1), t0), Ok(Merged::Inserted));
        assert!(changes.has_changed().unwrap());
        changes.mark_unchanged();
        assert_eq!(catalog.merge(announcement(2, 5), t0), Ok(Merged::Refreshed));
        assert!(!changes.has_changed().unwrap(), "a refresh is no change");
        assert_eq!(catalog.merge(announcement(2, 4), t0), Err(AnnounceRefusal::Stale));
        let other = Announcement { tags: Tags::one(Tag::Proposer), ..announcement(2, 5) };
        assert_eq!(catalog.merge(other.clone(), t0), Err(AnnounceRefusal::Stale));
        let newer = Announcement { version: 6, ..other };
        assert_eq!(catalog.merge(newer.clone(), t0), Ok(Merged::Updated));
        assert!(changes.has_changed().unwrap());
        let nodes: Vec<u64> = catalog.snapshot().iter().map(|a| a.node.0).collect();
        assert_eq!(nodes, [1, 2], "ascending by node");
        assert_eq!(catalog.get(NodeId(2)), Some(newer));
    }

    #[test]
    fn entries_expire_unless_refreshed() {
        let config = CatalogConfig { expiry: Duration::from_secs(2), ..CatalogConfig::default() };
        let catalog = Catalog::new(config);
        let t0 = Instant::now();
        catalog.merge(announcement(1, 1), t0).unwrap();
        catalog.merge(announcement(2, 1), t0).unwrap();
        catalog.merge(announcement(2, 1), t0 + Duration::from_secs(1)).unwrap();
        let ages: Vec<Duration> =
            catalog.entries_at(t0 + Duration::from_millis(1500)).iter().map(|e| e.age).collect();
        assert_eq!(ages, [Duration::from_millis(1500), Duration::from_millis(500)]);
        let mut changes = catalog.subscribe();
        changes.mark_unchanged();
        assert_eq!(catalog.expire(t0 + Duration::from_millis(1999)), 0);
        assert!(!changes.has_changed().unwrap());
        assert_eq!(catalog.expire(t0 + Duration::from_secs(2)), 1);
        assert!(changes.has_changed().unwrap());
        assert_eq!(catalog.snapshot(), [announcement(2, 1)]);
        assert_eq!(catalog.expire(t0 + Duration::from_secs(3)), 1);
        assert!(catalog.is_empty());
        // An expired node comes back with any version.
        assert_eq!(catalog.merge(announcement(1, 1), t0), Ok(Merged::Inserted));
    }

    #[test]
    fn members_and_capacity_bound_what_is_held() {
        let members = BTreeMap::from([(NodeId(1), ValidatorId(1)), (NodeId(4), ValidatorId(2))]);
        let config =
            CatalogConfig { nodes_max: 1, members: Some(members), ..CatalogConfig::default() };
        let catalog = Catalog::new(config);
        let t0 = Instant::now();
        assert_eq!(catalog.merge(announcement(2, 1), t0), Err(AnnounceRefusal::UnknownNode));
        let liar = Announcement { validator: ValidatorId(1), ..announcement(4, 1) };
        assert_eq!(catalog.merge(liar, t0), Err(AnnounceRefusal::WrongValidator));
        assert_eq!(catalog.merge(announcement(1, 1), t0), Ok(Merged::Inserted));
        assert_eq!(catalog.merge(announcement(4, 1), t0), Err(AnnounceRefusal::Full));
        assert_eq!(catalog.merge(announcement(1, 2), t0), Ok(Merged::Updated), "held nodes update");
        let labels: Vec<usize> = AnnounceRefusal::ALL.iter().map(|r| r.index()).collect();
        assert_eq!(labels, [0, 1, 2, 3, 4]);
    }

    #[tokio::test]
    async fn the_expiry_task_ends_with_the_last_handle() {
        let config =
            CatalogConfig { expiry: Duration::from_millis(20), ..CatalogConfig::default() };
        let catalog = Catalog::new(config);
        let mut changes = catalog.subscribe();
        catalog.merge(announcement(1, 1), Instant::now()).unwrap();
        changes.mark_unchanged();
        let task = tokio::spawn(catalog.clone().run_expiry(Duration::from_millis(5)));
        tokio::time::timeout(Duration::from_secs(10), changes.changed()).await.unwrap().unwrap();
        assert!(catalog.is_empty(), "expired by the task");
        drop(catalog);
        tokio::time::timeout(Duration::from_secs(10), task).await.unwrap().unwrap();
    }
}
