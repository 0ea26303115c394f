//! The seam between the [`crate::Responder`] and the network: a [`LinkOpener`] opens one
//! [`LinkSocket`] per interface. Production uses [`PacketLink`] (AF_PACKET + BPF via
//! [`crate::sys`]); tests can drive the responder with a test double instead.

use std::future::Future;
use std::io;

use tokio::io::unix::AsyncFd;

use crate::filter::ndp_arp_filter;
use crate::sys::{register, PacketSocket};
use crate::wire::MacAddr;

/// A link-layer socket on one interface that sees ARP requests and NS frames.
pub trait LinkSocket: Send + Sync + 'static {
    /// The interface MAC, used as the source of every reply and announcement.
    fn mac(&self) -> MacAddr;

    /// Waits for the next received frame, copies it into `buf` and returns its length on the
    /// wire (may exceed `buf.len()` when truncated). Must be cancel-safe: dropping the future
    /// loses no frame.
    fn recv(&self, buf: &mut [u8]) -> impl Future<Output = io::Result<usize>> + Send;

    /// Sends one complete Ethernet frame without waiting; a full queue is an error.
    fn send(&self, frame: &[u8]) -> io::Result<()>;

    /// Joins or leaves a link-layer multicast group (a solicited-node group's MAC).
    fn set_multicast(&self, group: MacAddr, join: bool) -> io::Result<()>;
}

/// Opens the [`LinkSocket`] of an interface.
pub trait LinkOpener: Send + Sync + 'static {
    /// The socket type.
    type Socket: LinkSocket;

    /// Opens a socket on `iface` (in the calling thread's network namespace, for real sockets).
    fn open(&self, iface: &str) -> io::Result<Self::Socket>;
}

/// Production [`LinkOpener`]: AF_PACKET sockets with the ARP-request/NS BPF filter.
#[derive(Debug, Clone, Copy, Default)]
pub struct PacketLink;

impl LinkOpener for PacketLink {
    type Socket = AsyncFd<PacketSocket>;

    fn open(&self, iface: &str) -> io::Result<Self::Socket> {
        let socket = PacketSocket::open(iface, &ndp_arp_filter()).map_err(io::Error::other)?;
        register(socket)
    }
}

impl LinkSocket for AsyncFd<PacketSocket> {
    fn mac(&self) -> MacAddr {
        self.get_ref().mac()
    }

    async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        // Each pass awaits readiness; a frame is taken only inside `try_io`, which runs to
        // completion within one poll, so dropping this future between passes loses nothing.
        loop {
            let mut guard = self.readable().await?;
            match guard.try_io(|s| s.get_ref().recv(buf)) {
                // Our own transmissions: the BPF filter and PACKET_IGNORE_OUTGOING drop them
                // already; this is the last line.
                Ok(Ok(got)) if got.outgoing => continue,
                Ok(Ok(got)) => return Ok(got.len),
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }

    fn send(&self, frame: &[u8]) -> io::Result<()> {
        self.get_ref().send(frame)
    }

    fn set_multicast(&self, group: MacAddr, join: bool) -> io::Result<()> {
        self.get_ref().set_multicast(group, join)
    }
}
