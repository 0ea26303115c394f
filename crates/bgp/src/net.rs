//! Sockets for BGP sessions: connect and listen with source address, TTL ([`session_ttl`]),
//! GTSM (RFC 5082) and TCP-MD5 (RFC 2385, see [`crate::md5`]).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream};

use crate::md5::{set_md5_key, Md5Error};

/// Per-session socket options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SocketOptions {
    /// Source address of the outgoing connection.
    pub local_address: Option<IpAddr>,
    /// The TTL / hop limit to send with: 1 for a directly connected eBGP peer, more with
    /// multihop, `None` for the system default (iBGP).
    pub ttl: Option<u8>,
    /// GTSM (RFC 5082 §3): send with TTL 255 and refuse segments that arrive with a TTL below
    /// 255 − `hops` + 1. Overrides `ttl`.
    pub gtsm_hops: Option<u8>,
    /// TCP-MD5 password.
    pub md5_password: Option<String>,
    /// SO_BINDTODEVICE: a Linux VRF device (the connection then routes, picks its source
    /// address and looks up its peer in that VRF's table) or an interface.
    pub bind_device: Option<String>,
    /// The interface of a link-local peer address: its scope (RFC 4007 §6), without which
    /// Linux cannot route to it.
    pub interface: Option<String>,
}

/// The TTL a session sends with ([`SocketOptions::ttl`]; `None` = the system default).
///
/// iBGP: the system default. eBGP: the multihop TTL when configured; otherwise 1, since common
/// practice (RFC 4271 §5.1.3 has no rule) keeps a directly connected eBGP session from crossing
/// a router, or the system default when `system_ttl` asks for MetalLB's native behaviour, which
/// sets no TTL at all.
pub fn session_ttl(ibgp: bool, ebgp_multihop: Option<u8>, system_ttl: bool) -> Option<u8> {
    match (ibgp, ebgp_multihop) {
        (true, _) => None,
        (false, Some(ttl)) => Some(ttl),
        (false, None) if system_ttl => None,
        (false, None) => Some(1),
    }
}

/// A socket-level failure, with what was being done.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// TCP-MD5 could not be set.
    #[error(transparent)]
    Md5(#[from] Md5Error),
    /// A socket call failed.
    #[error("{op} {addr}: {source}")]
    Io {
        /// The call: "bind", "connect", "listen", "setsockopt(IP_TTL)", ...
        op: &'static str,
        /// The address involved.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// The connection did not complete in time (with TCP-MD5, often a password mismatch: the
    /// peer drops unsigned or badly signed SYNs without answering).
    #[error("connect {addr}: no answer within {timeout:?}")]
    Timeout {
        /// The peer.
        addr: SocketAddr,
        /// The limit.
        timeout: Duration,
    },
}

fn io_err(op: &'static str, addr: SocketAddr) -> impl FnOnce(io::Error) -> NetError {
    move |source| NetError::Io { op, addr, source }
}

/// Applies TTL / GTSM to a socket (connected or not) talking to `peer`.
pub fn apply_ttl(
    sock: &socket2::SockRef<'_>,
    peer: SocketAddr,
    opts: &SocketOptions,
) -> Result<(), NetError> {
    let (ttl, min) = match opts.gtsm_hops {
        // RFC 5082 §3: "the TTL of outgoing packets MUST be set to 255" and incoming ones
        // checked against 255 - hops + 1.
        Some(hops) => (Some(255u32), Some(256 - u32::from(hops.max(1)))),
        None => (opts.ttl.map(u32::from), None),
    };
    let v6 = peer.is_ipv6();
    if let Some(ttl) = ttl {
        if v6 {
            sock.set_unicast_hops_v6(ttl)
                .map_err(io_err("setsockopt(IPV6_UNICAST_HOPS)", peer))?;
        } else {
            sock.set_ttl_v4(ttl)
                .map_err(io_err("setsockopt(IP_TTL)", peer))?;
        }
    }
    if let Some(min) = min {
        set_min_ttl(sock, v6, min).map_err(io_err("setsockopt(IP_MINTTL)", peer))?;
    }
    Ok(())
}

#[allow(unsafe_code)]
fn set_min_ttl(sock: &socket2::SockRef<'_>, v6: bool, min: u32) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let (level, name) = if v6 {
        (libc::IPPROTO_IPV6, libc::IPV6_MINHOPCOUNT)
    } else {
        (libc::IPPROTO_IP, libc::IP_MINTTL)
    };
    let value = libc::c_int::try_from(min).unwrap_or(255);
    // SAFETY: a valid fd borrowed for the call; pointer and length describe `value`.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            name,
            (&raw const value).cast::<libc::c_void>(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The index of interface `name`, read from sysfs (no unsafe `if_nametoindex`).
pub fn ifindex(name: &str) -> io::Result<u32> {
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not an interface name",
        ));
    }
    std::fs::read_to_string(format!("/sys/class/net/{name}/ifindex"))?
        .trim()
        .parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// `peer` with the scope of `opts.interface` when it is an IPv6 link-local address without
