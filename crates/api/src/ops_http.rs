//! Prometheus text-format helpers of the daemons' metrics renderers.
//!
//! The operations HTTP server (`/metrics`, `/healthz`, `/readyz`) lives in
//! `ferrolb_runtime::ops_http`, which re-exports [`escape_label_value`]; the escaper stays here
//! because the metrics renderers of both daemons depend on it without needing the server.

/// Escapes a label value for the Prometheus text exposition format (backslash, double quote,
/// newline), so a pool or Service name can never break a metrics line.
pub fn escape_label_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
        assert_eq!(escape_label_value("plain"), "plain");
    }
}
