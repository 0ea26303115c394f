//! The one directory watcher both daemons use: reloads files or directories when they change
//! and hands each result over a channel, keeping none of it.
//!
//! ```text
//!  inotify (notify crate) ──try_send(())──▶ mpsc(1) ─┐   poll ticker (fallback, `poll`)
//!                                                    ▼        ▼
//!                       settle (`debounce` quiet, at most MAX_SETTLE) ─▶ fingerprint
//!                         unchanged: nothing │ changed: FileCache::load (blocking pool)
//!                                            ▼
//!                              tx.send(Loaded) ─▶ consumer (owns and drops it)
//! ```
//!
//! *Expected flow*: the first load is sent at once. Afterwards a file system event (create,
//! write, rename, delete; our own reads are ignored) starts a short settle period so a burst of
//! writes gives one reload; then the cheap [`fingerprint`] decides whether anything a load reads
//! changed, and only then is [`FileCache::load`] run, parsing only the changed files.
//!
//! *Guarantees*
//! - **Hand-off**: each result is sent and forgotten; the watcher keeps only the per-file
//!   cache (compact JSON, about the size of the YAML), never the parsed snapshot.
//! - **Unavailable is not empty**: a path that cannot be listed or a file that cannot be read
//!   or parsed is sent as `Err(LoadError)`; an empty result only ever means the files hold no
//!   objects. A failure is sent once per change of the fingerprint, not on every tick.
//! - **Fallback**: the fingerprint is also checked every `poll`, so a lost or impossible inotify
//!   watch (no inotify, watch limit reached, directory replaced, network file system) delays a
//!   change by at most `poll`. The inotify watch is re-armed whenever the paths become
//!   readable again after an error (a directory removed and created again).
//! - Returns when the receiver is dropped. Every queue is bounded: events coalesce into a
//!   one-slot channel, and a slow consumer blocks the watcher, which then reloads once.
//!
//! *Assumptions*: files are replaced atomically (write a hidden sibling, rename it over), as
//! config management does; a half-written file is a parse error until its last write, i.e. a
//! short outage, after which the next event or tick reloads it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{EventKind, RecursiveMode, Watcher as _};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{fingerprint, FileCache, FileModel, Fingerprint, LoadError};
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
    /// Quiet time after the last file system event before reloading, so a burst of writes
    /// gives one reload.
    pub debounce: Duration,
}

impl Default for WatchOptions {
    /// 250 ms polling fallback, 10 ms debounce: an event is acted on within ~10 ms plus the load.
    fn default() -> Self {
        Self {
            poll: Duration::from_millis(250),
            debounce: Duration::from_millis(10),
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
    let mut cache = FileCache::<M>::default();
    let mut last: Option<Result<Fingerprint, String>> = None;
    let mut ticker = tokio::time::interval(opts.poll.max(Duration::from_millis(1)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Set after re-arming: changes between the last fingerprint and the new watch sent no event.
    let mut recheck = false;
    loop {
        if watcher.is_none() {
            watcher = arm(&paths, event_tx.clone(), &mut said_polling);
        }
        if !std::mem::take(&mut recheck) {
            tokio::select! {
                () = tx.closed() => return,
                Some(()) = events.recv() => settle(&mut events, opts.debounce).await,
                _ = ticker.tick() => {}
            }
        }
        let p = paths.clone();
        let Ok(fp) = tokio::task::spawn_blocking(move || fingerprint(&p)).await else {
            continue;
        };
        let fp_key = fp.as_ref().map(Clone::clone).map_err(ToString::to_string);
        if last.as_ref() == Some(&fp_key) {
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
                let (back, loaded) = match tokio::task::spawn_blocking(move || {
                    let loaded = cache.load(&fp);
                    (cache, loaded)
                })
                .await
                {
                    Ok(done) => done,
                    // The load panicked: a bug, but not a reason to stop watching.
                    Err(join) => {
                        tracing::error!(bug = true, error = %join, "file load task failed");
                        last = None;
                        (
                            FileCache::default(),
                            Err(LoadError::Io {
                                path: paths.first().cloned().unwrap_or_default(),
                                source: std::io::Error::other(join.to_string()),
                            }),
                        )
                    }
                };
                cache = back;
                loaded
            }
        };
        if tx.send(T::from(loaded)).await.is_err() {
            return;
        }
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
