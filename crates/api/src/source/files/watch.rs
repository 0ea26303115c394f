//! The one directory watcher both daemons use: reloads files or directories when they change
//! and hands each result over a channel, keeping none of it.
//!
//! ```text
//!  inotify (notify crate) ──try_send(())──▶ mpsc(1) ─┐   poll ticker (fallback, `poll`)
//!                                                    ▼        ▼        settle due (pending files)
//!                       debounce (`debounce` quiet, at most MAX_SETTLE) ─▶ fingerprint ◀─┘
//!                          settle: a file changed or removed less than `settle` ago
//!                          counts as its last loaded version ─▶ the fingerprint to load
//!                         unchanged: nothing │ changed: FileCache::load (blocking pool)
//!                                            ▼
//!                              tx.send(Loaded) ─▶ consumer (owns and drops it)
//! ```
//!
//! *Expected flow*: the first load is sent at once. Afterwards a file system event (create,
//! write, rename, delete; our own reads are ignored) starts a short debounce so a burst of
//! writes gives one check; then the cheap [`fingerprint`](super::fingerprint) tells which files changed. A file
//! whose stamp changed (or that appeared, or disappeared) is *pending* until its new state has
//! been seen unchanged for `settle`; meanwhile a load uses the version it loaded last (kept in
//! the [`FileCache`]), a new file is left out and a removed one stays. Once settled,
//! [`FileCache::load`] parses only the changed files.
//!
//! *Guarantees*
//! - **Settling**: no content is read from a file less than `settle` after the watcher first
//!   saw its current stamp, and no removal is applied less than `settle` after it was first
//!   seen. So a file rewritten in place (truncated, then written in pieces) or removed and
//!   created again within `settle` never yields a snapshot with part of it: it is a change,
//!   not a delete followed by an add. The cost is latency: every change is applied `settle`
//!   (default 500 ms) plus the debounce and the load after its last write.
//! - **Hand-off**: each result is sent and forgotten; the watcher keeps only the per-file
//!   cache (compact JSON, about the size of the YAML), never the parsed snapshot.
//! - **Unavailable is not empty**: a path that cannot be listed or a file that cannot be read
//!   or parsed, or is over the [`Limits`], is sent as `Err(LoadError)`; an empty result only
//!   ever means the files hold no objects. A failure is sent once per change of what would be
//!   loaded, not on every tick.
//! - **Bounded input**: the [`Limits`] are checked on the stamps before anything is read, and
//!   reads stop one byte past the limit; a file still being copied is pending, not read.
//! - **Fallback**: the fingerprint is also checked every `poll`, so a lost or impossible inotify
//!   watch (no inotify, watch limit reached, directory replaced, network file system) delays a
//!   change by at most `poll`. The inotify watch is re-armed whenever the paths become
//!   readable again after an error (a directory removed and created again).
//! - Symlink loops are skipped and logged at WARN once per path, again only if the link changes.
//! - Returns when the receiver is dropped. Every queue is bounded: events coalesce into a
//!   one-slot channel, and a slow consumer blocks the watcher, which then reloads once.
//!
//! *Caveats*: the first load is not settled (there is no older version to hand out). A file
//! written more slowly than `settle` between two writes (a pause longer than `settle` in the
//! middle) can still be loaded half-written: a parse error, or valid but partial YAML.
//! A file rewritten more often than every `settle` is never loaded again: its last loaded
//! version stays (other files still apply; [`MAX_SETTLE`] only bounds the event debounce).
//! A file that changes again between its last check and its read is read in its newer state
//! and loaded again on the next check (never a stale result).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{EventKind, RecursiveMode, Watcher as _};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{
    fingerprint_scan, warn_loop, FileCache, FileModel, FileStamp, Fingerprint, Limits, LoadError,
    SymlinkLoop,
};
use crate::source::Resources;

/// One load result: the whole current content, or why the source is unavailable.
pub type Loaded<M = Resources> = Result<M, LoadError>;

/// A burst of events longer than this still reloads (once per `MAX_SETTLE`): config management
/// writing files continuously must not starve the reload.
pub const MAX_SETTLE: Duration = Duration::from_millis(100);

