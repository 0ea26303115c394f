//! The only module with `unsafe`: raw AF_PACKET sockets (packet(7)), their classic BPF filter
//! and multicast memberships, and `getifaddrs(3)`. Each `unsafe` block is a single libc call
//! whose pointer arguments point at live, correctly sized locals; the `// SAFETY:` comments say
//! which. Everything above this module is safe Rust.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::io;
use std::mem::{size_of, zeroed};
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use ipnet::IpNet;

use crate::filter::SockFilter;
use crate::wire::{EtherType, MacAddr};

/// `PACKET_IGNORE_OUTGOING` (linux/if_packet.h, Linux 4.20): do not loop our own transmissions
/// back to this socket. The BPF filter drops them too, for older kernels.
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
/// `PACKET_OUTGOING` (linux/if_packet.h).
const PACKET_OUTGOING: u8 = 4;

/// Errors opening or configuring a packet socket.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// No interface of that name in this network namespace.
    #[error("interface {name:?}: no such interface")]
    NoSuchInterface {
        /// Interface name.
        name: String,
    },
    /// The interface is not Ethernet (e.g. loopback, a tunnel): ARP/NDP over it makes no sense.
    #[error("interface {name:?}: hardware type {hatype} is not Ethernet")]
    NotEthernet {
        /// Interface name.
        name: String,
        /// ARPHRD_* value.
        hatype: u16,
    },
    /// A syscall failed.
    #[error("interface {name:?}: {op}: {source}")]
    Io {
        /// Interface name.
        name: String,
        /// The failing call, e.g. `"setsockopt(SO_ATTACH_FILTER)"`.
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl SocketError {
    /// A short, stable label for a counter.
    pub fn metric_label(&self) -> &'static str {
        match self {
            SocketError::NoSuchInterface { .. } => "no_such_interface",
            SocketError::NotEthernet { .. } => "not_ethernet",
            SocketError::Io { .. } => "io",
        }
    }
}

/// A non-blocking AF_PACKET/SOCK_RAW socket bound to one interface, with a BPF filter.
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
    name: String,
    ifindex: i32,
    mac: MacAddr,
}

fn check(name: &str, op: &'static str, ret: libc::c_int) -> Result<libc::c_int, SocketError> {
    if ret < 0 {
        Err(SocketError::Io {
            name: name.to_owned(),
            op,
            source: io::Error::last_os_error(),
        })
    } else {
        Ok(ret)
    }
}

fn setsockopt<T>(fd: RawFd, level: libc::c_int, opt: libc::c_int, value: &T) -> libc::c_int {
    let len = libc::socklen_t::try_from(size_of::<T>()).unwrap_or(libc::socklen_t::MAX);
    // SAFETY: `value` is a live reference to a `T` of exactly `len` octets, which the kernel
    // only reads during the call.
    unsafe { libc::setsockopt(fd, level, opt, (value as *const T).cast(), len) }
}

