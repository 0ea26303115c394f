//! The UPDATE packer: desired routes in, the fewest UPDATE messages out.
//!
//! Pure: no I/O, no clock. A packer serves one session pass: given the prefixes to announce
//! (each with its [`Route`]) and the prefixes to withdraw, [`Packer::pack`] builds the wire
//! [`PathAttributes`] once per distinct route for this session (ORIGIN IGP; AS_PATH empty
//! towards iBGP, our AS towards eBGP, RFC 4271 §5.1.2; NEXT_HOP or the MP_REACH_NLRI next hop
//! of the prefix's family; LOCAL_PREF towards iBGP only, RFC 4271 §5.1.5), groups prefixes
//! whose attributes are equal and fills each UPDATE up to the size limit (4096, or 65535 after
//! Extended Message, RFC 8654):
//!
//! - IPv4 unicast prefixes go in the NLRI and Withdrawn Routes fields (RFC 4271 §4.3);
//! - IPv6 unicast prefixes go in MP_REACH_NLRI / MP_UNREACH_NLRI (RFC 4760 §3-4), with the
//!   group's `mp_next_hop`;
//! - withdrawals first fill the spare room of the announcement UPDATEs, then withdraw-only
//!   UPDATEs;
//! - towards a 2-octet-AS peer, AS_PATH/AGGREGATOR get AS_TRANS and AS4_PATH/AS4_AGGREGATOR
//!   (RFC 6793 §4.2.2).
//!
//! Sizes are computed with the same functions the encoder uses ([`attribute_len`],
//! [`prefix_encoded_len`], [`PathAttributes::encoded_len`]), so every UPDATE produced encodes
//! within the limit. A /32 costs 5 octets: about 800 fit a 4096-octet UPDATE with typical
//! attributes.
//!
//! *Guarantees*: every announced and withdrawn prefix appears exactly once across the output;
//! no UPDATE exceeds the limit. *Caveats*: a prefix both announced and withdrawn is only
//! announced; each UPDATE carries one attribute group, IPv4 and IPv6 prefixes of a group share
//! an UPDATE where they fit (NLRI plus MP_REACH_NLRI, with NEXT_HOP present for the IPv4 part).

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;

use crate::rib::{Route, Routes, SessionView};
use crate::wire::attribute::attribute_len;
use crate::wire::nlri::prefix_encoded_len;
use crate::wire::{
    AsPath, EncodeCtx, EncodingError, Families, Family, MpNextHop, MpReach, MpUnreach, Origin,
    PathAttributes, Update, HEADER_LEN,
};

/// What one route puts on the wire for one family on this session: the path attributes
/// (with NEXT_HOP for IPv4) and, for IPv6, the MP_REACH_NLRI next hop. Private: the route
/// type callers see is [`Route`].
#[derive(Debug, PartialEq, Eq, Hash)]
struct WireRoute {
    attrs: PathAttributes,
    mp_next_hop: Option<MpNextHop>,
    /// The MP_REACH_NLRI family of the route's prefixes: IPv6 unicast, or IPv4 unicast with
    /// an IPv6 next hop (RFC 8950 §4). Part of the group key, so the two never share an
    /// MP_REACH_NLRI.
    mp_family: Option<Family>,
}

/// A route's wire form, or why it cannot be sent.
type Wired = Result<Arc<WireRoute>, EncodingError>;

/// Packs routes into UPDATE messages for one session.
#[derive(Debug, Clone)]
pub struct Packer {
    ctx: EncodeCtx,
    session: SessionView,
    max_len: usize,
    /// The wire form of each route (by allocation) and family seen in this pass, built once:
    /// 100k prefixes sharing a few `Arc<Route>`s build a few attribute sets. Keyed by the
    /// `Arc`'s address (hashing a route with hundreds of communities per prefix costs more than
    /// building it); the value holds the `Arc` so the address stays taken. `Err` keeps a
    /// refusal for the route's next prefix.
    wire: HashMap<(usize, bool), (Arc<Route>, Wired)>,
}

