//! Service annotations.
