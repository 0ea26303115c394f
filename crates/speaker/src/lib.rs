//! ferrolb-speaker: see README.md.