/// Fixed part of MP_REACH_NLRI's value: AFI, SAFI, next hop length, reserved.
const MP_REACH_FIXED: usize = 3 + 1 + 1;
/// Fixed part of MP_UNREACH_NLRI's value: AFI, SAFI.
const MP_UNREACH_FIXED: usize = 3;

/// Encoded UPDATE size from the size without MP attributes and their value lengths.
fn size_with(base: usize, mp_reach: Option<usize>, mp_unreach: Option<usize>) -> usize {
    base + mp_reach.map_or(0, |v| attribute_len(v, false))
        + mp_unreach.map_or(0, |v| attribute_len(v, false))
}

/// An UPDATE being filled, with its encoded size kept up to date.
struct Draft {
    update: Update,
    /// Size of everything but the MP attributes.
    base: usize,
    /// MP_REACH_NLRI value length, when present.
    mp_reach: Option<usize>,
    /// MP_UNREACH_NLRI value length, when present.
    mp_unreach: Option<usize>,
}

impl Draft {
    fn new(update: Update, ctx: &EncodeCtx) -> Self {
        let base = HEADER_LEN + 2 + 2 + update.attrs.encoded_len(ctx);
        let mp_reach = update.mp_reach.as_ref().map(|m| m.value_len());
        Draft {
            update,
            base,
            mp_reach,
            mp_unreach: None,
        }
    }

    fn len(&self) -> usize {
        size_with(self.base, self.mp_reach, self.mp_unreach)
    }

    /// Adds an IPv4 prefix to NLRI (`withdraw` false) or Withdrawn Routes, if it fits.
    fn try_v4(&mut self, net: ipnet::Ipv4Net, withdraw: bool, max: usize) -> bool {
        let base = self.base + prefix_encoded_len(net.prefix_len());
        if size_with(base, self.mp_reach, self.mp_unreach) > max {
            return false;
        }
        self.base = base;
        if withdraw {
            self.update.withdrawn.push(net);
        } else {
            self.update.nlri.push(net);
        }
        true
    }

    /// Adds an empty MP_REACH_NLRI, if it fits.
    fn start_mp_reach(&mut self, reach: Option<MpReach>, max: usize) -> bool {
        let Some(reach) = reach else {
            return false;
        };
        if self.update.mp_reach.is_some() {
            return false;
        }
        let value = reach.value_len();
        if size_with(self.base, Some(value), self.mp_unreach) > max {
            return false;
        }
        self.mp_reach = Some(value);
        self.update.mp_reach = Some(reach);
        true
    }

    /// Removes an MP_REACH_NLRI that got no prefix.
    fn drop_mp_reach(&mut self) {
        self.mp_reach = None;
        self.update.mp_reach = None;
    }

    /// Adds a prefix to MP_REACH_NLRI (present already), if it fits.
    fn try_mp_reach(&mut self, net: IpNet, max: usize) -> bool {
        let (Some(value), Some(reach)) = (self.mp_reach, self.update.mp_reach.as_mut()) else {
            return false;
        };
        let value = value + prefix_encoded_len(net.prefix_len());
        if size_with(self.base, Some(value), self.mp_unreach) > max {
            return false;
        }
        self.mp_reach = Some(value);
        reach.nlri.push(net);
        true
    }

    /// Adds a prefix to MP_UNREACH_NLRI of `family`, creating the attribute if absent, if it
    /// fits. An UPDATE holds one MP_UNREACH_NLRI (RFC 7606 §3 g), so another family is refused.
    fn try_mp_unreach(&mut self, family: Family, net: IpNet, max: usize) -> bool {
        let current = match &self.update.mp_unreach {
            Some(u) if u.family != family => return false,
            Some(_) => self.mp_unreach.unwrap_or(MP_UNREACH_FIXED),
            None => MP_UNREACH_FIXED,
        };
        let value = current + prefix_encoded_len(net.prefix_len());
        if size_with(self.base, self.mp_reach, Some(value)) > max {
            return false;
        }
        self.mp_unreach = Some(value);
        self.update
            .mp_unreach
            .get_or_insert_with(|| MpUnreach {
                family,
                withdrawn: Vec::new(),
            })
            .withdrawn
            .push(net);
        true
    }
}