/// How [`watch_paths`] watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchOptions {
    /// Fallback period: the fingerprint is checked this often even without events.
    pub poll: Duration,
    /// Quiet time after the last file system event before checking, so a burst of writes
    /// gives one check.
    pub debounce: Duration,
    /// How long a file's new state (changed, new, removed) must stay unchanged before it is
    /// loaded (module doc, *Settling*): longer than any pause inside one rewrite of a file.
    pub settle: Duration,
    /// Size limits of what a load reads.
    pub limits: Limits,
}

impl WatchOptions {
    /// Default of [`WatchOptions::settle`], milliseconds (`--settle-ms` of both daemons).
    pub const DEFAULT_SETTLE_MS: u64 = 500;
}

impl Default for WatchOptions {
    /// 250 ms polling fallback, 10 ms debounce, 500 ms settle, default [`Limits`]: a change is
    /// loaded ~0.5 s after its last write, plus the load.
    fn default() -> Self {
        Self {
            poll: Duration::from_millis(250),
            debounce: Duration::from_millis(10),
            settle: Duration::from_millis(Self::DEFAULT_SETTLE_MS),
            limits: Limits::default(),
        }
    }
}

/// Watches `paths` (files or directories, as [`super::load_paths`] takes them) and sends every
/// new load result on `tx` as `T::from(loaded)`, the first one immediately. Returns when the
/// receiver is gone. File reads and parsing run on the blocking pool.
///
/// ```no_run
/// # async fn demo() {
/// use ferrolb_api::source::files::{watch_paths, Loaded, WatchOptions};
/// let (tx, mut rx) = tokio::sync::mpsc::channel::<Loaded>(1);
/// tokio::spawn(watch_paths(vec!["/etc/ferrolb".into()], WatchOptions::default(), tx));
/// while let Some(loaded) = rx.recv().await {
///     match loaded {
///         Ok(resources) => { /* compute from it, then drop it */ }
///         Err(error) => { /* keep the last good state; report the error */ }
///     }
/// }
/// # }
/// ```
pub async fn watch_paths<T>(paths: Vec<PathBuf>, opts: WatchOptions, tx: mpsc::Sender<T>)
where
    T: From<Loaded> + Send + 'static,
{
    watch_files::<Resources, T>(paths, opts, tx).await
}

