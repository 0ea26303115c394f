//! Fields FerroLB accepts (and validates) but does not act on, so the daemons can say so in
//! their logs: an operator migrating from MetalLB must see what has no effect here rather than
//! find out in production. `docs/configuration.md` marks the same fields **ignored**; keep the
//! two lists equal.
//!
//! Pure: [`ignored_fields`] reads the raw objects, because some of these fields (an
//! L2Advertisement's `preferredNodeSelectors`) never reach the validated [`crate::model::Config`].
//! [`IgnoredFieldsReport`] decides when to repeat the list, so a daemon warns once per
//! configuration change rather than on every identical snapshot.

use std::fmt;

use kube::api::ObjectMeta;

use crate::source::Resources;
use crate::state::Applied;

/// One field that is set in a configuration object and has no effect in FerroLB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoredField {
    /// Object kind, e.g. `BGPPeer`.
    pub kind: &'static str,
    /// `metadata.namespace` (empty when unset).
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// Field path inside the object, e.g. `spec.bfdProfile`.
    pub path: &'static str,
    /// What FerroLB does instead.
    pub reason: &'static str,
}

impl IgnoredField {
    fn new(
        kind: &'static str,
        meta: &ObjectMeta,
        path: &'static str,
        reason: &'static str,
    ) -> Self {
        Self {
            kind,
            namespace: meta.namespace.clone().unwrap_or_default(),
            name: meta.name.clone().unwrap_or_default(),
            path,
            reason,
        }
    }
}

/// One line: `BGPPeer metallb-system/peer: spec.vrf is ignored: <reason>`.
impl fmt::Display for IgnoredField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{} {}", self.kind, self.name)?;
        } else {
            write!(f, "{} {}/{}", self.kind, self.namespace, self.name)?;
        }
        write!(f, ": {} is ignored: {}", self.path, self.reason)
    }
}

const NO_BFD_ECHO: &str = "the BFD Echo function (RFC 5880 §6.4) is not implemented; the \
     session runs on Control packets alone, at the profile's receive and transmit intervals";
const NO_BFD_UNNUMBERED: &str = "BFD on an unnumbered session (spec.interface without \
     spec.peerAddress) is not implemented; the BGP session runs without BFD";
const LOCAL_PREF_EBGP: &str = "LOCAL_PREF is sent to iBGP peers only (RFC 4271 §5.1.5) and every \
     peer of this advertisement is eBGP";
const NO_PREFERRED: &str =
    "the Layer 2 election does not use node preferences; any selected node may answer";

/// Every set field of `res`'s configuration objects that FerroLB accepts but ignores, in a
/// stable order (by kind, then object order, then field). An empty string counts as unset,
/// as in MetalLB (`vrf: ""` is the default VRF).
pub fn ignored_fields(res: &Resources) -> Vec<IgnoredField> {
    let mut out = Vec::new();
    for peer in &res.bgp_peers {
        let spec = &peer.spec;
        let unnumbered = is_set(&spec.interface) && !is_set(&spec.peer_address);
        if unnumbered && is_set(&spec.bfd_profile) {
            out.push(IgnoredField::new(
                "BGPPeer",
                &peer.metadata,
                "spec.bfdProfile",
                NO_BFD_UNNUMBERED,
            ));
        }
    }
    for adv in &res.bgp_advertisements {
        if adv.spec.local_pref.is_some() && only_ebgp_peers(res, &adv.spec.peers) {
            out.push(IgnoredField::new(
                "BGPAdvertisement",
                &adv.metadata,
                "spec.localPref",
                LOCAL_PREF_EBGP,
            ));
        }
    }
    for adv in &res.l2_advertisements {
        if !adv.spec.preferred_node_selectors.is_empty() {
            out.push(IgnoredField::new(
                "L2Advertisement",
                &adv.metadata,
                "spec.preferredNodeSelectors",
                NO_PREFERRED,
            ));
        }
    }
    // BFD runs (the speaker couples it to BGP); only Echo is not implemented. echoMode false
    // asks for nothing we lack, so only `true` is reported.
    for profile in &res.bfd_profiles {
        if profile.spec.echo_mode == Some(true) {
            out.push(IgnoredField::new(
                "BFDProfile",
                &profile.metadata,
                "spec.echoMode",
                NO_BFD_ECHO,
            ));
        }
        if profile.spec.echo_interval.is_some() {
            out.push(IgnoredField::new(
                "BFDProfile",
                &profile.metadata,
                "spec.echoInterval",
                NO_BFD_ECHO,
            ));
        }
    }
    out
}

