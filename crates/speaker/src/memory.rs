//! Handing freed heap back to the operating system, shared by the reconcile loop (after a
//! snapshot) and the BGP backend (after a big batch of UPDATEs).

/// Hands the heap freed after a big transient allocation back to the OS. A snapshot of 10k
/// Services parses to ~31 MiB that is dropped once the plan is computed; glibc keeps such freed
/// peaks mapped, so RSS stayed at the peak (docs/speaker.md, "10k VIPs"). Run once per snapshot
/// and after a big batch of UPDATEs, not per event: it walks every free chunk.
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free heap pages; it touches no live allocation and is
    // thread-safe in glibc.
    unsafe {
        libc::malloc_trim(0);
    }
}
