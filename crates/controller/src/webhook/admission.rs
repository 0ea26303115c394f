//! The admission decision, pure: the objects in force plus one `AdmissionRequest` in, one
//! `AdmissionResponse` out. No client, no clock.
//!
//! As MetalLB's webhooks do, a request is judged together with every other object: the
//! candidate replaces the object of the same kind, namespace and name in the current set (or
//! joins it; a DELETE removes it), and the whole set goes through
//! [`ferrolb_api::validate::validate`], the same validation the daemons apply. So an
//! IPAddressPool overlapping an existing pool, an advertisement naming a pool that does not
//! exist, or deleting a BFDProfile a BGPPeer still uses are all denied, with the validation's
//! own message (which names the CIDR and both objects).
//!
//! One difference from MetalLB: only errors the request *introduces* deny it. An error the
//! current set already has (two objects that reached the API server before the webhook was
//! installed, or with the webhook down) is not held against an unrelated change, so a broken
//! configuration can be repaired one object at a time; it stays reported by the daemons
//! (Events, ConfigurationState).

use ferrolb_api::crd::{
    BFDProfile, BGPAdvertisement, BGPPeer, Community, IPAddressPool, L2Advertisement,
};
use ferrolb_api::error::ConfigError;
use ferrolb_api::source::Resources;
use ferrolb_api::validate::validate;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, Operation};
use kube::core::DynamicObject;
use kube::ResourceExt;
use serde::de::DeserializeOwned;

/// HTTP code of an allowed request in `status.code`.
pub const CODE_ALLOWED: u16 = 200;
/// HTTP code of a denied request in `status.code` (controller-runtime's `Denied`, as MetalLB).
pub const CODE_DENIED: u16 = 403;
/// HTTP code of a request that cannot be read (no object, unknown kind).
pub const CODE_BAD_REQUEST: u16 = 400;

/// The configuration kinds the webhook validates, with MetalLB's webhook paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `metallb.io/v1beta1` IPAddressPool.
    IpAddressPool,
    /// `metallb.io/v1beta2` BGPPeer.
    BgpPeer,
    /// `metallb.io/v1beta1` BGPAdvertisement.
    BgpAdvertisement,
    /// `metallb.io/v1beta1` L2Advertisement.
    L2Advertisement,
    /// `metallb.io/v1beta1` Community.
    Community,
    /// `metallb.io/v1beta1` BFDProfile.
    BfdProfile,
}

impl Kind {
    /// Every kind, in the order of the webhook configuration.
    pub const ALL: [Kind; 6] = [
        Kind::IpAddressPool,
        Kind::BgpPeer,
        Kind::BgpAdvertisement,
        Kind::L2Advertisement,
        Kind::Community,
        Kind::BfdProfile,
    ];

    /// The `kind` of the objects.
    pub fn kind(self) -> &'static str {
        match self {
            Kind::IpAddressPool => "IPAddressPool",
            Kind::BgpPeer => "BGPPeer",
            Kind::BgpAdvertisement => "BGPAdvertisement",
            Kind::L2Advertisement => "L2Advertisement",
            Kind::Community => "Community",
            Kind::BfdProfile => "BFDProfile",
        }
    }

    /// The API version the webhook is registered for.
    pub fn version(self) -> &'static str {
        match self {
            Kind::BgpPeer => "v1beta2",
            _ => "v1beta1",
        }
    }

    /// The resource (lower-case plural).
    pub fn plural(self) -> &'static str {
        match self {
            Kind::IpAddressPool => "ipaddresspools",
            Kind::BgpPeer => "bgppeers",
            Kind::BgpAdvertisement => "bgpadvertisements",
            Kind::L2Advertisement => "l2advertisements",
            Kind::Community => "communities",
            Kind::BfdProfile => "bfdprofiles",
        }
    }

    /// MetalLB's webhook path, e.g. `/validate-metallb-io-v1beta1-ipaddresspool`.
    pub fn path(self) -> String {
        format!(
            "/validate-metallb-io-{}-{}",
            self.version(),
            self.kind().to_ascii_lowercase()
        )
    }

    /// The webhook's name in the ValidatingWebhookConfiguration (MetalLB's names).
    pub fn webhook_name(self) -> String {
        format!(
            "{}validationwebhook.metallb.io",
            self.kind().to_ascii_lowercase()
        )
    }

    /// The kind served at `path`.
    pub fn from_path(path: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.path() == path)
    }

    /// The kind of `kind` in group `metallb.io`.
    pub fn from_kind(group: &str, kind: &str) -> Option<Kind> {
        if group != "metallb.io" {
            return None;
        }
        Kind::ALL.into_iter().find(|k| k.kind() == kind)
    }
}