/// Whether the BGPPeers an advertisement applies to (those named, or all when none is named)
/// exist and are all eBGP: myASN differs from a fixed peerASN, or dynamicASN is `external`.
fn only_ebgp_peers(res: &Resources, named: &[String]) -> bool {
    let mut applying = res
        .bgp_peers
        .iter()
        .filter(|p| named.is_empty() || named.iter().any(|n| p.metadata.name.as_ref() == Some(n)))
        .peekable();
    applying.peek().is_some()
        && applying.all(|p| {
            let s = &p.spec;
            match (s.peer_asn.filter(|a| *a != 0), s.dynamic_asn.as_deref()) {
                (Some(asn), _) => asn != s.local_asn.unwrap_or(s.my_asn),
                (None, Some(mode)) => mode == "external",
                (None, None) => false,
            }
        })
}

fn is_set(value: &Option<String>) -> bool {
    value.as_deref().is_some_and(|v| !v.is_empty())
}

/// Remembers the ignored fields last reported, so that a daemon warns once per configuration
/// change and not on every identical snapshot.
#[derive(Debug, Clone, Default)]
pub struct IgnoredFieldsReport {
    last: Option<Vec<IgnoredField>>,
}

impl IgnoredFieldsReport {
    /// Nothing reported yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The fields to warn about after `res` was validated with outcome `applied`: all of
    /// `res`'s ignored fields when a new configuration was put in force or when they differ
    /// from the last ones reported; nothing otherwise. A rejected configuration is not in
    /// force, so its fields are not reported (its errors are).
    pub fn to_report(&mut self, applied: Applied, res: &Resources) -> Vec<IgnoredField> {
        if applied == Applied::Rejected {
            return Vec::new();
        }
        let now = ignored_fields(res);
        let repeat = applied == Applied::Changed || self.last.as_ref() != Some(&now);
        self.last = Some(now.clone());
        if repeat {
            now
        } else {
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::source::files::load_str;

    fn load(yaml: &str) -> Resources {
        load_str(yaml, Path::new("test.yaml")).expect("test YAML loads")
    }

    fn paths(res: &Resources) -> Vec<String> {
        ignored_fields(res)
            .iter()
            .map(|f| format!("{} {}: {}", f.kind, f.name, f.path))
            .collect()
    }

    const PEER: &str = "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata:\n  name: p\n  \
        namespace: metallb-system\nspec:\n  myASN: 64512\n  peerASN: 64513\n  peerAddress: 10.1.0.1\n";
    const BFD: &str = "---\napiVersion: metallb.io/v1beta1\nkind: BFDProfile\nmetadata:\n  \
        name: b\n  namespace: metallb-system\nspec:\n  receiveInterval: 380\n";
    const L2: &str = "---\napiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata:\n  \
        name: l2\n  namespace: metallb-system\nspec:\n  ipAddressPools: [a]\n";

    #[test]
    fn honoured_peer_fields_are_not_reported() {
        // connectTime (ConnectRetry), vrf (SO_BINDTODEVICE), localASN (FRR local-as) and
        // interface (unnumbered BGP) act.
        for line in ["  connectTime: 5s\n", "  vrf: red\n", "  localASN: 65100\n"] {
            assert!(
                paths(&load(&format!("{PEER}{line}"))).is_empty(),
                "{line:?}"
            );
        }
        let unnumbered = PEER.replace("  peerAddress: 10.1.0.1\n", "  interface: eth0\n");
        assert!(paths(&load(&unnumbered)).is_empty());
    }

    #[test]
    fn bfd_profile_is_honoured_and_only_its_echo_fields_are_reported() {
        let got = paths(&load(&format!("{PEER}  bfdProfile: b\n{BFD}")));
        assert!(got.is_empty(), "{got:?}");
        let echo = format!("{PEER}  bfdProfile: b\n{BFD}  echoMode: true\n  echoInterval: 60\n");
        assert_eq!(
            paths(&load(&echo)),
            vec![
                "BFDProfile b: spec.echoMode",
                "BFDProfile b: spec.echoInterval"
            ]
        );
        let off = format!("{PEER}  bfdProfile: b\n{BFD}  echoMode: false\n");
        assert!(paths(&load(&off)).is_empty());
    }

    #[test]
    fn preferred_node_selectors_are_reported() {
        let yaml = format!(
            "{L2}  preferredNodeSelectors:\n  - weight: 10\n    preference:\n      \
             matchLabels: {{zone: a}}\n"
        );
        assert_eq!(
            paths(&load(&yaml)),
            vec!["L2Advertisement l2: spec.preferredNodeSelectors"]
        );
    }

    #[test]
    fn bfd_on_an_unnumbered_peer_is_reported() {
        let unnumbered = "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata:\n  name: u\n  \
            namespace: metallb-system\nspec:\n  myASN: 64512\n  peerASN: 64513\n  interface: eth0\n  \
            bfdProfile: b\n";
        let got = paths(&load(&format!("{unnumbered}{BFD}")));
        assert_eq!(got, vec!["BGPPeer u: spec.bfdProfile"]);
        // With an address, BFD runs.
        assert!(paths(&load(&format!(
            "{PEER}  interface: eth0\n  bfdProfile: b\n{BFD}"
        )))
        .is_empty());
    }

    #[test]
    fn empty_vrf_and_empty_lists_are_not_reported() {
        let yaml =
            format!("{PEER}  vrf: \"\"\n  bfdProfile: \"\"\n{L2}  preferredNodeSelectors: []\n");
        assert!(paths(&load(&yaml)).is_empty());
    }

    #[test]
    fn display_is_one_line_naming_object_field_and_reason() {
        let yaml = format!(
            "{L2}  preferredNodeSelectors:\n  - weight: 10\n    preference:\n      \
             matchLabels: {{zone: a}}\n"
        );
        let got = ignored_fields(&load(&yaml));
        assert_eq!(got.len(), 1);
        let line = got[0].to_string();
        assert_eq!(
            line,
            format!(
                "L2Advertisement metallb-system/l2: spec.preferredNodeSelectors is ignored: \
                 {NO_PREFERRED}"
            )
        );
        assert!(!line.contains('\n'));
    }

    #[test]
    fn report_repeats_on_change_only() {
        let with = load(&format!(
            "{L2}  preferredNodeSelectors:\n  - weight: 10\n    preference:\n      \
             matchLabels: {{zone: a}}\n"
        ));
        let without = load(L2);
        let mut r = IgnoredFieldsReport::new();
        assert_eq!(r.to_report(Applied::Changed, &with).len(), 1);
        // The same snapshot again: said already.
        assert!(r.to_report(Applied::Unchanged, &with).is_empty());
        // A rejected snapshot is not in force: nothing, and the memory is kept.
        assert!(r.to_report(Applied::Rejected, &without).is_empty());
        assert!(r.to_report(Applied::Unchanged, &with).is_empty());
        // Any other change in force: said again, so the newest config's log names them.
        assert_eq!(r.to_report(Applied::Changed, &with).len(), 1);
        // A change the model does not see (Unchanged) that alters the ignored set is reported.
        assert!(r.to_report(Applied::Unchanged, &without).is_empty());
        assert_eq!(r.to_report(Applied::Unchanged, &with).len(), 1);
    }

    /// MetalLB's own samples: those without the fields report nothing, those with them
    /// report exactly them.
    #[test]
    fn metallb_samples_report_exactly_their_ignored_fields() {
        let dir =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/metallb/configsamples");
        if !dir.is_dir() {
            eprintln!(
                "SKIPPED metallb_samples_report_exactly_their_ignored_fields: {} not found",
                dir.display()
            );
            return;
        }
        let cases: [(&str, &[&str]); 8] = [
            ("simple_pool_adv_bgp.yaml", &[]),
            ("simple_pool_adv_l2.yaml", &[]),
            ("bgppeer_simple.yaml", &[]),
            ("l2adv_with_node_selector.yaml", &[]),
            ("bgpadvertisement_communities_localpref.yaml", &[]),
            ("bgppeer_with_bfdprofile.yaml", &[]),
            ("bgppeer_with_vrf.yaml", &[]),
            ("bgppeer_with_session_options.yaml", &[]),
        ];
        for (file, want) in cases {
            let path = dir.join(file);
            let yaml = std::fs::read_to_string(&path).expect("sample is readable");
            let res = load_str(&yaml, &path).expect("sample loads");
            assert_eq!(paths(&res), want, "{file}");
        }
    }
}