impl PacketSocket {
    /// Opens a socket on `ifname` in the calling thread's network namespace that receives only
    /// what `filter` accepts.
    ///
    /// The socket is created with protocol 0 (receives nothing), the filter attached, and only
    /// then bound with ETH_P_ALL, so no unfiltered frame is ever queued (packet(7)).
    pub fn open(ifname: &str, filter: &[SockFilter]) -> Result<Self, SocketError> {
        let no_such = || SocketError::NoSuchInterface {
            name: ifname.to_owned(),
        };
        let cname = CString::new(ifname).map_err(|_| no_such())?;
        // SAFETY: `cname` is a valid NUL-terminated string for the duration of the call.
        let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) };
        let ifindex = i32::try_from(ifindex)
            .ok()
            .filter(|i| *i > 0)
            .ok_or_else(no_such)?;

        // SAFETY: plain syscall with integer arguments; the returned fd is owned below.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        };
        let raw = check(ifname, "socket(AF_PACKET)", raw)?;
        // SAFETY: `raw` is a freshly created fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };

        let mut program = filter.to_vec();
        let prog = libc::sock_fprog {
            len: u16::try_from(program.len()).unwrap_or(u16::MAX),
            // `SockFilter` is `#[repr(C)]` with the same fields as `struct sock_filter`.
            filter: program.as_mut_ptr().cast::<libc::sock_filter>(),
        };
        check(
            ifname,
            "setsockopt(SO_ATTACH_FILTER)",
            setsockopt(raw, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &prog),
        )?;
        // Best effort: older kernels lack it and the filter drops outgoing frames anyway.
        let one: libc::c_int = 1;
        let _ = setsockopt(raw, libc::SOL_PACKET, PACKET_IGNORE_OUTGOING, &one);

        // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
        let mut sll: libc::sockaddr_ll = unsafe { zeroed() };
        sll.sll_family = u16::try_from(libc::AF_PACKET).unwrap_or(0);
        sll.sll_protocol = u16::try_from(libc::ETH_P_ALL).unwrap_or(0).to_be();
        sll.sll_ifindex = ifindex;
        let sll_len = libc::socklen_t::try_from(size_of::<libc::sockaddr_ll>()).unwrap_or(0);
        // SAFETY: `sll` is a live sockaddr_ll and `sll_len` its size.
        let ret = unsafe { libc::bind(raw, (&sll as *const libc::sockaddr_ll).cast(), sll_len) };
        check(ifname, "bind", ret)?;

        // packet(7): getsockname on a bound packet socket reports the device's hardware type
        // and address, read in this namespace (unlike /sys, which shows the mounter's).
        // SAFETY: as above, zeroed POD.
        let mut bound: libc::sockaddr_ll = unsafe { zeroed() };
        let mut len = sll_len;
        // SAFETY: `bound` has room for `len` octets; the kernel writes at most that.
        let ret = unsafe {
            libc::getsockname(raw, (&mut bound as *mut libc::sockaddr_ll).cast(), &mut len)
        };
        check(ifname, "getsockname", ret)?;
        let mac = match (bound.sll_hatype, bound.sll_halen, bound.sll_addr) {
            (libc::ARPHRD_ETHER, 6, [a, b, c, d, e, f, _, _]) => MacAddr([a, b, c, d, e, f]),
            (hatype, _, _) => {
                return Err(SocketError::NotEthernet {
                    name: ifname.to_owned(),
                    hatype,
                })
            }
        };
        Ok(PacketSocket {
            fd,
            name: ifname.to_owned(),
            ifindex,
            mac,
        })
    }

    /// The interface's MAC address when the socket was opened.
    pub fn mac(&self) -> MacAddr {
        self.mac
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Receives one frame into `buf` without blocking. Returns its full length (which may exceed
    /// `buf.len()` if it was truncated) and whether it is our own outgoing frame.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Received> {
        // SAFETY: zeroed POD.
        let mut from: libc::sockaddr_ll = unsafe { zeroed() };
        let mut len = libc::socklen_t::try_from(size_of::<libc::sockaddr_ll>()).unwrap_or(0);
        // SAFETY: `buf` is valid for `buf.len()` writable octets, `from` for `len`.
        let n = unsafe {
            libc::recvfrom(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_TRUNC | libc::MSG_DONTWAIT,
                (&mut from as *mut libc::sockaddr_ll).cast(),
                &mut len,
            )
        };
        let n = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
        Ok(Received {
            len: n,
            outgoing: from.sll_pkttype == PACKET_OUTGOING,
        })
    }

    /// Sends one complete Ethernet frame (header included) out of the interface.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        let (dst, ethertype) = match (frame.get(..6), frame.get(12..14)) {
            (Some(dst), Some(&[hi, lo])) => (dst, u16::from_be_bytes([hi, lo])),
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "frame too short",
                ))
            }
        };
        // SAFETY: zeroed POD.
        let mut to: libc::sockaddr_ll = unsafe { zeroed() };
        to.sll_family = u16::try_from(libc::AF_PACKET).unwrap_or(0);
        to.sll_protocol = EtherType(ethertype).0.to_be();
        to.sll_ifindex = self.ifindex;
        to.sll_halen = 6;
        if let Some(addr) = to.sll_addr.get_mut(..6) {
            addr.copy_from_slice(dst);
        }
        let len = libc::socklen_t::try_from(size_of::<libc::sockaddr_ll>()).unwrap_or(0);
        // SAFETY: `frame` is valid for `frame.len()` readable octets; `to` for `len`.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                libc::MSG_DONTWAIT,
                (&to as *const libc::sockaddr_ll).cast(),
                len,
            )
        };
        match usize::try_from(n) {
            Ok(sent) if sent == frame.len() => Ok(()),
            Ok(_) => Err(io::Error::new(io::ErrorKind::WriteZero, "short send")),
            Err(_) => Err(io::Error::last_os_error()),
        }
    }

    /// Adds (`join = true`) or drops a link-layer multicast membership, so the NIC passes frames
    /// for a solicited-node group up to us (packet(7) PACKET_ADD_MEMBERSHIP; the kernel counts
    /// repeated adds of one address per socket).
    pub fn set_multicast(&self, group: MacAddr, join: bool) -> io::Result<()> {
        let mut address = [0u8; 8];
        if let Some(a) = address.get_mut(..6) {
            a.copy_from_slice(&group.0);
        }
        let mreq = libc::packet_mreq {
            mr_ifindex: self.ifindex,
            mr_type: u16::try_from(libc::PACKET_MR_MULTICAST).unwrap_or(0),
            mr_alen: 6,
            mr_address: address,
        };
        let opt = if join {
            libc::PACKET_ADD_MEMBERSHIP
        } else {
            libc::PACKET_DROP_MEMBERSHIP
        };
        if setsockopt(self.fd.as_raw_fd(), libc::SOL_PACKET, opt, &mreq) < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// What [`PacketSocket::recv`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Length of the frame on the wire.
    pub len: usize,
    /// The frame was sent by this host (PACKET_OUTGOING).
    pub outgoing: bool,
}