impl Packer {
    /// A packer for `session` with `ctx`; the limit is `ctx.max_message_len()`.
    pub fn new(ctx: EncodeCtx, session: SessionView) -> Self {
        Self::with_max_len(ctx, session, usize::MAX)
    }

    /// A packer with a smaller limit (at least 64 octets; clamped to the context's maximum).
    pub fn with_max_len(ctx: EncodeCtx, session: SessionView, max_len: usize) -> Self {
        Packer {
            ctx,
            session,
            max_len: max_len.clamp(64, ctx.max_message_len()),
            wire: HashMap::new(),
        }
    }

    /// The size limit in use.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// The wire form of `route` for `prefix` on this session (see the module doc), or why it
    /// cannot be sent: no next hop of the prefix's family ([`Route::next_hop_for`]).
    fn wire_route(&self, prefix: &IpNet, route: &Route) -> Result<WireRoute, EncodingError> {
        let s = &self.session;
        let mut attrs = PathAttributes {
            origin: Some(Origin::Igp),
            // RFC 4271 §5.1.2: towards eBGP "prepend its own AS number"; towards iBGP an
            // originated route has an empty AS_PATH.
            as_path: Some(if s.ibgp {
                AsPath::default()
            } else {
                AsPath::sequence(vec![s.local_as])
            }),
            med: route.med,
            local_pref: route.local_pref_for(s),
            communities: (!route.communities.is_empty())
                .then(|| route.communities.iter().copied().collect()),
            large_communities: (!route.large_communities.is_empty())
                .then(|| route.large_communities.iter().copied().collect()),
            extended_communities: (!route.extended_communities.is_empty())
                .then(|| route.extended_communities.iter().copied().collect()),
            ..PathAttributes::default()
        };
        let mut mp_next_hop = None;
        let mut mp_family = None;
        match route.next_hop_for(prefix, s) {
            Some(IpAddr::V4(nh)) => attrs.next_hop = Some(nh),
            // RFC 2545 §3: the global address; a link-local one only for a shared link, which
            // the route does not say. An unnumbered session has only its link-local address,
            // which goes in the one 16-octet field (RFC 8950 §4 allows 16 or 32 octets; FRR
            // takes a link-local there and scopes it to the session's interface).
            Some(IpAddr::V6(global)) => {
                mp_next_hop = Some(MpNextHop::V6 {
                    global,
                    link_local: None,
                });
                mp_family = Some(if prefix.addr().is_ipv4() {
                    Family::IPV4_UNICAST
                } else {
                    Family::IPV6_UNICAST
                });
            }
            None => {
                return Err(EncodingError::Invalid {
                    field: "route.next_hop",
                    reason: "no next hop of the prefix's family on this session (RFC 4760 §3)",
                })
            }
        }
        if !self.ctx.four_octet_as {
            attrs = attrs.for_two_octet_peer();
        }
        attrs.check_encodable(&self.ctx)?;
        Ok(WireRoute {
            attrs,
            mp_next_hop,
            mp_family,
        })
    }

    /// [`Packer::wire_route`] once per route allocation and family in this pass.
    fn wire_of(
        &mut self,
        prefix: &IpNet,
        route: &Arc<Route>,
    ) -> Result<Arc<WireRoute>, EncodingError> {
        let key = (Arc::as_ptr(route) as usize, prefix.addr().is_ipv4());
        if let Some((_, known)) = self.wire.get(&key) {
            return known.clone();
        }
        let built = self.wire_route(prefix, route).map(Arc::new);
        self.wire.insert(key, (Arc::clone(route), built.clone()));
        built
    }

