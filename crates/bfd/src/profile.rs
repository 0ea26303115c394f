//! [`BfdProfile`]: MetalLB's BFDProfile (`metallb.io/v1beta1`, `spec`) as plain values, with
//! MetalLB's defaults and ranges. No Kubernetes types: the speaker translates its config.

use std::time::Duration;

/// The timers and modes of one BFD session, as MetalLB's BFDProfile spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BfdProfile {
    /// `receiveInterval`: the shortest interval between received Control packets this system
    /// can handle (bfd.RequiredMinRxInterval). MetalLB: 10-60000 ms, default 300 ms.
    pub receive_interval: Duration,
    /// `transmitInterval`: the interval this system wants to send at, before jitter
    /// (bfd.DesiredMinTxInterval once Up). MetalLB: 10-60000 ms, default 300 ms.
    pub transmit_interval: Duration,
    /// `detectMultiplier`: bfd.DetectMult. MetalLB: 2-255, default 3.
    pub detect_multiplier: u8,
    /// `echoInterval`: accepted and ignored, Echo is not implemented (we advertise Required
    /// Min Echo RX Interval 0, RFC 5880 §6.8.7, so the peer sends no Echo packets). MetalLB:
    /// 10-60000 ms, default 50 ms.
    pub echo_interval: Duration,
    /// `echoMode`: accepted and ignored, Echo is not implemented; the speaker warns.
    pub echo_mode: bool,
    /// `passiveMode`: RFC 5880 §6.1 Passive role, send nothing until the peer's first packet.
    pub passive_mode: bool,
    /// `minimumTtl`: multihop sessions only (RFC 5883 §2), the smallest TTL / hop limit a
    /// received packet may carry. MetalLB: 1-254, default 254.
    pub minimum_ttl: u8,
}

impl Default for BfdProfile {
    /// MetalLB's defaults (BFDProfile CRD and FRR's).
    fn default() -> Self {
        BfdProfile {
            receive_interval: Duration::from_millis(300),
            transmit_interval: Duration::from_millis(300),
            detect_multiplier: 3,
            echo_interval: Duration::from_millis(50),
            echo_mode: false,
            passive_mode: false,
            minimum_ttl: 254,
        }
    }
}

/// A profile value outside MetalLB's CRD ranges.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("BFD profile field {field}: {value} is out of range ({accepted})")]
pub struct ProfileError {
    /// The CRD field name (`receiveInterval`, ...).
    pub field: &'static str,
    /// The rejected value, as written.
    pub value: String,
    /// What is accepted.
    pub accepted: &'static str,
}

impl BfdProfile {
    /// Checks the ranges of MetalLB's BFDProfile CRD.
    pub fn validate(&self) -> Result<(), ProfileError> {
        let ms = |field, d: Duration| {
            let v = d.as_millis();
            if (10..=60_000).contains(&v) && d.subsec_nanos().is_multiple_of(1_000_000) {
                Ok(())
            } else {
                Err(ProfileError {
                    field,
                    value: format!("{d:?}"),
                    accepted: "10-60000 whole milliseconds",
                })
            }
        };
        ms("receiveInterval", self.receive_interval)?;
        ms("transmitInterval", self.transmit_interval)?;
        ms("echoInterval", self.echo_interval)?;
        if self.detect_multiplier < 2 {
            return Err(ProfileError {
                field: "detectMultiplier",
                value: self.detect_multiplier.to_string(),
                accepted: "2-255",
            });
        }
        if !(1..=254).contains(&self.minimum_ttl) {
            return Err(ProfileError {
                field: "minimumTtl",
                value: self.minimum_ttl.to_string(),
                accepted: "1-254",
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_metallbs() {
        let p = BfdProfile::default();
        assert_eq!(p.receive_interval, Duration::from_millis(300));
        assert_eq!(p.transmit_interval, Duration::from_millis(300));
        assert_eq!(p.detect_multiplier, 3);
        assert_eq!(p.echo_interval, Duration::from_millis(50));
        assert!(!p.echo_mode && !p.passive_mode);
        assert_eq!(p.minimum_ttl, 254);
        assert_eq!(p.validate(), Ok(()));
    }

    #[test]
    fn values_outside_the_crd_ranges_are_rejected_naming_the_field() {
        let rows: [(&str, BfdProfile); 6] = [
            (
                "receiveInterval",
                BfdProfile {
                    receive_interval: Duration::from_millis(9),
                    ..Default::default()
                },
            ),
            (
                "transmitInterval",
                BfdProfile {
                    transmit_interval: Duration::from_millis(60_001),
                    ..Default::default()
                },
            ),
            (
                "transmitInterval",
                BfdProfile {
                    transmit_interval: Duration::from_micros(10_500),
                    ..Default::default()
                },
            ),
            (
                "echoInterval",
                BfdProfile {
                    echo_interval: Duration::ZERO,
                    ..Default::default()
                },
            ),
            (
                "detectMultiplier",
                BfdProfile {
                    detect_multiplier: 1,
                    ..Default::default()
                },
            ),
            (
                "minimumTtl",
                BfdProfile {
                    minimum_ttl: 255,
                    ..Default::default()
                },
            ),
        ];
        for (field, p) in rows {
            assert_eq!(p.validate().map_err(|e| e.field), Err(field));
        }
    }
}
