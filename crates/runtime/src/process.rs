//! Process-wide resources: the open-files limit and giving freed heap back to the OS.

/// `RLIMIT_NOFILE`, the open-files limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NofileLimit {
    /// The limit in force (what `open`, `accept`, `socket` fail against with `EMFILE`).
    pub soft: u64,
    /// The ceiling an unprivileged process may raise `soft` to.
    pub hard: u64,
}

/// The current open-files limit.
pub fn nofile_limit() -> std::io::Result<NofileLimit> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass and reads nothing else.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(NofileLimit {
        soft: lim.rlim_cur,
        hard: lim.rlim_max,
    })
}

/// Raises the soft open-files limit to the hard one, as Go's runtime does for every Go program
/// since Go 1.19 (so MetalLB's daemons run with it). The common default soft limit of 1024 is
/// a leftover of `select(2)`, which neither daemon uses; a daemon with many BGP sessions, watch
/// streams and scrapes should not hit `EMFILE` while the hard limit allows more. Returns the
/// limit now in force.
pub fn raise_nofile_limit() -> std::io::Result<NofileLimit> {
    let now = nofile_limit()?;
    if now.soft >= now.hard {
        return Ok(now);
    }
    let lim = libc::rlimit {
        rlim_cur: now.hard,
        rlim_max: now.hard,
    };
    // SAFETY: setrlimit reads the struct we pass; raising the soft limit up to the hard one is
    // always permitted and affects only this process.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    nofile_limit()
}

/// [`raise_nofile_limit`], logging the outcome: what a daemon calls first thing at start.
pub fn raise_nofile_limit_logged() {
    match raise_nofile_limit() {
        Ok(limit) => tracing::info!(soft = limit.soft, hard = limit.hard, "open-files limit"),
        Err(error) => tracing::warn!(%error, "cannot raise the open-files limit; keeping it"),
    }
}

/// Hands heap freed after a burst (a snapshot, a flood of connections) back to the OS. glibc
/// keeps freed memory mapped in its arenas, so without this RSS stays at the peak. Walks every
/// free chunk of every arena: call it after bursts, not per event.
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free heap pages; it touches no live allocation and is
    // thread-safe in glibc.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raising_reaches_the_hard_limit_and_never_lowers() {
        let before = nofile_limit().expect("getrlimit");
        let after = raise_nofile_limit().expect("setrlimit");
        assert_eq!(after.hard, before.hard);
        assert_eq!(after.soft, before.hard);
        assert_eq!(raise_nofile_limit().expect("again"), after, "idempotent");
    }
}