/// one (RFC 4007 §6: a link-local address means nothing without its link).
pub fn scoped(peer: SocketAddr, opts: &SocketOptions) -> Result<SocketAddr, NetError> {
    match (peer, &opts.interface) {
        (SocketAddr::V6(v6), Some(ifname))
            if v6.scope_id() == 0 && v6.ip().is_unicast_link_local() =>
        {
            let index = ifindex(ifname).map_err(io_err("ifindex", peer))?;
            let mut v6 = v6;
            v6.set_scope_id(index);
            Ok(SocketAddr::V6(v6))
        }
        _ => Ok(peer),
    }
}

/// Connects to `peer` with `opts`, giving up after `timeout`.
pub async fn connect(
    peer: SocketAddr,
    opts: &SocketOptions,
    timeout: Duration,
) -> Result<TcpStream, NetError> {
    let peer = scoped(peer, opts)?;
    let socket = if peer.is_ipv6() {
        TcpSocket::new_v6()
    } else {
        TcpSocket::new_v4()
    }
    .map_err(io_err("socket", peer))?;
    if let Some(dev) = &opts.bind_device {
        // Before bind and connect: the source address and the route come from the device's
        // (VRF's) table only once the socket is bound to it.
        socket2::SockRef::from(&socket)
            .bind_device(Some(dev.as_bytes()))
            .map_err(io_err("setsockopt(SO_BINDTODEVICE)", peer))?;
    }
    if let Some(local) = opts.local_address {
        let local = SocketAddr::new(local, 0);
        socket.bind(local).map_err(io_err("bind", local))?;
    }
    if let Some(pw) = &opts.md5_password {
        set_md5_key(&socket, peer.ip(), pw.as_bytes())?;
    }
    apply_ttl(&socket2::SockRef::from(&socket), peer, opts)?;
    let stream = tokio::time::timeout(timeout, socket.connect(peer))
        .await
        .map_err(|_| NetError::Timeout {
            addr: peer,
            timeout,
        })?
        .map_err(io_err("connect", peer))?;
    stream
        .set_nodelay(true)
        .map_err(io_err("setsockopt(TCP_NODELAY)", peer))?;
    Ok(stream)
}