/// The response to `req` given the objects in force: allowed, or denied with every new error
/// in `status.message`. `uid` is always the request's.
pub fn decide(existing: &Resources, req: &AdmissionRequest<DynamicObject>) -> AdmissionResponse {
    let response = AdmissionResponse::from(req);
    if let Some(message) = immutable_change(req) {
        return refuse(response, CODE_DENIED, message);
    }
    match candidate(existing, req) {
        Err(reason) => refuse(response, CODE_BAD_REQUEST, reason),
        Ok(candidate) => {
            let before = errors_of(existing);
            let new: Vec<ConfigError> = errors_of(&candidate)
                .into_iter()
                .filter(|e| !before.contains(e))
                .collect();
            if new.is_empty() {
                let mut response = response;
                response.result.code = CODE_ALLOWED;
                response
            } else {
                let message = new
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ");
                refuse(response, CODE_DENIED, message)
            }
        }
    }
}

/// MetalLB's CRD rule on BGPPeer `spec.enableGracefulRestart` (CEL `self == oldSelf`): "cannot
/// be changed after creation". Our CRDs carry no CEL rules, so the webhook enforces it; unset
/// counts as `false`.
fn immutable_change(req: &AdmissionRequest<DynamicObject>) -> Option<String> {
    if req.operation != Operation::Update || req.kind.kind != "BGPPeer" {
        return None;
    }
    let graceful = |o: &Option<DynamicObject>| {
        o.as_ref()
            .and_then(|o| o.data.pointer("/spec/enableGracefulRestart"))
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false)
    };
    let (old, new) = (graceful(&req.old_object), graceful(&req.object));
    (old != new).then(|| {
        format!(
            "BGPPeer {}: spec.enableGracefulRestart = {new}: EnableGracefulRestart cannot be \
             changed after creation (was {old})",
            req.name
        )
    })
}

fn refuse(response: AdmissionResponse, code: u16, message: String) -> AdmissionResponse {
    let mut response = response.deny(message);
    response.result.code = code;
    response.result.reason = if code == CODE_DENIED {
        "Forbidden".into()
    } else {
        "BadRequest".into()
    };
    response
}

fn errors_of(res: &Resources) -> Vec<ConfigError> {
    validate(res).err().unwrap_or_default()
}

/// The set the request would leave: `existing` with the object replaced, added or removed.
fn candidate(
    existing: &Resources,
    req: &AdmissionRequest<DynamicObject>,
) -> Result<Resources, String> {
    let Some(kind) = Kind::from_kind(&req.kind.group, &req.kind.kind) else {
        return Err(format!(
            "not a kind this webhook validates: {}/{} {}",
            req.kind.group, req.kind.version, req.kind.kind
        ));
    };
    let namespace = req.namespace.clone().unwrap_or_default();
    let object = match req.operation {
        Operation::Create | Operation::Update => match &req.object {
            Some(o) => Some(o),
            None => return Err(format!("{:?} request without an object", req.operation)),
        },
        Operation::Delete => None,
        // CONNECT is never registered for these kinds; nothing to judge.
        Operation::Connect => return Ok(existing.clone()),
    };
    // The name of a DELETE is in `name`; an object created with generateName has its final
    // name in the object only.
    let name = object
        .and_then(|o| o.metadata.name.clone())
        .unwrap_or_else(|| req.name.clone());
    let mut res = existing.clone();
    let same = |meta_ns: Option<String>, meta_name: String| {
        meta_ns.unwrap_or_default() == namespace && meta_name == name
    };
    macro_rules! swap {
        ($list:ident, $ty:ty) => {{
            res.$list.retain(|o| !same(o.namespace(), o.name_any()));
            if let Some(o) = object {
                let typed: $ty = typed(o, kind)?;
                res.$list.push(typed);
            }
        }};
    }
    match kind {
        Kind::IpAddressPool => swap!(ip_address_pools, IPAddressPool),
        Kind::BgpPeer => swap!(bgp_peers, BGPPeer),
        Kind::BgpAdvertisement => swap!(bgp_advertisements, BGPAdvertisement),
        Kind::L2Advertisement => swap!(l2_advertisements, L2Advertisement),
        Kind::Community => swap!(communities, Community),
        Kind::BfdProfile => swap!(bfd_profiles, BFDProfile),
    }
    Ok(res)
}

