//! [`ChangeSet`]: what changed in the inputs since the announcements were last computed, so a
//! change to one Service recomputes that Service's announcements and not the whole cluster.

use std::collections::BTreeSet;

use super::input::ServiceKey;

/// What changed since the last computation: everything (the configuration, a Node, a new
/// source snapshot, Layer 2 liveness) or only the Services named (their object or one of
/// their EndpointSlices was added, changed or removed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeSet {
    /// Recompute everything; `services` is then irrelevant.
    pub all: bool,
    /// Services whose object or EndpointSlices changed.
    pub services: BTreeSet<ServiceKey>,
}

impl ChangeSet {
    /// Everything changed.
    pub fn all() -> Self {
        Self {
            all: true,
            services: BTreeSet::new(),
        }
    }

    /// Only `key` changed.
    pub fn service(key: ServiceKey) -> Self {
        Self {
            all: false,
            services: BTreeSet::from([key]),
        }
    }

    /// Nothing changed.
    pub fn is_empty(&self) -> bool {
        !self.all && self.services.is_empty()
    }

    /// Folds `other` in: the union of both.
    pub fn merge(&mut self, other: ChangeSet) {
        if self.all || other.all {
            *self = Self::all();
        } else {
            self.services.extend(other.services);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_with_all_gives_all_and_services_otherwise_unite() {
        let mut c = ChangeSet::service(ServiceKey::new("ns", "a"));
        c.merge(ChangeSet::service(ServiceKey::new("ns", "b")));
        assert_eq!(c.services.len(), 2);
        assert!(!c.all);
        c.merge(ChangeSet::all());
        assert!(c.all && c.services.is_empty());
        assert!(ChangeSet::default().is_empty());
        assert!(!ChangeSet::all().is_empty());
    }
}
