//! Kubernetes label selectors (matchLabels + matchExpressions), implemented once and shared by
//! pool selection, node selection and service selection.
//!
//! Semantics follow `k8s.io/apimachinery/pkg/labels`: all requirements are ANDed; an empty
//! selector matches everything.

use std::collections::BTreeMap;

/// Label set of an object (`metadata.labels`).
pub type Labels = BTreeMap<String, String>;

/// Operator of one `matchExpressions` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SelectorOp {
    /// The label's value is one of `values`.
    In,
    /// The label is absent or its value is none of `values`.
    NotIn,
    /// The label is present.
    Exists,
    /// The label is absent.
    DoesNotExist,
}

/// One `matchExpressions` entry, already checked for well-formedness: `In`/`NotIn` carry at
/// least one value, `Exists`/`DoesNotExist` carry none.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Requirement {
    /// Label key.
    pub key: String,
    /// Operator.
    pub op: SelectorOp,
    /// Values (sorted when built by validation).
    pub values: Vec<String>,
}

/// A validated label selector.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LabelSelector {
    /// Labels that must be present with exactly these values.
    pub match_labels: BTreeMap<String, String>,
    /// Requirements that must all hold.
    pub match_expressions: Vec<Requirement>,
}

impl LabelSelector {
    /// The selector that matches every object.
    pub fn everything() -> Self {
        Self::default()
    }

    /// True when this selector has no requirement (and so matches everything).
    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.match_expressions.is_empty()
    }

    /// Whether `labels` satisfies every requirement of this selector.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|r| r.matches(labels))
    }
}

impl Requirement {
    /// Whether `labels` satisfies this requirement.
    pub fn matches(&self, labels: &Labels) -> bool {
        match self.op {
            SelectorOp::In => labels
                .get(&self.key)
                .is_some_and(|v| self.values.contains(v)),
            // As in apimachinery: NotIn matches objects that lack the key entirely.
            SelectorOp::NotIn => labels
                .get(&self.key)
                .is_none_or(|v| !self.values.contains(v)),
            SelectorOp::Exists => labels.contains_key(&self.key),
            SelectorOp::DoesNotExist => !labels.contains_key(&self.key),
        }
    }
}

/// True when `selectors` is empty or any of them matches: the rule MetalLB applies to lists of
/// selectors such as `nodeSelectors` and `ipAddressPoolSelectors` (OR across list entries).
pub fn any_matches(selectors: &[LabelSelector], labels: &Labels) -> bool {
    selectors.is_empty() || selectors.iter().any(|s| s.matches(labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn req(key: &str, op: SelectorOp, values: &[&str]) -> Requirement {
        Requirement {
            key: key.into(),
            op,
            values: values.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn empty_selector_matches_everything() {
        assert!(LabelSelector::everything().matches(&labels(&[])));
        assert!(LabelSelector::everything().matches(&labels(&[("a", "b")])));
    }

    #[test]
    fn match_labels_requires_equal_values() {
        let s = LabelSelector {
            match_labels: labels(&[("zone", "a")]),
            ..Default::default()
        };
        assert!(s.matches(&labels(&[("zone", "a"), ("x", "y")])));
        assert!(!s.matches(&labels(&[("zone", "b")])));
        assert!(!s.matches(&labels(&[])));
    }

    #[test]
    fn expressions() {
        let l = labels(&[("zone", "a")]);
        assert!(req("zone", SelectorOp::In, &["a", "b"]).matches(&l));
        assert!(!req("zone", SelectorOp::In, &["b"]).matches(&l));
        assert!(!req("zone", SelectorOp::NotIn, &["a"]).matches(&l));
        assert!(req("zone", SelectorOp::NotIn, &["b"]).matches(&l));
        assert!(req("rack", SelectorOp::NotIn, &["b"]).matches(&l));
        assert!(req("zone", SelectorOp::Exists, &[]).matches(&l));
        assert!(!req("rack", SelectorOp::Exists, &[]).matches(&l));
        assert!(req("rack", SelectorOp::DoesNotExist, &[]).matches(&l));
        assert!(!req("zone", SelectorOp::DoesNotExist, &[]).matches(&l));
    }

    #[test]
    fn requirements_are_anded_and_lists_ored() {
        let s = LabelSelector {
            match_labels: labels(&[("zone", "a")]),
            match_expressions: vec![req("rack", SelectorOp::Exists, &[])],
        };
        assert!(!s.matches(&labels(&[("zone", "a")])));
        assert!(s.matches(&labels(&[("zone", "a"), ("rack", "1")])));
        let other = LabelSelector {
            match_labels: labels(&[("zone", "b")]),
            ..Default::default()
        };
        assert!(any_matches(
            &[s.clone(), other.clone()],
            &labels(&[("zone", "b")])
        ));
        assert!(!any_matches(&[s, other], &labels(&[("zone", "c")])));
        assert!(any_matches(&[], &labels(&[("zone", "c")])));
    }
}