fn typed<T: DeserializeOwned>(object: &DynamicObject, kind: Kind) -> Result<T, String> {
    let value = serde_json::to_value(object).map_err(|e| e.to_string())?;
    serde_json::from_value(value).map_err(|e| format!("reading the {}: {e}", kind.kind()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::admission::AdmissionReview;
    use serde_json::{json, Value};

    fn pool(name: &str, cidr: &str) -> Value {
        json!({
            "apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
            "metadata": {"name": name, "namespace": "metallb-system"},
            "spec": {"addresses": [cidr]},
        })
    }

    fn existing(objects: &[Value]) -> Resources {
        let mut res = Resources::default();
        for o in objects {
            match o["kind"].as_str() {
                Some("IPAddressPool") => res
                    .ip_address_pools
                    .push(serde_json::from_value(o.clone()).expect("pool")),
                Some("L2Advertisement") => res
                    .l2_advertisements
                    .push(serde_json::from_value(o.clone()).expect("l2")),
                Some("BFDProfile") => res
                    .bfd_profiles
                    .push(serde_json::from_value(o.clone()).expect("bfd")),
                Some("BGPPeer") => res
                    .bgp_peers
                    .push(serde_json::from_value(o.clone()).expect("peer")),
                Some("Community") => res
                    .communities
                    .push(serde_json::from_value(o.clone()).expect("community")),
                Some("BGPAdvertisement") => res
                    .bgp_advertisements
                    .push(serde_json::from_value(o.clone()).expect("bgpadv")),
                other => panic!("fixture kind {other:?}"),
            }
        }
        res
    }

    /// An AdmissionReview as the API server sends it, decoded as the server shell decodes it.
    fn request(
        op: &str,
        object: Option<&Value>,
        old: Option<&Value>,
    ) -> AdmissionRequest<DynamicObject> {
        let any = object.or(old).expect("an object");
        let (group, version) = any["apiVersion"]
            .as_str()
            .and_then(|v| v.split_once('/'))
            .expect("apiVersion");
        let review = json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {
                "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
                "kind": {"group": group, "version": version, "kind": any["kind"]},
                "resource": {"group": group, "version": version, "resource": "x"},
                "name": any["metadata"]["name"],
                "namespace": any["metadata"]["namespace"],
                "operation": op,
                "userInfo": {"username": "admin"},
                "object": object,
                "oldObject": old,
                "dryRun": false,
            }
        });
        let review: AdmissionReview<DynamicObject> =
            serde_json::from_value(review).expect("review");
        review.try_into().expect("request")
    }

    fn assert_allowed(r: &AdmissionResponse) {
        assert!(r.allowed, "denied: {:?}", r.result);
        assert_eq!(r.result.code, CODE_ALLOWED);
        assert_eq!(r.uid, "705ab4f5-6393-11e8-b7cc-42010a800002");
    }

    fn assert_denied(r: &AdmissionResponse, needles: &[&str]) {
        assert!(!r.allowed, "allowed");
        assert_eq!(r.result.code, CODE_DENIED);
        assert_eq!(r.uid, "705ab4f5-6393-11e8-b7cc-42010a800002");
        for n in needles {
            assert!(
                r.result.message.contains(n),
                "{n:?} not in {:?}",
                r.result.message
            );
        }
    }

    #[test]
    fn paths_are_metallbs() {
        let paths: Vec<String> = Kind::ALL.iter().map(|k| k.path()).collect();
        assert_eq!(
            paths,
            [
                "/validate-metallb-io-v1beta1-ipaddresspool",
                "/validate-metallb-io-v1beta2-bgppeer",
                "/validate-metallb-io-v1beta1-bgpadvertisement",
                "/validate-metallb-io-v1beta1-l2advertisement",
                "/validate-metallb-io-v1beta1-community",
                "/validate-metallb-io-v1beta1-bfdprofile",
            ]
        );
        assert_eq!(
            Kind::from_path("/validate-metallb-io-v1beta2-bgppeer"),
            Some(Kind::BgpPeer)
        );
        assert_eq!(
            Kind::from_path("/validate-metallb-io-v1beta1-bgppeer"),
            None
        );
    }

    #[test]
    fn pool_create_without_conflict_is_allowed() {
        let res = existing(&[pool("a", "10.0.0.0/24")]);
        assert_allowed(&decide(
            &res,
            &request("CREATE", Some(&pool("b", "10.0.1.0/24")), None),
        ));
    }

    #[test]
    fn pool_create_overlapping_names_the_cidr_and_both_pools() {
        let res = existing(&[pool("first", "10.0.0.0/24")]);
        let r = decide(
            &res,
            &request("CREATE", Some(&pool("second", "10.0.0.128/25")), None),
        );
        assert_denied(&r, &["10.0.0.128/25", "first", "second"]);
    }

    #[test]
    fn pool_update_replaces_the_old_version_instead_of_overlapping_it() {
        let old = pool("a", "10.0.0.0/24");
        let res = existing(std::slice::from_ref(&old));
        let new = pool("a", "10.0.0.0/23");
        assert_allowed(&decide(&res, &request("UPDATE", Some(&new), Some(&old))));
    }

    #[test]
    fn pool_update_with_a_bad_address_is_denied() {
        let old = pool("a", "10.0.0.0/24");
        let res = existing(std::slice::from_ref(&old));
        let r = decide(
            &res,
            &request("UPDATE", Some(&pool("a", "10.0.0.300/24")), Some(&old)),
        );
        assert_denied(&r, &["10.0.0.300/24"]);
    }

    fn l2(name: &str, pools: &[&str]) -> Value {
        json!({
            "apiVersion": "metallb.io/v1beta1", "kind": "L2Advertisement",
            "metadata": {"name": name, "namespace": "metallb-system"},
            "spec": {"ipAddressPools": pools},
        })
    }

    #[test]
    fn pool_delete_is_allowed_even_while_referenced() {
        // As MetalLB: an advertisement naming a pool that does not exist (yet) is no error,
        // so objects may be applied and deleted in any order.
        let a = pool("a", "10.0.0.0/24");
        let res = existing(&[a.clone(), l2("adv", &["a"])]);
        assert_allowed(&decide(&res, &request("DELETE", None, Some(&a))));
        assert_allowed(&decide(
            &res,
            &request("CREATE", Some(&l2("x", &["later"])), None),
        ));
    }

    #[test]
    fn l2advertisement_with_a_bad_interface_is_denied() {
        let res = existing(&[pool("a", "10.0.0.0/24")]);
        let mut adv = l2("x", &["a"]);
        adv["spec"]["interfaces"] = json!(["not a valid/interface name"]);
        let r = decide(&res, &request("CREATE", Some(&adv), None));
        assert_denied(&r, &["not a valid/interface name"]);
    }

    #[test]
    fn community_delete_still_used_by_an_advertisement_is_denied() {
        let c = community("c", "65000:1");
        let mut adv = bgp_adv("adv", &["a"], 32);
        adv["spec"]["communities"] = json!(["alias"]);
        let res = existing(&[pool("a", "10.0.0.0/24"), c.clone(), adv]);
        let r = decide(&res, &request("DELETE", None, Some(&c)));
        assert_denied(&r, &["alias"]);
    }

    fn peer(name: &str, address: &str, bfd: Option<&str>) -> Value {
        let mut spec = json!({"myASN": 64512, "peerASN": 64513, "peerAddress": address});
        if let Some(b) = bfd {
            spec["bfdProfile"] = json!(b);
        }
        json!({
            "apiVersion": "metallb.io/v1beta2", "kind": "BGPPeer",
            "metadata": {"name": name, "namespace": "metallb-system"},
            "spec": spec,
        })
    }

    fn bfd(name: &str) -> Value {
        json!({
            "apiVersion": "metallb.io/v1beta1", "kind": "BFDProfile",
            "metadata": {"name": name, "namespace": "metallb-system"},
            "spec": {},
        })
    }

    #[test]
    fn enable_graceful_restart_cannot_change_after_creation() {
        let old = peer("p", "10.0.0.1", None);
        let mut new = old.clone();
        new["spec"]["enableGracefulRestart"] = json!(true);
        let res = existing(std::slice::from_ref(&old));
        let r = decide(&res, &request("UPDATE", Some(&new), Some(&old)));
        assert_denied(&r, &["spec.enableGracefulRestart", "cannot be changed"]);
        // Another field may change; the flag may be set at creation.
        let mut moved = old.clone();
        moved["spec"]["peerAddress"] = json!("10.0.0.2");
        assert_allowed(&decide(&res, &request("UPDATE", Some(&moved), Some(&old))));
        assert_allowed(&decide(
            &Resources::default(),
            &request("CREATE", Some(&new), None),
        ));
    }

    #[test]
    fn bgppeer_create_and_duplicate() {
        let res = existing(&[peer("p1", "192.0.2.1", None)]);
        assert_allowed(&decide(
            &res,
            &request("CREATE", Some(&peer("p2", "192.0.2.2", None)), None),
        ));
        let r = decide(
            &res,
            &request("CREATE", Some(&peer("p2", "192.0.2.1", None)), None),
        );
        assert_denied(&r, &["p1"]);
        let r = decide(
            &res,
            &request("CREATE", Some(&peer("p3", "not-an-ip", None)), None),
        );
        assert_denied(&r, &["not-an-ip"]);
    }

    #[test]
    fn bfdprofile_delete_in_use_is_denied_and_create_allowed() {
        let profile = bfd("fast");
        let res = existing(&[profile.clone(), peer("p1", "192.0.2.1", Some("fast"))]);
        let r = decide(&res, &request("DELETE", None, Some(&profile)));
        assert_denied(&r, &["fast"]);
        assert_allowed(&decide(&res, &request("CREATE", Some(&bfd("slow")), None)));
        assert_allowed(&decide(
            &res,
            &request("UPDATE", Some(&profile), Some(&profile)),
        ));
    }

    fn community(name: &str, value: &str) -> Value {
        json!({
            "apiVersion": "metallb.io/v1beta1", "kind": "Community",
            "metadata": {"name": name, "namespace": "metallb-system"},
            "spec": {"communities": [{"name": "alias", "value": value}]},
        })
    }

    #[test]
    fn community_with_a_bad_value_is_denied() {
        let res = Resources::default();
        assert_allowed(&decide(
            &res,
            &request("CREATE", Some(&community("c", "65000:1")), None),
        ));
        let r = decide(
            &res,
            &request("CREATE", Some(&community("c", "65000:x")), None),
        );
        assert_denied(&r, &["65000:x"]);
    }

    fn bgp_adv(name: &str, pools: &[&str], aggregation: u8) -> Value {
        json!({
            "apiVersion": "metallb.io/v1beta1", "kind": "BGPAdvertisement",
            "metadata": {"name": name, "namespace": "metallb-system"},
            "spec": {"ipAddressPools": pools, "aggregationLength": aggregation},
        })
    }

    #[test]
    fn bgpadvertisement_create_and_update() {
        let res = existing(&[pool("a", "10.0.0.0/24")]);
        let good = bgp_adv("adv", &["a"], 32);
        assert_allowed(&decide(&res, &request("CREATE", Some(&good), None)));
        let res = existing(&[pool("a", "10.0.0.0/24"), good.clone()]);
        // An aggregation length shorter than the pool's prefix is invalid (MetalLB rule).
        let r = decide(
            &res,
            &request("UPDATE", Some(&bgp_adv("adv", &["a"], 16)), Some(&good)),
        );
        assert_denied(&r, &["adv"]);
        assert_allowed(&decide(&res, &request("DELETE", None, Some(&good))));
    }

    #[test]
    fn an_error_already_present_does_not_block_an_unrelated_change() {
        // Two overlapping pools got in while the webhook was down.
        let res = existing(&[pool("a", "10.0.0.0/24"), pool("b", "10.0.0.0/24")]);
        assert_allowed(&decide(
            &res,
            &request("CREATE", Some(&pool("c", "10.9.0.0/24")), None),
        ));
        // Deleting one of them repairs the configuration.
        assert_allowed(&decide(
            &res,
            &request("DELETE", None, Some(&pool("b", "10.0.0.0/24"))),
        ));
    }

    #[test]
    fn unknown_kind_and_missing_object_are_bad_requests() {
        let res = Resources::default();
        let mut req = request("CREATE", Some(&pool("a", "10.0.0.0/24")), None);
        req.kind.kind = "Service".into();
        let r = decide(&res, &req);
        assert!(!r.allowed);
        assert_eq!(r.result.code, CODE_BAD_REQUEST);
        let mut req = request("CREATE", Some(&pool("a", "10.0.0.0/24")), None);
        req.object = None;
        assert_eq!(decide(&res, &req).result.code, CODE_BAD_REQUEST);
    }

    #[test]
    fn the_response_serializes_as_admission_v1() {
        let res = existing(&[pool("first", "10.0.0.0/24")]);
        let r = decide(
            &res,
            &request("CREATE", Some(&pool("second", "10.0.0.0/24")), None),
        );
        let v = serde_json::to_value(r.into_review()).expect("json");
        assert_eq!(v["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(v["kind"], "AdmissionReview");
        assert_eq!(v["response"]["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
        assert_eq!(v["response"]["allowed"], false);
        assert_eq!(v["response"]["status"]["code"], 403);
        assert!(v["response"]["status"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("first")));
    }
}