/// [`watch_paths`] for any [`FileModel`]: each load builds an `M` (the speaker's reduced
/// inputs, say) instead of a [`Resources`].
pub async fn watch_files<M, T>(paths: Vec<PathBuf>, opts: WatchOptions, tx: mpsc::Sender<T>)
where
    M: FileModel + Send + 'static,
    M::Kept: Send + 'static,
    T: From<Loaded<M>> + Send + 'static,
{
    let (event_tx, mut events) = mpsc::channel::<()>(1);
    let mut watcher: Option<notify::RecommendedWatcher> = None;
    // Logged once: without inotify every tick would try again and say so.
    let mut said_polling = false;
    let mut cache = FileCache::<M>::with_limits(opts.limits);
    let mut settler = Settler::new(opts.settle);
    let mut loops = LoopWarnings::default();
    // The key of the last result sent: what was loaded, or the error's text.
    let mut last: Option<Result<Fingerprint, String>> = None;
    // What the last successful result loaded.
    let mut last_ok: Option<Fingerprint> = None;
    let mut ticker = tokio::time::interval(opts.poll.max(Duration::from_millis(1)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Set after re-arming: changes between the last fingerprint and the new watch sent no event.
    let mut recheck = false;
    loop {
        if watcher.is_none() {
            watcher = arm(&paths, event_tx.clone(), &mut said_polling);
        }
        if !std::mem::take(&mut recheck) {
            let due = settler.due(Instant::now());
            tokio::select! {
                () = tx.closed() => return,
                Some(()) = events.recv() => settle(&mut events, opts.debounce).await,
                _ = ticker.tick() => {}
                () = sleep_until(due) => {}
            }
        }
        let p = paths.clone();
        let Ok(scanned) = tokio::task::spawn_blocking(move || fingerprint_scan(&p)).await else {
            continue;
        };
        let fp = scanned.map(|(current, found)| {
            loops.report(found);
            settler.effective(&paths, &current, &cache.stamps(), Instant::now())
        });
        let fp_key = fp.as_ref().map(Clone::clone).map_err(ToString::to_string);
        if last.as_ref() == Some(&fp_key) {
            continue;
        }
        if settler.waiting() && fp_key.as_ref().ok() == last_ok.as_ref() {
            // Back from an outage to the last good files while a change is still settling:
            // nothing new to hand out until it has.
            continue;
        }
        let was_unavailable = matches!(last, Some(Err(_)));
        last = Some(fp_key);
        let loaded = match fp {
            Err(error) => {
                // The watched inode may be gone (directory removed or moved away): watch the
                // path again once it is back.
                watcher = None;
                Err(error)
            }
            Ok(fp) => {
                if was_unavailable {
                    // Back after an outage: the watch may be on the parent of a directory
                    // that was missing, or on a removed inode. Close it first, watch anew,
                    // and look once more for what changed before the new watch existed.
                    drop(watcher.take());
                    watcher = arm(&paths, event_tx.clone(), &mut said_polling);
                    recheck = true;
                }
                let checked = opts.limits.check(&paths, &fp);
                let (back, loaded) = match tokio::task::spawn_blocking(move || {
                    let loaded = checked.and_then(|()| cache.load(&fp)).map(|m| (m, fp));
                    (cache, loaded)
                })
                .await
                {
                    Ok(done) => done,
                    // The load panicked: a bug, but not a reason to stop watching.
                    Err(join) => {
                        tracing::error!(bug = true, error = %join, "file load task failed");
                        last = None;
                        // The older versions are gone with the cache: load what is there.
                        settler.restart();
                        (
                            FileCache::with_limits(opts.limits),
                            Err(LoadError::Io {
                                path: paths.first().cloned().unwrap_or_default(),
                                source: std::io::Error::other(join.to_string()),
                            }),
                        )
                    }
                };
                cache = back;
                loaded.map(|(m, fp)| {
                    settler.loaded();
                    last_ok = Some(fp);
                    m
                })
            }
        };
        if tx.send(T::from(loaded)).await.is_err() {
            return;
        }
    }
}

/// Sleeps until `due`, or forever without one.
async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

/// Which files' new states have been seen for long enough to be loaded (module doc,
/// *Settling*). Pure bookkeeping: the caller gives the time and the stamps.
#[derive(Debug)]
struct Settler {
    settle: Duration,
    /// Whether something was loaded: before that (and after the cache was lost) there is no
    /// older version to hand out, and everything is loaded at once.
    primed: bool,
    /// Files whose current state (stamp, `None`: absent) differs from the version loaded last,
    /// with when that state was first seen.
    pending: BTreeMap<PathBuf, (Option<FileStamp>, Instant)>,
}

impl Settler {
    fn new(settle: Duration) -> Self {
        Self {
            settle,
            primed: false,
            pending: BTreeMap::new(),
        }
    }

    /// The fingerprint to load now: `current` (in its order), except that a file whose state
    /// was first seen less than `settle` before `now` counts in the state `held` (the stamps
    /// the cache holds, i.e. loaded last): a changed file as its older stamp, a new file not
    /// at all, a removed file still there. `roots` orders a removed file back in place.
    fn effective(
        &mut self,
        roots: &[PathBuf],
        current: &Fingerprint,
        held: &BTreeMap<PathBuf, FileStamp>,
        now: Instant,
    ) -> Fingerprint {
        if !self.primed {
            self.pending.clear();
            return current.clone();
        }
        let mut pending = BTreeMap::new();
        let mut note = |path: &PathBuf, state: Option<FileStamp>| -> bool {
            let since = match self.pending.get(path) {
                Some((seen, since)) if *seen == state => *since,
                _ => now,
            };
            pending.insert(path.clone(), (state, since));
            now.saturating_duration_since(since) >= self.settle
        };
        let mut out = Vec::with_capacity(current.len());
        for (path, stamp) in current {
            let old = held.get(path);
            if old == Some(stamp) || note(path, Some(*stamp)) {
                out.push((path.clone(), *stamp));
            } else if let Some(old) = old {
                out.push((path.clone(), *old));
            }
        }
        let listed: std::collections::BTreeSet<&PathBuf> = current.iter().map(|(p, _)| p).collect();
        let mut kept_removed = false;
        for (path, old) in held {
            if !listed.contains(path) && !note(path, None) {
                out.push((path.clone(), *old));
                kept_removed = true;
            }
        }
        if kept_removed {
            // Where the load order puts it: by watched path, then path order within it.
            let root_of = |p: &Path| {
                roots
                    .iter()
                    .position(|r| p.starts_with(r))
                    .unwrap_or(usize::MAX)
            };
            out.sort_by(|(a, _), (b, _)| (root_of(a), a).cmp(&(root_of(b), b)));
        }
        self.pending = pending;
        out
    }

    /// Whether a file's new state is still settling.
    fn waiting(&self) -> bool {
        !self.pending.is_empty()
    }

    /// When the next pending state will have settled, if any is still settling at `now`.
    fn due(&self, now: Instant) -> Option<Instant> {
        self.pending
            .values()
            .map(|(_, since)| *since + self.settle)
            .filter(|due| *due > now)
            .min()
    }

    /// A load succeeded: from now on changes settle.
    fn loaded(&mut self) {
        self.primed = true;
    }

    /// The cache was lost: load what is there, as at the start.
    fn restart(&mut self) {
        self.primed = false;
        self.pending.clear();
    }
}

/// The symlink loops already logged, with their targets: each is logged once, and again only
/// when its target changes or it comes back after going away.
#[derive(Debug, Default)]
struct LoopWarnings(BTreeMap<PathBuf, PathBuf>);

impl LoopWarnings {
    fn report(&mut self, found: Vec<SymlinkLoop>) {
        let mut now = BTreeMap::new();
        for l in found {
            if self.0.get(&l.path) != Some(&l.target) {
                warn_loop(&l);
            }
            now.insert(l.path, l.target);
        }
        self.0 = now;
    }
}

/// Waits until no event came for `quiet`, or [`MAX_SETTLE`] passed.
async fn settle(events: &mut mpsc::Receiver<()>, quiet: Duration) {
    let deadline = Instant::now() + MAX_SETTLE;
    // Bounded: every iteration consumes an event or ends, and the deadline ends it anyway.
    loop {
        let until = (Instant::now() + quiet).min(deadline);
        match tokio::time::timeout_at(until, events.recv()).await {
            Ok(Some(())) if Instant::now() < deadline => continue,
            _ => return,
        }
    }
}

/// An inotify watch on `paths`: directories recursively, a file through its parent directory
/// (an atomic rename replaces the file's inode, so a watch on the file itself would be lost).
/// `None` when it cannot be set up; polling then covers (said once, at warn).
fn arm(
    paths: &[PathBuf],
    events: mpsc::Sender<()>,
    said_polling: &mut bool,
) -> Option<notify::RecommendedWatcher> {
    let handler = move |event: notify::Result<notify::Event>| {
        // Our own reads (open, close without write) are not changes.
        if let Ok(event) = &event {
            if matches!(event.kind, EventKind::Access(_)) {
                return;
            }
        }
        // Full means a check is already due: events coalesce.
        let _ = events.try_send(());
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(watcher) => watcher,
        Err(error) => {
            if !std::mem::replace(said_polling, true) {
                tracing::warn!(%error, "no file system notifications; polling only");
            }
            return None;
        }
    };
    for path in paths {
        let (target, mode) = if path.is_dir() {
            (path.as_path(), RecursiveMode::Recursive)
        } else {
            let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
            (
                parent.unwrap_or(Path::new(".")),
                RecursiveMode::NonRecursive,
            )
        };
        if let Err(error) = watcher.watch(target, mode) {
            tracing::debug!(%error, path = %target.display(), "not watched; polling covers it");
            return None;
        }
    }
    Some(watcher)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends one event at each of `at` (milliseconds after the start).
    fn burst(at: &'static [u64]) -> mpsc::Receiver<()> {
        let (tx, rx) = mpsc::channel(1);
        tokio::spawn(async move {
            let start = Instant::now();
            for ms in at {
                tokio::time::sleep_until(start + Duration::from_millis(*ms)).await;
                let _ = tx.send(()).await;
            }
            // Keep the sender alive so the receiver does not see a close.
            tokio::time::sleep(Duration::from_secs(3600)).await;
        });
        rx
    }

    fn stamp(len: u64) -> FileStamp {
        FileStamp {
            len,
            modified: None,
            inode: len,
        }
    }

    fn fp(files: &[(&str, u64)]) -> Fingerprint {
        files
            .iter()
            .map(|(p, len)| (PathBuf::from(p), stamp(*len)))
            .collect()
    }

    fn held(files: &[(&str, u64)]) -> BTreeMap<PathBuf, FileStamp> {
        fp(files).into_iter().collect()
    }

    const S: Duration = Duration::from_millis(500);

    #[test]
    fn before_the_first_load_everything_is_loaded_at_once() {
        let mut s = Settler::new(S);
        let now = Instant::now();
        let cur = fp(&[("/d/a.yaml", 1)]);
        assert_eq!(s.effective(&[], &cur, &held(&[]), now), cur);
        assert!(!s.waiting());
    }

    #[test]
    fn a_changed_file_counts_as_its_older_version_until_its_new_stamp_held_for_settle() {
        let roots = [PathBuf::from("/d")];
        let mut s = Settler::new(S);
        s.loaded();
        let t0 = Instant::now();
        let old = held(&[("/d/a.yaml", 1), ("/d/b.yaml", 1)]);
        let partial = fp(&[("/d/a.yaml", 1), ("/d/b.yaml", 2)]);
        let whole = fp(&[("/d/a.yaml", 1), ("/d/b.yaml", 3)]);
        let older = fp(&[("/d/a.yaml", 1), ("/d/b.yaml", 1)]);
        assert_eq!(s.effective(&roots, &partial, &old, t0), older);
        assert_eq!(s.due(t0), Some(t0 + S));
        // Completed 100 ms later: the window starts again.
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(s.effective(&roots, &whole, &old, t1), older);
        assert_eq!(s.effective(&roots, &whole, &old, t0 + S), older);
        assert_eq!(s.due(t0 + S), Some(t1 + S));
        assert_eq!(s.effective(&roots, &whole, &old, t1 + S), whole);
        assert_eq!(s.due(t1 + S), None, "settled: nothing more to wake for");
    }

    #[test]
    fn a_removal_is_applied_after_settle_and_a_quick_recreation_is_a_change() {
        let roots = [PathBuf::from("/d")];
        let mut s = Settler::new(S);
        s.loaded();
        let t0 = Instant::now();
        let old = held(&[("/d/a.yaml", 1), ("/d/b.yaml", 1), ("/d/c.yaml", 1)]);
        let all = fp(&[("/d/a.yaml", 1), ("/d/b.yaml", 1), ("/d/c.yaml", 1)]);
        let without_b = fp(&[("/d/a.yaml", 1), ("/d/c.yaml", 1)]);
        // Still there, in its place, during the window.
        assert_eq!(s.effective(&roots, &without_b, &old, t0), all);
        let t1 = t0 + Duration::from_millis(200);
        let recreated = fp(&[("/d/a.yaml", 1), ("/d/b.yaml", 2), ("/d/c.yaml", 1)]);
        assert_eq!(s.effective(&roots, &recreated, &old, t1), all);
        assert_eq!(s.effective(&roots, &recreated, &old, t1 + S), recreated);
        // A removal that lasts is applied once settled.
        let mut s = Settler::new(S);
        s.loaded();
        assert_eq!(s.effective(&roots, &without_b, &old, t0), all);
        assert_eq!(s.effective(&roots, &without_b, &old, t0 + S), without_b);
    }

    #[test]
    fn a_new_file_is_left_out_until_settled() {
        let mut s = Settler::new(S);
        s.loaded();
        let t0 = Instant::now();
        let old = held(&[("/d/a.yaml", 1)]);
        let cur = fp(&[("/d/a.yaml", 1), ("/d/b.yaml", 7)]);
        assert_eq!(s.effective(&[], &cur, &old, t0), fp(&[("/d/a.yaml", 1)]));
        assert!(s.waiting());
        assert_eq!(s.effective(&[], &cur, &old, t0 + S), cur);
    }

    #[tokio::test(start_paused = true)]
    async fn settle_waits_for_the_burst_to_go_quiet() {
        let mut rx = burst(&[0, 5, 10, 15]);
        assert_eq!(rx.recv().await, Some(()));
        let start = Instant::now();
        settle(&mut rx, Duration::from_millis(10)).await;
        // The last event at 15 ms, then 10 ms of quiet.
        assert_eq!(start.elapsed(), Duration::from_millis(25));
        assert!(rx.try_recv().is_err(), "the whole burst was consumed");
    }

    #[tokio::test(start_paused = true)]
    async fn settle_gives_up_on_an_endless_burst_after_max_settle() {
        let times: &'static [u64] = Box::leak(
            (0..1000)
                .map(|i| i * 5)
                .collect::<Vec<_>>()
                .into_boxed_slice(),
        );
        let mut rx = burst(times);
        assert_eq!(rx.recv().await, Some(()));
        let start = Instant::now();
        settle(&mut rx, Duration::from_millis(10)).await;
        assert_eq!(start.elapsed(), MAX_SETTLE);
    }
}
