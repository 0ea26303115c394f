//! `ferrolb-bgp decode`: BGP messages in, one JSON object per message out (see `json.rs` and
//! `crates/bgp/README.md` for the contract).
//!
//! Input is hex, one whole message per line (marker included; whitespace ignored; `#` starts a
//! comment), or with `--binary` raw messages back to back as on a TCP stream. The decoding
//! context starts from the flags; when two OPENs have been seen it becomes what they negotiate
//! (RFC 6793 §3, RFC 8654 §3, RFC 4760 §8), unless `--no-infer`.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::PathBuf;

use anyhow::Context as _;
use ferrolb_bgp::wire::{
    decode_message, parse_header, DecodeCtx, Families, Message, MessageError, MessageType, Open,
    HEADER_LEN,
};

use crate::json;

/// Arguments of `ferrolb-bgp decode`.
#[derive(Debug, clap::Args)]
pub struct DecodeArgs {
    /// Read raw messages back to back (e.g. a TCP payload) instead of hex lines.
    #[arg(long)]
    binary: bool,
    /// Add "reencoded": the message as FerroLB's encoder writes it (hex).
    #[arg(long)]
    reencode: bool,
    /// AS_PATH and AGGREGATOR carry 4-octet AS numbers (RFC 6793). The default.
    #[arg(long, overrides_with = "no_as4")]
    as4: bool,
    /// AS_PATH and AGGREGATOR carry 2-octet AS numbers (a peer without RFC 6793).
    #[arg(long, overrides_with = "as4")]
    no_as4: bool,
    /// Allow messages up to 65535 octets (RFC 8654) instead of 4096.
    #[arg(long)]
    extended_message: bool,
    /// Keep the context the flags give even after an OPEN pair in the input.
    #[arg(long)]
    no_infer: bool,
    /// Read this file instead of standard input.
    #[arg(value_name = "FILE")]
    input: Option<PathBuf>,
}

/// Runs `decode`; returns the exit status: 0 all well-formed, 1 some message malformed,
/// 2 some input line was not hex.
pub fn run(args: DecodeArgs) -> anyhow::Result<i32> {
    let input: Box<dyn Read> = match &args.input {
        Some(path) => {
            Box::new(File::open(path).with_context(|| format!("cannot open {}", path.display()))?)
        }
        None => Box::new(io::stdin().lock()),
    };
    let ctx = DecodeCtx {
        four_octet_as: !args.no_as4,
        extended_message: args.extended_message,
        families: Families::IPV4_IPV6_UNICAST,
    };
    let stdout = io::stdout().lock();
    let mut session = Session {
        ctx,
        infer: !args.no_infer,
        reencode: args.reencode,
        first_open: None,
        malformed: false,
        out: BufWriter::new(stdout),
    };
    let bad_input = if args.binary {
        session.binary(input)?;
        false
    } else {
        session.hex_lines(BufReader::new(input))?
    };
    session.out.flush().context("cannot write output")?;
    Ok(if bad_input {
        2
    } else if session.malformed {
        1
    } else {
        0
    })
}

/// Decoding state across messages: the context and the first OPEN of a pair.
struct Session<W: Write> {
    ctx: DecodeCtx,
    infer: bool,
    reencode: bool,
    first_open: Option<Open>,
    malformed: bool,
    out: W,
}

impl<W: Write> Session<W> {
    /// Hex mode; returns whether some line was not hex.
    fn hex_lines(&mut self, input: impl BufRead) -> anyhow::Result<bool> {
        let mut bad_input = false;
        // Bounded by the input: one iteration per line.
        for (n, line) in input.lines().enumerate() {
            let line = line.context("cannot read input")?;
            let text = line.split('#').next().unwrap_or_default();
            match parse_hex(text) {
                Ok(bytes) if bytes.is_empty() => {}
                Ok(bytes) => {
                    let result = decode_message(&bytes, &self.ctx);
                    self.emit(&bytes, result)?;
                }
                Err(reason) => {
                    eprintln!("ferrolb-bgp: line {}: not hex: {reason}", n + 1);
                    bad_input = true;
                }
            }
        }
        Ok(bad_input)
    }

