//! ferrolb-arp: see README.md.
