//! [`ConfigState`]: the last good [`Config`] and the current errors.
//!
//! Pure: feed it every validation result; the daemons compute from [`ConfigState::config`]
//! and export [`ConfigState::is_stale`] as the `ferrolb_config_stale` gauge (1 while the
//! newest configuration is rejected and an older one is in force).

use crate::error::ConfigError;
use crate::model::Config;

/// Last good configuration plus the errors of the newest one, if it was rejected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigState {
    last_good: Option<Config>,
    errors: Vec<ConfigError>,
    generation: u64,
}

/// What [`ConfigState::apply`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// A new, different configuration is now in force.
    Changed,
    /// The configuration is valid and equal to the one in force.
    Unchanged,
    /// The configuration was rejected; the previous one (if any) stays in force.
    Rejected,
}

impl ConfigState {
    /// No configuration yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one validation result.
    pub fn apply(&mut self, result: Result<Config, Vec<ConfigError>>) -> Applied {
        match result {
            Ok(config) => {
                self.errors.clear();
                if self.last_good.as_ref() == Some(&config) {
                    Applied::Unchanged
                } else {
                    self.last_good = Some(config);
                    self.generation += 1;
                    Applied::Changed
                }
            }
            Err(errors) => {
                self.errors = errors;
                Applied::Rejected
            }
        }
    }

    /// The configuration in force: the last valid one, or `None` before any was valid.
    pub fn config(&self) -> Option<&Config> {
        self.last_good.as_ref()
    }

    /// Errors of the newest configuration (empty when it was valid).
    pub fn errors(&self) -> &[ConfigError] {
        &self.errors
    }

    /// True while the newest configuration is rejected (also before any valid one arrived).
    pub fn is_stale(&self) -> bool {
        !self.errors.is_empty()
    }

    /// Counts configuration changes put in force (starts at 0, +1 per [`Applied::Changed`]).
    pub fn generation(&self) -> u64 {
        self.generation
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Reason;

    fn err() -> ConfigError {
        ConfigError {
            kind: "IPAddressPool".into(),
            namespace: "ns".into(),
            name: "p".into(),
            path: "spec.addresses[0]".into(),
            value: "x".into(),
            reason: Reason::Required,
        }
    }

    fn config_with_pool(name: &str) -> Config {
        let mut c = Config::default();
        c.pools.insert(
            name.into(),
            crate::model::Pool {
                name: name.into(),
                labels: Default::default(),
                ranges: vec![],
                auto_assign: true,
                avoid_buggy_ips: false,
                service_allocation: None,
            },
        );
        c
    }

    #[test]
    fn rejected_config_keeps_last_good_and_is_stale_until_a_valid_one_arrives() {
        let mut s = ConfigState::new();
        assert!(s.config().is_none());
        assert!(!s.is_stale());
        assert_eq!(s.apply(Err(vec![err()])), Applied::Rejected);
        assert!(s.is_stale());
        assert!(s.config().is_none());
        assert_eq!(s.apply(Ok(config_with_pool("a"))), Applied::Changed);
        assert!(!s.is_stale());
        assert_eq!(s.generation(), 1);
        assert_eq!(s.apply(Err(vec![err(), err()])), Applied::Rejected);
        assert!(s.is_stale());
        assert_eq!(s.errors().len(), 2);
        assert_eq!(s.config(), Some(&config_with_pool("a")));
        assert_eq!(s.apply(Ok(config_with_pool("a"))), Applied::Unchanged);
        assert!(!s.is_stale());
        assert!(s.errors().is_empty());
        assert_eq!(s.apply(Ok(config_with_pool("b"))), Applied::Changed);
        assert_eq!(s.generation(), 2);
        assert_eq!(s.config(), Some(&config_with_pool("b")));
    }

    #[test]
    fn error_displays_on_one_line_with_object_path_value_and_reason() {
        let line = err().to_string();
        assert_eq!(
            line,
            "IPAddressPool ns/p: spec.addresses[0] = \"x\": is required"
        );
        assert!(!line.contains('\n'));
    }
}
