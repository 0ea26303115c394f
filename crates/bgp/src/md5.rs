//! TCP-MD5 signatures (RFC 2385) on Linux: the `tcp_md5sig` socket option.
//!
//! `libc` exports `TCP_MD5SIG` but not the structure the kernel expects, so it is defined here
//! after `include/uapi/linux/tcp.h`, with a layout test. A key is set per peer address, on the
//! connecting socket before `connect` and on the listening socket before `accept` (the kernel
//! checks the signature of the SYN itself; an unsigned or badly signed segment is dropped
//! silently, which is why a wrong password shows up as connect timeouts, not as an error).

#![allow(unsafe_code)]

use std::io;
use std::mem;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;

/// `TCP_MD5SIG_MAXKEYLEN` from `linux/tcp.h`.
pub const TCP_MD5SIG_MAXKEYLEN: usize = 80;

/// `struct tcp_md5sig` from `include/uapi/linux/tcp.h`:
///
/// ```text
/// struct tcp_md5sig {
///     struct __kernel_sockaddr_storage tcpm_addr;  /* 128 octets, 8-aligned */
///     __u8  tcpm_flags;
///     __u8  tcpm_prefixlen;
///     __u16 tcpm_keylen;
///     int   tcpm_ifindex;
///     __u8  tcpm_key[TCP_MD5SIG_MAXKEYLEN];
/// };
/// ```
#[repr(C)]
#[derive(Clone, Copy)]
pub struct TcpMd5Sig {
    /// The peer address (`sockaddr_in` or `sockaddr_in6` inside).
    pub tcpm_addr: libc::sockaddr_storage,
    /// `TCP_MD5SIG_FLAG_*`; 0 for a plain per-address key.
    pub tcpm_flags: u8,
    /// Prefix length (only with `TCP_MD5SIG_FLAG_PREFIX`).
    pub tcpm_prefixlen: u8,
    /// Key length; 0 deletes the key.
    pub tcpm_keylen: u16,
    /// Interface index (only with `TCP_MD5SIG_FLAG_IFINDEX`).
    pub tcpm_ifindex: libc::c_int,
    /// The key.
    pub tcpm_key: [u8; TCP_MD5SIG_MAXKEYLEN],
}

/// Why a key could not be set.
#[derive(Debug, thiserror::Error)]
pub enum Md5Error {
    /// The password is longer than the kernel accepts.
    #[error("TCP-MD5 password is {len} octets; at most {TCP_MD5SIG_MAXKEYLEN} are allowed")]
    KeyTooLong {
        /// The password length.
        len: usize,
    },
    /// `setsockopt(TCP_MD5SIG)` failed.
    #[error("setsockopt(TCP_MD5SIG) for peer {peer}: {source}")]
    Setsockopt {
        /// The peer the key was for.
        peer: IpAddr,
        /// The OS error.
        source: io::Error,
    },
}

impl TcpMd5Sig {
    /// The option value for `peer` with `key` (an empty key deletes the peer's key).
    pub fn new(peer: IpAddr, key: &[u8]) -> Result<Self, Md5Error> {
        if key.len() > TCP_MD5SIG_MAXKEYLEN {
            return Err(Md5Error::KeyTooLong { len: key.len() });
        }
        // SAFETY: sockaddr_storage and the rest are plain integers and arrays; all-zero is a
        // valid value for each.
        let mut sig: TcpMd5Sig = unsafe { mem::zeroed() };
        let sa = socket2::SockAddr::from(SocketAddr::new(peer, 0));
        // SAFETY: `sa.len()` never exceeds sizeof(sockaddr_storage); both pointers are valid
        // and do not overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(
                sa.as_ptr().cast::<u8>(),
                (&raw mut sig.tcpm_addr).cast::<u8>(),
                sa.len() as usize,
            );
        }
        sig.tcpm_keylen = u16::try_from(key.len()).unwrap_or(0);
        sig.tcpm_key
            .get_mut(..key.len())
            .ok_or(Md5Error::KeyTooLong { len: key.len() })?
            .copy_from_slice(key);
        Ok(sig)
    }
}

/// Sets (or with an empty `key`, deletes) the TCP-MD5 key for `peer` on `socket`.
pub fn set_md5_key(socket: &impl AsRawFd, peer: IpAddr, key: &[u8]) -> Result<(), Md5Error> {
    let sig = TcpMd5Sig::new(peer, key)?;
    // SAFETY: the fd is open for the duration of the call (borrowed); the pointer and length
    // describe `sig`, which lives across the call.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_MD5SIG,
            (&raw const sig).cast::<libc::c_void>(),
            mem::size_of::<TcpMd5Sig>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(Md5Error::Setsockopt {
            peer,
            source: io::Error::last_os_error(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_md5sig_layout_matches_the_kernel_header() {
        assert_eq!(mem::size_of::<TcpMd5Sig>(), 216);
        assert_eq!(mem::offset_of!(TcpMd5Sig, tcpm_addr), 0);
        assert_eq!(mem::offset_of!(TcpMd5Sig, tcpm_flags), 128);
        assert_eq!(mem::offset_of!(TcpMd5Sig, tcpm_prefixlen), 129);
        assert_eq!(mem::offset_of!(TcpMd5Sig, tcpm_keylen), 130);
        assert_eq!(mem::offset_of!(TcpMd5Sig, tcpm_ifindex), 132);
        assert_eq!(mem::offset_of!(TcpMd5Sig, tcpm_key), 136);
    }

    #[test]
    fn key_and_address_land_in_their_fields() {
        let sig = TcpMd5Sig::new("192.0.2.7".parse().expect("addr"), b"secret").expect("short key");
        assert_eq!(sig.tcpm_keylen, 6);
        assert_eq!(sig.tcpm_key.get(..6), Some(&b"secret"[..]));
        assert_eq!(i32::from(sig.tcpm_addr.ss_family), libc::AF_INET);
        let long = [b'x'; 81];
        assert!(matches!(
            TcpMd5Sig::new("::1".parse().expect("addr"), &long),
            Err(Md5Error::KeyTooLong { len: 81 })
        ));
    }

    #[test]
    fn kernel_accepts_the_structure_on_a_tcp_socket() {
        let sock = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        set_md5_key(&sock, "127.0.0.1".parse().expect("addr"), b"pw").expect("TCP_MD5SIG");
        set_md5_key(&sock, "127.0.0.1".parse().expect("addr"), b"").expect("delete key");
    }
}
