//! SWIM timings for a LAN where a dead node must be noticed well under a second (pure).
//!
//! Detection time (SWIM paper, Das et al. 2002, §3 and §4.2): a dead member waits to be probed
//! (at most about one `probe_period` here, as every survivor probes round-robin), its direct
//! probe and the indirect ones get no ack within the period, it becomes Suspect, and after
//! `suspect_to_down_after` without a refutation it is Down; the Down update then reaches the
//! others on the next piggyback or `periodic_gossip` round. With the values below the sum is
//! about 100 + 100 + 300 + 30 ms ≈ 0.5 s worst case; measured figures are in docs/l2.md.
//!
//! The price is traffic: each speaker sends ~10 probes and ~33 gossip datagrams per second,
//! each well under 1400 octets. For the node counts of a Layer 2 segment that is negligible;
//! memberlist's LAN defaults (1 s probes, suspicion scaled by log(n)) detect in seconds.

use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

use foca::{Config, PeriodicParams};

/// How often each member probes one other.
pub const PROBE_PERIOD: Duration = Duration::from_millis(100);
/// How long a direct probe waits before asking others to probe indirectly.
pub const PROBE_RTT: Duration = Duration::from_millis(40);
/// Suspect → Down without a refutation.
pub const SUSPECT_TO_DOWN: Duration = Duration::from_millis(300);
/// How often updates are pushed to a few members besides piggybacking on probes.
pub const GOSSIP_PERIOD: Duration = Duration::from_millis(30);

/// foca's configuration for a cluster of `cluster_size` speakers.
pub fn foca_config(cluster_size: usize) -> Config {
    let size =
        NonZeroU32::new(u32::try_from(cluster_size).unwrap_or(u32::MAX)).unwrap_or(NonZeroU32::MIN);
    let mut config = Config::new_lan(size);
    config.probe_period = PROBE_PERIOD;
    config.probe_rtt = PROBE_RTT;
    config.num_indirect_probes = NonZeroUsize::new(2).unwrap_or(NonZeroUsize::MIN);
    config.suspect_to_down_after = SUSPECT_TO_DOWN;
    config.periodic_gossip = Some(PeriodicParams {
        frequency: GOSSIP_PERIOD,
        num_members: NonZeroUsize::new(3).unwrap_or(NonZeroUsize::MIN),
    });
    // Rejoin paths: announce to a random member every second (heals a partition quickly) and
    // to members believed down every two seconds (a restarted speaker with a new generation
    // also announces itself, so this is only the fallback).
    config.periodic_announce = Some(PeriodicParams {
        frequency: Duration::from_secs(1),
        num_members: NonZeroUsize::MIN,
    });
    config.periodic_announce_to_down_members = Some(PeriodicParams {
        frequency: Duration::from_secs(2),
        num_members: NonZeroUsize::new(2).unwrap_or(NonZeroUsize::MIN),
    });
    config
}

/// Worst-case time from a speaker's death to the survivors declaring it down, by the
/// reasoning in the module doc (not counting dissemination).
pub fn worst_case_detection() -> Duration {
    PROBE_PERIOD + PROBE_PERIOD + SUSPECT_TO_DOWN
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_is_well_under_a_second() {
        assert!(worst_case_detection() + GOSSIP_PERIOD < Duration::from_millis(600));
    }

    #[test]
    fn the_direct_probe_wait_fits_in_a_period() {
        // foca needs the indirect round to start before the next probe cycle.
        let c = foca_config(3);
        assert!(c.probe_rtt < c.probe_period);
        assert_eq!(c.suspect_to_down_after, SUSPECT_TO_DOWN);
    }

    #[test]
    fn any_cluster_size_gives_a_config() {
        for n in [0, 1, 3, 1000, usize::MAX] {
            let c = foca_config(n);
            assert!(c.max_transmissions.get() >= 1, "size {n}");
        }
    }
}
