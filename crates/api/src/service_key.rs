//! [`ServiceKey`]: the one name of a Service that both daemons, the allocator and the speaker's
//! announcement computation key their maps by.

use std::fmt;

/// Names are [`SmolStr`]s: up to 23 bytes (nearly every Kubernetes name) inline without a heap
/// allocation, longer ones shared on clone; a speaker keeps one key per Service in several maps.
pub use smol_str::SmolStr;

/// `namespace/name` of a Service; orders by namespace, then name (the `allocate` output order
/// and the order of every per-Service report).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ServiceKey {
    /// `metadata.namespace` (`default` when a manifest leaves it out).
    pub namespace: SmolStr,
    /// `metadata.name`.
    pub name: SmolStr,
}

impl ServiceKey {
    /// Builds a key from its two parts.
    pub fn new(namespace: impl Into<SmolStr>, name: impl Into<SmolStr>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::ServiceKey;

    #[test]
    fn orders_by_namespace_then_name_and_prints_with_a_slash() {
        let mut keys = [
            ServiceKey::new("b", "a"),
            ServiceKey::new("a", "z"),
            ServiceKey::new("a", "b"),
        ];
        keys.sort();
        let shown: Vec<String> = keys.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["a/b", "a/z", "b/a"]);
    }
}
