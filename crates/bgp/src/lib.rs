//! ferrolb-bgp: see README.md.
