//! The exact text both daemons log for a configuration, through the same `tracing` formatter
//! they install (`tracing_subscriber::fmt`, without ANSI colours; timestamps left out here).

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use ferrolb_api::state::{Applied, ConfigState};
use ferrolb_api::validate::IgnoredFieldsReport;
use ferrolb_runtime::config::apply_and_log;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn take_lines(&self) -> Vec<String> {
        let mut buf = self.0.lock().expect("lock");
        let text = String::from_utf8_lossy(&buf).into_owned();
        buf.clear();
        text.lines().map(str::to_string).collect()
    }
}

const BAD: &str = "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: broken, namespace: metallb-system}\nspec: {addresses: [not-a-cidr]}\n";
const GOOD: &str = "apiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: l2, namespace: metallb-system}\nspec: {preferredNodeSelectors: [{weight: 10, preference: {matchLabels: {zone: a}}}]}\n";

#[test]
fn the_configuration_lines_are_fixed_text() {
    let out = Captured::default();
    let sink = out.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .without_time()
        .finish();
    let load = |yaml: &str| {
        ferrolb_api::source::files::load_str(yaml, Path::new("t.yaml")).expect("loads")
    };
    let mut state = ConfigState::new();
    let mut ignored = IgnoredFieldsReport::new();
    tracing::subscriber::with_default(subscriber, || {
        assert_eq!(
            apply_and_log(&mut state, &mut ignored, &load(BAD)),
            Applied::Rejected
        );
        assert_eq!(
            out.take_lines(),
            vec![
                "ERROR ferrolb_runtime::config: configuration rejected; the last good one stays in force error=IPAddressPool metallb-system/broken: spec.addresses[0] = \"not-a-cidr\": invalid address range: invalid IP address \"not\"",
            ]
        );
        // The same rejection again: nothing.
        apply_and_log(&mut state, &mut ignored, &load(BAD));
        assert_eq!(out.take_lines(), Vec::<String>::new());

        assert_eq!(
            apply_and_log(&mut state, &mut ignored, &load(GOOD)),
            Applied::Changed
        );
        let lines = out.take_lines();
        assert_eq!(lines.len(), 2, "{lines:#?}");
        assert!(
            lines[0].starts_with(
                " WARN ferrolb_runtime::config: configuration field accepted but ignored ignored=L2Advertisement metallb-system/l2: spec.preferredNodeSelectors is ignored: "
            ),
            "{lines:#?}"
        );
        assert_eq!(
            lines[1],
            " INFO ferrolb_runtime::config: configuration put in force generation=1"
        );
        // Unchanged: nothing.
        apply_and_log(&mut state, &mut ignored, &load(GOOD));
        assert_eq!(out.take_lines(), Vec::<String>::new());
    });
}