    /// Packs `announce` and `withdraw` into UPDATEs. Fails if a route has no next hop of its
    /// prefix's family on this session, its attributes cannot be encoded, or one prefix with
    /// its attributes alone exceeds the limit.
    pub fn pack(
        &mut self,
        announce: &Routes,
        withdraw: &BTreeSet<IpNet>,
    ) -> Result<Vec<Update>, EncodingError> {
        let max = self.max_len;
        // Group by wire attributes, in order of first appearance (deterministic output).
        // Consecutive prefixes usually share one `Arc<Route>`: a pointer comparison skips
        // the hash lookup.
        let mut wired: Vec<(IpNet, Arc<WireRoute>)> = Vec::with_capacity(announce.len().min(4096));
        let mut last: Option<(&Arc<Route>, bool, Arc<WireRoute>)> = None;
        for (net, route) in announce {
            let v4 = net.addr().is_ipv4();
            let wire = match &last {
                Some((r, f, w)) if *f == v4 && Arc::ptr_eq(r, route) => Arc::clone(w),
                _ => {
                    let w = self.wire_of(net, route)?;
                    last = Some((route, v4, Arc::clone(&w)));
                    w
                }
            };
            wired.push((*net, wire));
        }
        // Routes that differ only in what this session does not send share a wire form and
        // so a group. The value (hundreds of communities, perhaps) is hashed once per wire
        // form; its prefixes find the group by the form's address.
        let mut by_value: HashMap<&WireRoute, usize> = HashMap::new();
        let mut by_addr: HashMap<*const WireRoute, usize> = HashMap::new();
        let mut groups: Vec<(&WireRoute, Vec<ipnet::Ipv4Net>, Vec<IpNet>)> = Vec::new();
        for (net, attrs) in &wired {
            let i = *by_addr.entry(Arc::as_ptr(attrs)).or_insert_with(|| {
                *by_value.entry(&**attrs).or_insert_with(|| {
                    groups.push((&**attrs, Vec::new(), Vec::new()));
                    groups.len() - 1
                })
            });
            let Some(group) = groups.get_mut(i) else {
                continue;
            };
            match net {
                // RFC 8950: an IPv4 prefix with an IPv6 next hop goes in MP_REACH_NLRI.
                IpNet::V4(_) if attrs.mp_family.is_some() => group.2.push(*net),
                IpNet::V4(n) => group.1.push(*n),
                IpNet::V6(_) => group.2.push(*net),
            }
        }

        let mut out: Vec<Draft> = Vec::new();
        for (route, v4, v6) in &groups {
            // Converted for a 2-octet peer and checked in `wire_route`.
            let attrs = &route.attrs;
            if !v4.is_empty() {
                if attrs.next_hop.is_none() {
                    return Err(EncodingError::Invalid {
                        field: "route.next_hop",
                        reason: "an IPv4 route needs a NEXT_HOP",
                    });
                }
                let template = Update {
                    attrs: attrs.clone(),
                    ..Update::default()
                };
                let mut draft = Draft::new(template.clone(), &self.ctx);
                for net in v4 {
                    if !draft.try_v4(*net, false, max) {
                        if draft.update.nlri.is_empty() {
                            return Err(self.too_long(&draft, &IpNet::V4(*net)));
                        }
                        out.push(std::mem::replace(
                            &mut draft,
                            Draft::new(template.clone(), &self.ctx),
                        ));
                        if !draft.try_v4(*net, false, max) {
                            return Err(self.too_long(&draft, &IpNet::V4(*net)));
                        }
                    }
                }
                out.push(draft);
            }
            if !v6.is_empty() {
                let Some(next_hop @ MpNextHop::V6 { .. }) = route.mp_next_hop else {
                    return Err(EncodingError::Invalid {
                        field: "route.next_hop",
                        reason: "an IPv6 route needs an IPv6 MP_REACH_NLRI next hop",
                    });
                };
                let template = Update {
                    mp_reach: Some(MpReach {
                        family: route.mp_family.unwrap_or(Family::IPV6_UNICAST),
                        next_hop,
                        nlri: Vec::new(),
                    }),
                    // RFC 4760 §3: an UPDATE carrying only MP_REACH_NLRI need not carry
                    // NEXT_HOP.
                    attrs: PathAttributes {
                        next_hop: None,
                        ..attrs.clone()
                    },
                    ..Update::default()
                };
                debug_assert_eq!(
                    MP_REACH_FIXED + next_hop.len(),
                    template.mp_reach.as_ref().map_or(0, |m| m.value_len())
                );
                let empty_reach = template.mp_reach.clone();
                // RFC 4760 allows IPv4 NLRI and MP_REACH_NLRI in one UPDATE, and the last IPv4
                // UPDATE of this group carries the same attributes: fill its spare room first.
                let mut draft = match (v4.is_empty(), out.pop()) {
                    (false, Some(mut last)) => {
                        if last.start_mp_reach(empty_reach, max) {
                            last
                        } else {
                            out.push(last);
                            Draft::new(template.clone(), &self.ctx)
                        }
                    }
                    (_, last) => {
                        out.extend(last);
                        Draft::new(template.clone(), &self.ctx)
                    }
                };
                for net in v6 {
                    if !draft.try_mp_reach(*net, max) {
                        let reach_empty = draft
                            .update
                            .mp_reach
                            .as_ref()
                            .is_some_and(|m| m.nlri.is_empty());
                        if reach_empty && draft.update.nlri.is_empty() {
                            return Err(self.too_long(&draft, net));
                        }
                        if reach_empty {
                            draft.drop_mp_reach();
                        }
                        out.push(std::mem::replace(
                            &mut draft,
                            Draft::new(template.clone(), &self.ctx),
                        ));
                        if !draft.try_mp_reach(*net, max) {
                            return Err(self.too_long(&draft, net));
                        }
                    }
                }
                out.push(draft);
            }
        }

        // Withdrawals: fill spare room first, then withdraw-only UPDATEs. A prefix also being
        // announced is not withdrawn (the announcement replaces it, RFC 4271 §3.1).
        let mut first_with_room = 0;
        for net in withdraw.iter().filter(|n| !announce.contains_key(n)) {
            let fits = |d: &mut Draft| match net {
                IpNet::V4(n) => d.try_v4(*n, true, max),
                IpNet::V6(_) => d.try_mp_unreach(Family::IPV6_UNICAST, *net, max),
            };
            // Drafts before `first_with_room` were full for a /0 already, so skip them.
            let mut placed = false;
            for d in out.iter_mut().skip(first_with_room) {
                if fits(d) {
                    placed = true;
                    break;
                }
            }
            if !placed {
                let mut d = Draft::new(Update::default(), &self.ctx);
                if !fits(&mut d) {
                    return Err(self.too_long(&d, net));
                }
                out.push(d);
            }
            // Advance past drafts with no room even for the smallest prefix encoding.
            while out
                .get(first_with_room)
                .is_some_and(|d| d.len() + 1 + MP_UNREACH_FIXED + 4 > max)
            {
                first_with_room += 1;
            }
        }
        Ok(out.into_iter().map(|d| d.update).collect())
    }

    fn too_long(&self, draft: &Draft, net: &IpNet) -> EncodingError {
        EncodingError::TooLong {
            field: "update (one prefix with its attributes)",
            actual: draft.len() + prefix_encoded_len(net.prefix_len()),
            max: self.max_len,
        }
    }

    /// End-of-RIB markers (RFC 4724 §2) for the given families, IPv4 unicast first.
    pub fn end_of_rib(families: Families) -> Vec<Update> {
        families.iter().map(Update::end_of_rib).collect()
    }
}