impl AsFd for PacketSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for PacketSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// One interface and its addresses, as `getifaddrs(3)` reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InterfaceInfo {
    /// Interface name.
    pub name: String,
    /// IFF_LOOPBACK is set.
    pub loopback: bool,
    /// IFF_UP is set.
    pub up: bool,
    /// IFF_BROADCAST is set (the link can carry ARP).
    pub broadcast: bool,
    /// IFF_NOARP is set (e.g. kube-proxy's `kube-ipvs0` dummy).
    pub noarp: bool,
    /// The interface has a master (a bridge port or bond member): `/sys/class/net/NAME/master`
    /// exists. Read from the sysfs of the process's mount namespace.
    pub enslaved: bool,
    /// Its IPv4/IPv6 addresses with prefix lengths.
    pub addrs: Vec<IpNet>,
}

/// Lists the interfaces of the calling thread's network namespace, sorted by name.
pub fn list_interfaces() -> io::Result<Vec<InterfaceInfo>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: `head` is a valid out-pointer; on success the list is freed below.
    if unsafe { libc::getifaddrs(&mut head) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut by_name: std::collections::BTreeMap<String, InterfaceInfo> = Default::default();
    let mut cursor = head;
    // Bounded by the kernel's list, which getifaddrs materialised; a generous cap guards a
    // corrupt list.
    for _ in 0..65_536 {
        if cursor.is_null() {
            break;
        }
        // SAFETY: `cursor` is a non-null node of the list getifaddrs returned, not yet freed.
        let ifa = unsafe { &*cursor };
        cursor = ifa.ifa_next;
        if ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: getifaddrs gives NUL-terminated names.
        let name = unsafe { CStr::from_ptr(ifa.ifa_name) }
            .to_string_lossy()
            .into_owned();
        let entry = by_name
            .entry(name.clone())
            .or_insert_with(|| InterfaceInfo {
                name,
                ..InterfaceInfo::default()
            });
        let flag = |f: libc::c_int| ifa.ifa_flags & u32::try_from(f).unwrap_or(0) != 0;
        entry.loopback |= flag(libc::IFF_LOOPBACK);
        entry.up |= flag(libc::IFF_UP);
        entry.broadcast |= flag(libc::IFF_BROADCAST);
        entry.noarp |= flag(libc::IFF_NOARP);
        // SAFETY: the address and netmask pointers are null or point at sockaddrs of the
        // family in their sa_family field.
        let net = unsafe { ifa_net(ifa.ifa_addr, ifa.ifa_netmask) };
        if let Some(net) = net {
            entry.addrs.push(net);
        }
    }
    // SAFETY: `head` came from a successful getifaddrs and is freed exactly once.
    unsafe { libc::freeifaddrs(head) };
    for info in by_name.values_mut() {
        info.enslaved = std::path::Path::new("/sys/class/net")
            .join(&info.name)
            .join("master")
            .exists();
    }
    Ok(by_name.into_values().collect())
}