/// A listening socket with SO_REUSEADDR (so a restarted speaker can bind at once).
pub fn listen(addr: SocketAddr) -> Result<TcpListener, NetError> {
    let socket = if addr.is_ipv6() {
        TcpSocket::new_v6()
    } else {
        TcpSocket::new_v4()
    }
    .map_err(io_err("socket", addr))?;
    socket
        .set_reuseaddr(true)
        .map_err(io_err("setsockopt(SO_REUSEADDR)", addr))?;
    socket.bind(addr).map_err(io_err("bind", addr))?;
    socket.listen(1024).map_err(io_err("listen", addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn connected(opts: SocketOptions) -> (TcpStream, TcpStream) {
        let listener = listen("127.0.0.1:0".parse().expect("addr")).expect("listen");
        let addr = listener.local_addr().expect("bound");
        // The accepting side sends with TTL 255 too, as a GTSM peer does (RFC 5082 §3);
        // otherwise its SYN-ACK is below our minimum TTL and dropped.
        apply_ttl(
            &socket2::SockRef::from(&listener),
            addr,
            &SocketOptions {
                gtsm_hops: opts.gtsm_hops,
                ..SocketOptions::default()
            },
        )
        .expect("listener TTL");
        let (client, accepted) = tokio::join!(
            connect(addr, &opts, Duration::from_secs(5)),
            tokio::time::timeout(Duration::from_secs(5), listener.accept())
        );
        (
            client.expect("connect"),
            accepted.expect("accept in time").expect("accept").0,
        )
    }

    #[test]
    fn session_ttl_is_1_for_direct_ebgp_unless_the_system_default_is_asked_for() {
        assert_eq!(session_ttl(true, None, false), None, "iBGP");
        assert_eq!(
            session_ttl(true, Some(255), true),
            None,
            "iBGP ignores multihop"
        );
        assert_eq!(session_ttl(false, None, false), Some(1), "direct eBGP");
        assert_eq!(session_ttl(false, None, true), None, "MetalLB native");
        assert_eq!(
            session_ttl(false, Some(255), true),
            Some(255),
            "multihop wins"
        );
        assert_eq!(session_ttl(false, Some(5), false), Some(5));
    }

    #[tokio::test]
    async fn no_ttl_leaves_the_kernel_default_on_the_connecting_socket() {
        let Ok(default) = std::fs::read_to_string("/proc/sys/net/ipv4/ip_default_ttl") else {
            eprintln!("SKIPPED: /proc/sys/net/ipv4/ip_default_ttl unreadable");
            return;
        };
        let default: u32 = default.trim().parse().expect("a number");
        let (client, _server) = connected(SocketOptions::default()).await;
        assert_eq!(
            socket2::SockRef::from(&client).ttl_v4().expect("IP_TTL"),
            default
        );
    }

    #[tokio::test]
    async fn ebgp_ttl_1_is_set_on_the_connecting_socket() {
        let (client, _server) = connected(SocketOptions {
            ttl: Some(1),
            ..SocketOptions::default()
        })
        .await;
        assert_eq!(socket2::SockRef::from(&client).ttl_v4().expect("IP_TTL"), 1);
    }

    #[tokio::test]
    async fn gtsm_sends_with_ttl_255_and_still_connects_over_loopback() {
        let (client, server) = connected(SocketOptions {
            ttl: Some(1),
            gtsm_hops: Some(1),
            local_address: Some("127.0.0.1".parse().expect("addr")),
            md5_password: None,
            bind_device: None,
            interface: None,
        })
        .await;
        // RFC 5082 §3: GTSM overrides the eBGP TTL of 1.
        assert_eq!(
            socket2::SockRef::from(&client).ttl_v4().expect("IP_TTL"),
            255
        );
        assert!(server.peer_addr().is_ok());
    }

    #[tokio::test]
    async fn bind_device_is_set_on_the_connecting_socket() {
        let (client, _server) = connected(SocketOptions {
            bind_device: Some("lo".to_owned()),
            ..SocketOptions::default()
        })
        .await;
        let dev = socket2::SockRef::from(&client)
            .device()
            .expect("SO_BINDTODEVICE");
        assert_eq!(dev.as_deref(), Some(&b"lo"[..]));
    }

    #[tokio::test]
    async fn bind_to_a_missing_device_fails_naming_the_option() {
        let addr: SocketAddr = "127.0.0.1:9".parse().expect("addr");
        let opts = SocketOptions {
            bind_device: Some("flb-no-such0".to_owned()),
            ..SocketOptions::default()
        };
        let err = connect(addr, &opts, Duration::from_secs(5))
            .await
            .expect_err("no such device");
        assert!(err.to_string().contains("SO_BINDTODEVICE"), "{err}");
    }

    #[test]
    fn a_link_local_peer_gets_its_interface_as_scope_and_others_are_untouched() {
        let opts = SocketOptions {
            interface: Some("lo".to_owned()),
            ..SocketOptions::default()
        };
        let lo = ifindex("lo").expect("lo has an index");
        let ll: SocketAddr = "[fe80::1]:179".parse().expect("addr");
        match scoped(ll, &opts).expect("scoped") {
            SocketAddr::V6(v6) => assert_eq!(v6.scope_id(), lo),
            other => panic!("{other}"),
        }
        let global: SocketAddr = "[2001:db8::1]:179".parse().expect("addr");
        assert_eq!(scoped(global, &opts).expect("as is"), global);
        let missing = SocketOptions {
            interface: Some("flb-no-such0".to_owned()),
            ..SocketOptions::default()
        };
        assert!(scoped(ll, &missing).is_err());
        assert_eq!(scoped(ll, &SocketOptions::default()).expect("as is"), ll);
    }

    #[tokio::test]
    async fn refused_connect_names_the_call_and_address() {
        // Bind then drop a listener: its port refuses connections for the test's duration.
        let addr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr")
        };
        let err = connect(addr, &SocketOptions::default(), Duration::from_secs(5))
            .await
            .expect_err("refused");
        assert!(
            err.to_string().starts_with(&format!("connect {addr}")),
            "{err}"
        );
    }
}