    /// Binary mode: frames messages by their header like the session's codec does. A broken
    /// header ends the stream (it cannot be resynchronised, RFC 4271 §6.1); bytes left at the
    /// end are reported as a truncated message.
    fn binary(&mut self, mut input: impl Read) -> anyhow::Result<()> {
        let mut buf: Vec<u8> = Vec::new();
        let mut start = 0usize;
        let mut eof = false;
        let mut chunk = vec![0u8; 64 * 1024];
        // Each iteration consumes a message, reads more input, or ends: bounded by the input.
        loop {
            let pending = buf.get(start..).unwrap_or_default();
            let need = match pending.get(..HEADER_LEN) {
                None => None,
                Some(head) => match parse_header(head, &self.ctx) {
                    Ok(h) => Some(usize::from(h.length)),
                    Err(e) => {
                        let kind = type_of(pending);
                        self.emit_malformed(kind, &e)?;
                        eprintln!(
                            "ferrolb-bgp: broken header, cannot resynchronise; {} octets left unread",
                            pending.len()
                        );
                        return Ok(());
                    }
                },
            };
            match need {
                Some(len) if pending.len() >= len => {
                    let frame = pending.get(..len).unwrap_or_default().to_vec();
                    start += len;
                    let result = decode_message(&frame, &self.ctx);
                    self.emit(&frame, result)?;
                }
                _ if eof => {
                    if !pending.is_empty() {
                        // decode_message reports the truncation as the header check would:
                        // 1/2 with the Length field (or the octets present) as data.
                        let frame = pending.to_vec();
                        let result = decode_message(&frame, &self.ctx);
                        self.emit(&frame, result)?;
                    }
                    return Ok(());
                }
                _ => {
                    // Drop consumed octets before reading more, so the buffer stays one
                    // message plus one chunk long.
                    buf.drain(..start);
                    start = 0;
                    let n = input.read(&mut chunk).context("cannot read input")?;
                    if n == 0 {
                        eof = true;
                    }
                    buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
                }
            }
        }
    }

    fn emit(&mut self, bytes: &[u8], result: Result<Message, MessageError>) -> anyhow::Result<()> {
        match result {
            Ok(message) => self.emit_decoded(&message),
            Err(e) => self.emit_malformed(type_of(bytes), &e),
        }
    }

    fn emit_malformed(&mut self, kind: &'static str, e: &MessageError) -> anyhow::Result<()> {
        self.malformed = true;
        self.write(&json::Output {
            object: json::Object::Malformed(json::malformed(kind, e)),
            reencoded: None,
            reencode_error: None,
        })
    }

    fn emit_decoded(&mut self, message: &Message) -> anyhow::Result<()> {
        let validation = match message {
            Message::Update(u) => u.validate(&self.ctx),
            _ => Vec::new(),
        };
        let findings = match message {
            Message::Update(u) => !u.attribute_errors.is_empty() || !validation.is_empty(),
            _ => false,
        };
        if findings {
            self.malformed = true;
        }
        let (reencoded, reencode_error) = if self.reencode && !findings {
            match message.to_bytes(&self.ctx) {
                Ok(bytes) => (Some(json::hex(&bytes)), None),
                Err(e) => {
                    self.malformed = true;
                    (None, Some(e.to_string()))
                }
            }
        } else {
            (None, None)
        };
        self.write(&json::Output {
            object: json::Object::Decoded(json::decoded(message, &validation)),
            reencoded,
            reencode_error,
        })?;
        if let Message::Open(open) = message {
            self.saw_open(open);
        }
        Ok(())
    }

    /// RFC 4271 §4.2: each side sends one OPEN; the second completes the pair.
    fn saw_open(&mut self, open: &Open) {
        if !self.infer {
            return;
        }
        match self.first_open.take() {
            None => self.first_open = Some(open.clone()),
            Some(first) => {
                self.ctx = DecodeCtx::negotiate(&first, open);
                let families: Vec<String> =
                    self.ctx.families.iter().map(json::family_name).collect();
                eprintln!(
                    "ferrolb-bgp: OPEN pair: decoding with four_octet_as={} extended_message={} families={}",
                    self.ctx.four_octet_as,
                    self.ctx.extended_message,
                    families.join(",")
                );
            }
        }
    }

    fn write(&mut self, output: &json::Output) -> anyhow::Result<()> {
        serde_json::to_writer(&mut self.out, output).context("cannot write output")?;
        self.out.write_all(b"\n").context("cannot write output")?;
        Ok(())
    }
}

/// The JSON type of a raw message, from its header's type octet.
fn type_of(bytes: &[u8]) -> &'static str {
    match bytes.get(HEADER_LEN - 1) {
        Some(t) => json::type_name(MessageType(*t)),
        None => "UNKNOWN",
    }
}

/// Hex digits to bytes, whitespace ignored.
fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let mut nibbles = Vec::with_capacity(text.len());
    for (i, c) in text.chars().enumerate() {
        if c.is_whitespace() {
            continue;
        }
        match c.to_digit(16) {
            // to_digit(16) is below 16, so the cast is lossless.
            Some(d) => nibbles.push(d as u8),
            None => return Err(format!("character {:?} at column {}", c, i + 1)),
        }
    }
    if nibbles.len() % 2 != 0 {
        return Err(format!("odd number of hex digits ({})", nibbles.len()));
    }
    Ok(nibbles
        .chunks_exact(2)
        .map(|pair| match pair {
            [hi, lo] => (hi << 4) | lo,
            _ => 0,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_ignores_whitespace_and_rejects_odd_digits_and_non_hex() {
        assert_eq!(parse_hex(" ff 0A\t1 3 "), Ok(vec![0xff, 0x0a, 0x13]));
        assert!(parse_hex("abc").is_err());
        assert!(parse_hex("zz").is_err());
        assert_eq!(parse_hex("   "), Ok(vec![]));
    }
}
