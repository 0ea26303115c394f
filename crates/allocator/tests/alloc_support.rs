//! Shared builders for the allocator tests (`mod alloc_support;` via `#[path]`). Compiled on its
//! own too, as every file in `tests/`, so it holds no tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::IpAddr;

use ferrolb_allocator::{Protocol, Service, ServiceKey, ServicePort, ServiceType};
use ferrolb_api::model::{AddressRange, Config, IpFamily, Pool, ServiceAllocation};

/// `"10.0.0.0/30"` or `"10.0.0.1-10.0.0.5"`.
pub fn range(s: &str) -> AddressRange {
    if let Some((a, b)) = s.split_once('-') {
        return AddressRange {
            start: a.parse().expect("start"),
            end: b.parse().expect("end"),
            cidr_len: None,
        };
    }
    let net: ipnet::IpNet = s.parse().expect("cidr");
    AddressRange {
        start: net.network(),
        end: net.broadcast(),
        cidr_len: Some(net.prefix_len()),
    }
}

pub fn pool(name: &str, ranges: &[&str]) -> Pool {
    // In the order given, as `spec.addresses` is.
    let ranges: Vec<AddressRange> = ranges.iter().map(|r| range(r)).collect();
    Pool {
        name: name.to_string(),
        labels: BTreeMap::new(),
        ranges,
        auto_assign: true,
        avoid_buggy_ips: false,
        service_allocation: None,
    }
}

pub fn pinned(mut p: Pool, priority: Option<i32>, namespaces: &[&str]) -> Pool {
    p.service_allocation = Some(ServiceAllocation {
        priority,
        namespaces: namespaces.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    });
    p
}

pub fn config(pools: Vec<Pool>) -> Config {
    Config {
        pools: pools.into_iter().map(|p| (p.name.clone(), p)).collect(),
        ..Default::default()
    }
}

pub fn key(ns: &str, name: &str) -> ServiceKey {
    ServiceKey::new(ns, name)
}

/// A LoadBalancer Service with one TCP port 80, IPv4 single-stack.
pub fn svc(ns: &str, name: &str) -> Service {
    Service {
        key: key(ns, name),
        service_type: ServiceType::LoadBalancer,
        ip_families: vec![IpFamily::V4],
        ports: vec![tcp(80)],
        ..Default::default()
    }
}

pub fn tcp(port: u16) -> ServicePort {
    ServicePort {
        port,
        protocol: Protocol::Tcp,
    }
}

pub fn udp(port: u16) -> ServicePort {
    ServicePort {
        port,
        protocol: Protocol::Udp,
    }
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

pub fn ips(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|s| ip(s)).collect()
}
