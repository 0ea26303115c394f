//! `ferrolb-controller convert FILE`: prints the metallb.io CRs equivalent to a legacy MetalLB
//! v0.12 configuration (a ConfigMap manifest, or the bare `config` text; `-` reads stdin) as
//! multi-document YAML on stdout. The result is validated; errors go to stderr, exit code 1.

use std::io::Read;

use anyhow::Context;
use ferrolb_api::legacy;
use ferrolb_api::validate::validate;

/// Runs the command on `args[0]`; returns the process exit code.
pub fn run(args: &[String]) -> anyhow::Result<i32> {
    let Some(file) = args.first() else {
        eprintln!("convert: give the ConfigMap file (or - for stdin)");
        return Ok(1);
    };
    let text = if file == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading stdin")?;
        s
    } else {
        match std::fs::read_to_string(file) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{file}: {e}");
                return Ok(1);
            }
        }
    };
    let converted = legacy::parse(&text).and_then(|(cfg, ns)| legacy::convert(&cfg, &ns));
    let res = match converted {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{file}: {e}");
            return Ok(1);
        }
    };
    print!("{}", legacy::to_yaml(&res)?);
    match validate(&res) {
        Ok(_) => Ok(0),
        Err(errors) => {
            let mut hard = 0;
            for e in &errors {
                if e.is_transient() {
                    eprintln!("warning: {e}");
                } else {
                    eprintln!("{e}");
                    hard += 1;
                }
            }
            Ok(if hard == 0 { 0 } else { 1 })
        }
    }
}
