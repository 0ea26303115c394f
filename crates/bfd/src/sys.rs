//! The two socket calls socket2 does not wrap: turning on the TTL / hop-limit and
//! packet-info control messages, and `recvmsg(2)` reading them (RFC 5881 §5 and RFC 5883 §2
//! need the received TTL; RFC 5880 §6.3 demultiplexing the receiving interface).
//!
//! The only module of this crate with `unsafe`; each block says why it is sound.
#![allow(unsafe_code)]

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, BorrowedFd};

/// One received datagram and what the kernel said about it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Datagram {
    /// Octets written to the buffer (truncated datagrams are cut to the buffer).
    pub len: usize,
    /// The sender.
    pub src: SocketAddr,
    /// The received IPv4 TTL or IPv6 hop limit, if the control message came.
    pub ttl: Option<u8>,
    /// The receiving interface index, if the control message came.
    pub ifindex: Option<u32>,
    /// The destination address, if the control message came.
    pub dst: Option<IpAddr>,
}

fn set_int(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: `fd` is a live socket for the borrow; the pointer and length describe `value`,
    // a c_int that outlives the call, as these options expect.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&raw const value).cast::<libc::c_void>(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// IP_RECVTTL + IP_PKTINFO (IPv4) or IPV6_RECVHOPLIMIT + IPV6_RECVPKTINFO (IPv6).
pub(crate) fn enable_recv_info(fd: BorrowedFd<'_>, v6: bool) -> io::Result<()> {
    if v6 {
        set_int(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT, 1)?;
        set_int(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1)
    } else {
        set_int(fd, libc::IPPROTO_IP, libc::IP_RECVTTL, 1)?;
        set_int(fd, libc::IPPROTO_IP, libc::IP_PKTINFO, 1)
    }
}

/// `recvmsg(2)` of one datagram into `buf` with its TTL, interface and destination. The
/// socket is non-blocking: `WouldBlock` when nothing is queued.
pub(crate) fn recv(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<Datagram> {
    // u64 elements keep the control buffer aligned for cmsghdr.
    let mut control = [0u64; 32];
    // SAFETY: all-zero is a valid sockaddr_storage and msghdr.
    let mut addr: libc::sockaddr_storage = unsafe { zeroed() };
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: as above.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_name = (&raw mut addr).cast();
    msg.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of::<[u64; 32]>() as _;
    // SAFETY: every pointer in `msg` points to a live local (addr, iov -> buf, control) of
    // the length given, and they outlive the call.
    let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &raw mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let len = usize::try_from(n).unwrap_or(0).min(buf.len());
    let src = match i32::from(addr.ss_family) {
        libc::AF_INET => {
            // SAFETY: the kernel wrote a sockaddr_in (family AF_INET) into the storage, which
            // is large and aligned enough for it.
            let a: libc::sockaddr_in = unsafe { *(&raw const addr).cast() };
            SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                u16::from_be(a.sin_port),
            ))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, a sockaddr_in6.
            let a: libc::sockaddr_in6 = unsafe { *(&raw const addr).cast() };
            SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            ))
        }
        f => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("recvmsg: unexpected address family {f}"),
            ))
        }
    };
    let mut d = Datagram {
        len,
        src,
        ttl: None,
        ifindex: None,
        dst: None,
    };
    // SAFETY: CMSG_FIRSTHDR/CMSG_NXTHDR walk the control buffer the kernel filled, bounded
    // by msg_controllen; each header's data is read only when level, type and length match
    // the struct read, with read_unaligned.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&raw const msg);
        while !cmsg.is_null() {
            let c = &*cmsg;
            let data = libc::CMSG_DATA(cmsg);
            let data_len = (c.cmsg_len as usize).saturating_sub(libc::CMSG_LEN(0) as usize);
            match (c.cmsg_level, c.cmsg_type) {
                (libc::IPPROTO_IP, libc::IP_TTL) | (libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT)
                    if data_len >= size_of::<libc::c_int>() =>
                {
                    let v = std::ptr::read_unaligned(data.cast::<libc::c_int>());
                    d.ttl = u8::try_from(v).ok();
                }
                (libc::IPPROTO_IP, libc::IP_PKTINFO)
                    if data_len >= size_of::<libc::in_pktinfo>() =>
                {
                    let p = std::ptr::read_unaligned(data.cast::<libc::in_pktinfo>());
                    d.ifindex = u32::try_from(p.ipi_ifindex).ok();
                    d.dst = Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(p.ipi_addr.s_addr))));
                }
                (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO)
                    if data_len >= size_of::<libc::in6_pktinfo>() =>
                {
                    let p = std::ptr::read_unaligned(data.cast::<libc::in6_pktinfo>());
                    d.ifindex = Some(p.ipi6_ifindex);
                    d.dst = Some(IpAddr::V6(Ipv6Addr::from(p.ipi6_addr.s6_addr)));
                }
                _ => {}
            }
            cmsg = libc::CMSG_NXTHDR(&raw const msg, cmsg);
        }
    }
    Ok(d)
}
