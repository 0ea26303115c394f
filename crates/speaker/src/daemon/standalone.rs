//! Standalone source: a directory of Kubernetes YAML, watched by the file watcher shared with
//! the controller, [`ferrolb_api::source::files::watch_paths`]: inotify events reload within
//! milliseconds (a burst of writes gives one reload), `--poll-ms` is the fallback period, a
//! changed file is applied once it held still for `--settle-ms`, files over `--max-file-bytes`
//! / `--max-dir-bytes` are a source error, and only the files whose stamp changed are parsed
//! again. Loads build the speaker's
//! [`Inputs`]: Services and EndpointSlices are reduced document by document, and the cache
//! keeps the reduced objects.
//!
//! Each load is handed to the reconcile loop and not kept here. Any failure to list or read the
//! directory or to parse a file becomes [`SourceUpdate::Unavailable`], which keeps the last good
//! state: only a readable directory that no longer holds an object withdraws it.

use std::path::PathBuf;

use ferrolb_api::source::files::{watch_files, WatchOptions};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::channels::SourceUpdate;
use crate::inputs::Inputs;

/// Watches `dir` with `opts` until `cancel` or until the receiver is gone.
pub async fn watch_dir(
    dir: PathBuf,
    opts: WatchOptions,
    tx: mpsc::Sender<SourceUpdate>,
    cancel: CancellationToken,
) {
    tokio::select! {
        () = watch_files::<Inputs, _>(vec![dir], opts, tx) => {}
        () = cancel.cancelled() => {}
    }
}