/// # Safety
/// `addr` and `mask` must each be null or point at a sockaddr whose `sa_family` says its type.
unsafe fn ifa_net(addr: *const libc::sockaddr, mask: *const libc::sockaddr) -> Option<IpNet> {
    if addr.is_null() {
        return None;
    }
    // SAFETY: caller guarantees `addr` is a valid sockaddr.
    let family = libc::c_int::from(unsafe { (*addr).sa_family });
    let (ip, mask_ip): (IpAddr, Option<IpAddr>) = match family {
        libc::AF_INET => {
            // SAFETY: family AF_INET means the storage is a sockaddr_in (and so is the mask's).
            let sin = unsafe { &*addr.cast::<libc::sockaddr_in>() };
            let ip = IpAddr::from(u32::from_be(sin.sin_addr.s_addr).to_be_bytes());
            let mask = (!mask.is_null()).then(|| {
                // SAFETY: as above.
                let m = unsafe { &*mask.cast::<libc::sockaddr_in>() };
                IpAddr::from(u32::from_be(m.sin_addr.s_addr).to_be_bytes())
            });
            (ip, mask)
        }
        libc::AF_INET6 => {
            // SAFETY: family AF_INET6 means a sockaddr_in6.
            let sin6 = unsafe { &*addr.cast::<libc::sockaddr_in6>() };
            let mask = (!mask.is_null()).then(|| {
                // SAFETY: as above.
                let m = unsafe { &*mask.cast::<libc::sockaddr_in6>() };
                IpAddr::from(m.sin6_addr.s6_addr)
            });
            (IpAddr::from(sin6.sin6_addr.s6_addr), mask)
        }
        _ => return None,
    };
    let prefix = match mask_ip {
        Some(IpAddr::V4(m)) => u8::try_from(u32::from(m).count_ones()).ok()?,
        Some(IpAddr::V6(m)) => u8::try_from(u128::from(m).count_ones()).ok()?,
        None => match ip {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        },
    };
    IpNet::new(ip, prefix).ok()
}

/// Registers the socket with the tokio reactor for readability.
pub fn register(socket: PacketSocket) -> io::Result<tokio::io::unix::AsyncFd<PacketSocket>> {
    // SAFETY: `PacketSocket` owns its `OwnedFd` for its whole life, never replaces it, and
    // `as_raw_fd` always returns that same open descriptor, as `register` requires.
    let registered = unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(socket, tokio::io::Interest::READABLE)
    };
    registered.map_err(io::Error::from)
}
