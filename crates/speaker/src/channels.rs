//! The types that travel on the channels between the speaker's tasks, kept apart from the
//! tasks themselves so that sources, the reconcile loop and the protocols depend on this
//! module and not on each other.

use ferrolb_api::source::Resources;

use crate::inputs::kept::WatchChanges;
use crate::inputs::{Inputs, LoadedInputs};

/// What a source reports.
#[derive(Debug, Clone)]
pub enum SourceUpdate {
    /// Standalone mode: everything the files hold now, diffed against what is kept.
    Snapshot(Box<Inputs>),
    /// Kubernetes mode: what the watches observed since the last update (nothing at all when
    /// the API answers again after an outage without a change).
    Changes(Box<WatchChanges>),
    /// The source cannot be read (directory gone, permission denied, a file does not parse, the
    /// API watch failed). Keeps the last good state.
    Unavailable(String),
}

/// "Protocol `.0` needs a recompute": sent by a protocol's own tasks when an input only it
/// reads changed (Layer 2: the gossip's live set), named by the protocol's `name()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wake(pub &'static str);

impl SourceUpdate {
    /// A snapshot of whole objects (the demo, tests), reduced to [`Inputs`].
    pub fn snapshot(res: Resources) -> Self {
        SourceUpdate::Snapshot(Box::new(Inputs::from_resources(res)))
    }
}

/// A file load: its objects, or the source unavailable.
impl From<LoadedInputs> for SourceUpdate {
    fn from(loaded: LoadedInputs) -> Self {
        match loaded {
            Ok(inputs) => SourceUpdate::Snapshot(Box::new(inputs)),
            Err(error) => SourceUpdate::Unavailable(error.to_string()),
        }
    }
}
