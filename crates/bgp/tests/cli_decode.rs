//! The `ferrolb-bgp decode` JSON contract, clause by clause, against the real binary.
//! The contract itself is written down in `crates/bgp/README.md`.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_ferrolb-bgp");
const DEMO: &str = include_str!("../testdata/demo.hex");

struct Run {
    status: i32,
    objects: Vec<Value>,
    stderr: String,
}

/// Runs `ferrolb-bgp decode ARGS` with `stdin`; every stdout line must be one JSON object.
fn decode(args: &[&str], stdin: &[u8]) -> Run {
    let mut child = Command::new(BIN)
        .arg("decode")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ferrolb-bgp");
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    // Write from a thread so a full stdout pipe cannot deadlock against a full stdin pipe.
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().expect("wait for ferrolb-bgp");
    writer.join().expect("stdin writer");
    let stdout = String::from_utf8(out.stdout).expect("stdout is UTF-8");
    let objects = stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect::<Vec<_>>();
    for o in &objects {
        assert!(o.is_object(), "not an object: {o}");
    }
    Run {
        status: out.status.code().expect("exited, not killed by a signal"),
        objects,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// A whole message: marker, length, type, body.
fn msg(message_type: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&u16::try_from(body.len() + 19).unwrap().to_be_bytes());
    m.push(message_type);
    m.extend_from_slice(body);
    m
}

/// An UPDATE from its three fields.
fn update(withdrawn: &[u8], attrs: &[u8], nlri: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&u16::try_from(withdrawn.len()).unwrap().to_be_bytes());
    b.extend_from_slice(withdrawn);
    b.extend_from_slice(&u16::try_from(attrs.len()).unwrap().to_be_bytes());
    b.extend_from_slice(attrs);
    b.extend_from_slice(nlri);
    msg(2, &b)
}

/// ORIGIN IGP, AS_PATH (one AS_SEQUENCE of 4-octet `asn`), NEXT_HOP 192.0.2.1.
fn v4_attrs(asn: u32) -> Vec<u8> {
    let mut a = vec![0x40, 1, 1, 0, 0x40, 2, 6, 2, 1];
    a.extend_from_slice(&asn.to_be_bytes());
    a.extend_from_slice(&[0x40, 3, 4, 192, 0, 2, 1]);
    a
}

/// An OPEN with `caps` (each a whole capability TLV) in one Capabilities parameter.
fn open(my_as: u16, caps: &[&[u8]]) -> Vec<u8> {
    let params: Vec<u8> = caps
        .iter()
        .flat_map(|c| {
            let mut p = vec![2, u8::try_from(c.len()).unwrap()];
            p.extend_from_slice(c);
            p
        })
        .collect();
    let mut b = vec![4];
    b.extend_from_slice(&my_as.to_be_bytes());
    b.extend_from_slice(&[0, 90, 192, 0, 2, 1, u8::try_from(params.len()).unwrap()]);
    b.extend_from_slice(&params);
    msg(1, &b)
}

fn lines(messages: &[Vec<u8>]) -> Vec<u8> {
    messages
        .iter()
        .map(|m| hex(m) + "\n")
        .collect::<String>()
        .into_bytes()
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().expect("string"))
        .collect()
}

#[test]
fn demo_decodes_every_message_type_in_input_order_and_exits_0() {
    let run = decode(&[], DEMO.as_bytes());
    assert_eq!(run.status, 0, "stderr: {}", run.stderr);
    let types: Vec<&str> = run
        .objects
        .iter()
        .map(|o| o["type"].as_str().expect("type is a string"))
        .collect();
    assert_eq!(
        types,
        [
            "OPEN",
            "OPEN",
            "KEEPALIVE",
            "UPDATE",
            "UPDATE",
            "UPDATE",
            "UPDATE",
            "UPDATE",
            "NOTIFICATION"
        ]
    );
    let open = &run.objects[0];
    assert_eq!(open["my_as"], 23456, "AS_TRANS on the wire");
    assert_eq!(open["asn"], 4200000001u32);
    assert_eq!(open["hold_time"], 90);
    assert_eq!(open["bgp_id"], "192.0.2.1");
    let caps: Vec<&str> = open["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        caps,
        [
            "MULTIPROTOCOL",
            "MULTIPROTOCOL",
            "ROUTE_REFRESH",
            "GRACEFUL_RESTART",
            "FOUR_OCTET_AS",
            "FQDN"
        ]
    );
    assert_eq!(open["capabilities"][3]["restart_time"], 120);
    assert_eq!(
        open["capabilities"][3]["families"][1]["forwarding_state"],
        true
    );
    assert_eq!(open["capabilities"][5]["hostname"], "node-a");

    let v4 = &run.objects[3];
    assert_eq!(
        strings(&v4["announced"]),
        ["198.51.100.10/32", "198.51.100.11/32"]
    );
    assert_eq!(strings(&v4["withdrawn"]), Vec::<&str>::new());
    let attrs = &v4["attributes"];
    assert_eq!(attrs["origin"], "IGP");
    assert_eq!(attrs["as_path"][0]["type"], "AS_SEQUENCE");
    assert_eq!(attrs["as_path"][0]["asns"][0], 4200000001u32);
    assert_eq!(attrs["next_hop"], "192.0.2.1");
    assert_eq!(strings(&attrs["communities"]), ["65000:100", "NO_EXPORT"]);
    assert_eq!(strings(&attrs["large_communities"]), ["4200000001:1:2"]);

    let v6 = &run.objects[4];
    assert_eq!(
        strings(&v6["announced"]),
        ["2001:db8:100::10/128", "2001:db8:100::11/128"]
    );
    assert_eq!(v6["attributes"]["mp_reach_nlri"]["next_hop"], "2001:db8::1");
    assert_eq!(
        v6["attributes"]["mp_reach_nlri"]["link_local_next_hop"],
        "fe80::1"
    );

    let withdraw = &run.objects[5];
    assert_eq!(strings(&withdraw["announced"]), Vec::<&str>::new());
    assert_eq!(
        strings(&withdraw["withdrawn"]),
        ["198.51.100.11/32", "2001:db8:100::11/128"]
    );
    assert_eq!(run.objects[6]["end_of_rib"], "ipv4-unicast");
    assert_eq!(run.objects[7]["end_of_rib"], "ipv6-unicast");

    let n = &run.objects[8];
    assert_eq!(
        (n["code"].clone(), n["subcode"].clone()),
        (6.into(), 2.into())
    );
    assert_eq!(n["shutdown_communication"], "maintenance: node-a drained");
    assert!(
        run.stderr.contains("OPEN pair"),
        "inference is reported on stderr: {}",
        run.stderr
    );
}

#[test]
fn route_refresh_has_its_family() {
    let run = decode(&[], &lines(&[msg(5, &[0, 2, 0, 1])]));
    assert_eq!(run.status, 0);
    assert_eq!(run.objects[0]["type"], "ROUTE-REFRESH");
    assert_eq!(run.objects[0]["afi"], 2);
    assert_eq!(run.objects[0]["safi"], 1);
}

/// (message, code, subcode, data, type) rows: RFC 4271 §6.1-§6.3 and FerroLB's RFC 7606 choices.
fn malformed_rows() -> Vec<(Vec<u8>, u8, u8, &'static str, &'static str)> {
    let keepalive = msg(4, &[]);
    let mut bad_marker = keepalive.clone();
    bad_marker[3] = 0;
    let mut short = keepalive.clone();
    short[17] = 18; // Length 18
    let mut long_keepalive = msg(4, &[0]);
    long_keepalive[17] = 20;
    let mut wrong_len = keepalive.clone();
    wrong_len[17] = 25; // says 25, line has 19
    let mut bad_type = keepalive.clone();
    bad_type[18] = 9;
    let mut v3 = open(65000, &[]);
    v3[19] = 3;
    let mut hold1 = open(65000, &[]);
    hold1[23] = 1;
    vec![
        // RFC 4271 §6.1: marker not all ones -> 1/1.
        (bad_marker, 1, 1, "", "KEEPALIVE"),
        // §6.1: Length below 19 -> 1/2, data the Length field.
        (short, 1, 2, "0012", "KEEPALIVE"),
        // §6.1: KEEPALIVE not 19 octets -> 1/2.
        (long_keepalive, 1, 2, "0014", "KEEPALIVE"),
        // The Length field disagrees with the octets on the line -> 1/2.
        (wrong_len, 1, 2, "0019", "KEEPALIVE"),
        // §6.1: unknown type -> 1/3, data the type.
        (bad_type, 1, 3, "09", "UNKNOWN"),
        // §6.2: version 3 -> 2/1, data the largest supported version (2 octets).
        (v3, 2, 1, "0004", "OPEN"),
        // §6.2: hold time 1 -> 2/6.
        (hold1, 2, 6, "", "OPEN"),
        // RFC 4271 §6.3: Withdrawn Routes Length beyond the message -> 3/1.
        (msg(2, &[0, 9, 0, 0]), 3, 1, "", "UPDATE"),
        // Total Path Attribute Length beyond the message -> 3/1.
        (msg(2, &[0, 0, 0, 9]), 3, 1, "", "UPDATE"),
        // RFC 7606 §5.3: malformed NLRI (length 33) -> 3/10.
        (
            update(&[], &v4_attrs(65001), &[33, 10, 0, 0, 1, 1]),
            3,
            10,
            "",
            "UPDATE",
        ),
        // Malformed Withdrawn Routes (truncated prefix) -> 3/10.
        (update(&[24, 10, 0], &[], &[]), 3, 10, "", "UPDATE"),
        // §6.3: unrecognized well-known attribute -> 3/2, data the attribute.
        (
            update(&[], &[0x40, 99, 1, 7], &[]),
            3,
            2,
            "40630107",
            "UPDATE",
        ),
    ]
}

#[test]
fn malformed_messages_give_the_notification_and_exit_1() {
    let rows = malformed_rows();
    let mut input: Vec<Vec<u8>> = Vec::new();
    for (m, ..) in &rows {
        input.push(m.clone());
        // A good message after each bad one: decoding goes on, in input order.
        input.push(msg(4, &[]));
    }
    let run = decode(&[], &lines(&input));
    assert_eq!(run.status, 1, "a malformed message makes the exit status 1");
    assert_eq!(run.objects.len(), rows.len() * 2);
    for (i, (m, code, subcode, data, kind)) in rows.iter().enumerate() {
        let o = &run.objects[2 * i];
        let row = format!("row {i} ({}): {o}", hex(m));
        assert_eq!(o["type"], *kind, "{row}");
        assert_eq!(o["notification"]["code"], *code, "{row}");
        assert_eq!(o["notification"]["subcode"], *subcode, "{row}");
        assert_eq!(o["notification"]["data"], *data, "{row}");
        assert!(o["error"]["reason"].is_string(), "{row}");
        assert!(o.get("announced").is_none(), "no decoded fields: {row}");
        assert_eq!(run.objects[2 * i + 1]["type"], "KEEPALIVE", "{row}");
        assert!(run.objects[2 * i + 1].get("notification").is_none());
    }
}

#[test]
fn well_formed_input_exits_0_and_has_no_notification() {
    let run = decode(&[], &lines(&[msg(4, &[]), update(&[], &[], &[])]));
    assert_eq!(run.status, 0);
    assert!(run.objects.iter().all(|o| o.get("notification").is_none()));
}

#[test]
fn treat_as_withdraw_moves_the_announced_prefixes_to_withdrawn() {
    // RFC 7606 §7.1: an ORIGIN value other than 0..=2 -> treat-as-withdraw.
    let mut attrs = v4_attrs(65001);
    attrs[3] = 5;
    let bad_origin = update(&[24, 10, 9, 9], &attrs, &[32, 10, 1, 2, 3]);
    // RFC 7606 §3 d: a missing well-known mandatory attribute (ORIGIN) -> treat-as-withdraw.
    let no_origin = update(&[], &v4_attrs(65001)[4..], &[32, 10, 1, 2, 4]);
    let run = decode(&["--reencode"], &lines(&[bad_origin, no_origin]));
    assert_eq!(run.status, 1, "treat-as-withdraw is a malformed message");
    for (o, withdrawn) in run
        .objects
        .iter()
        .zip([vec!["10.9.9.0/24", "10.1.2.3/32"], vec!["10.1.2.4/32"]])
    {
        assert_eq!(o["type"], "UPDATE");
        assert_eq!(o["treat_as_withdraw"], true, "{o}");
        assert_eq!(strings(&o["announced"]), Vec::<&str>::new(), "{o}");
        assert_eq!(strings(&o["withdrawn"]), withdrawn, "{o}");
        assert_eq!(o["attribute_errors"][0]["type_code"], 1, "{o}");
        assert_eq!(o["attribute_errors"][0]["action"], "treat-as-withdraw");
        assert!(o.get("notification").is_none(), "no NOTIFICATION: {o}");
        assert!(o.get("reencoded").is_none(), "malformed: not re-encoded");
    }
}

/// Drops "reencoded" so objects can be compared with the decode of the re-encoded hex.
fn without_reencoded(objects: &[Value]) -> Vec<Value> {
    objects
        .iter()
        .map(|o| {
            let mut o = o.clone();
            o.as_object_mut().unwrap().remove("reencoded");
            o
        })
        .collect()
}

#[test]
fn reencoded_hex_decodes_to_the_same_json() {
    // Extended-length flags on short attributes and split capabilities parameters: the
    // re-encoded bytes differ from the input, the JSON must not.
    let mut wide = vec![0x50, 1, 0, 1, 0];
    wide.extend_from_slice(&v4_attrs(65001)[4..]);
    wide.extend_from_slice(&[0xf0, 200, 0, 2, 0xab, 0xcd]); // unknown optional transitive, Partial, extended length
    let mut input = DEMO.as_bytes().to_vec();
    input.extend(lines(&[
        update(&[], &wide, &[32, 10, 1, 2, 3]),
        msg(5, &[0, 1, 0, 1]),
    ]));
    let first = decode(&["--reencode"], &input);
    assert_eq!(first.status, 0, "{}", first.stderr);
    let reencoded: String = first
        .objects
        .iter()
        .map(|o| {
            o["reencoded"]
                .as_str()
                .unwrap_or_else(|| panic!("every well-formed message is re-encoded: {o}"))
                .to_owned()
                + "\n"
        })
        .collect();
    let second = decode(&["--reencode"], reencoded.as_bytes());
    assert_eq!(second.status, 0);
    assert_eq!(
        without_reencoded(&second.objects),
        without_reencoded(&first.objects)
    );
    // Our encoder's output is a fixed point.
    assert_eq!(second.objects, {
        let mut o = first.objects.clone();
        for (a, b) in o.iter_mut().zip(&second.objects) {
            a["reencoded"] = b["reencoded"].clone();
        }
        o
    });
    let unknown = &first.objects[9]["attributes"]["unknown"][0];
    assert_eq!(unknown["type_code"], 200);
    assert_eq!(unknown["flags"], 0xf0);
    assert_eq!(unknown["value"], "abcd");
}

#[test]
fn as4_flags_choose_the_as_path_width() {
    // AS_PATH with one 2-octet ASN 65001: 2 segment octets + 2.
    let attrs = [
        0x40, 1, 1, 0, 0x40, 2, 4, 2, 1, 0xfd, 0xe9, 0x40, 3, 4, 192, 0, 2, 1,
    ];
    let two_octet = lines(&[update(&[], &attrs, &[32, 10, 1, 2, 3])]);
    let run = decode(&["--no-as4"], &two_octet);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(run.objects[0]["attributes"]["as_path"][0]["asns"][0], 65001);
    // Default --as4: the same bytes are a malformed 4-octet AS_PATH (RFC 7606 §7.2).
    let run = decode(&[], &two_octet);
    assert_eq!(run.status, 1);
    assert_eq!(run.objects[0]["treat_as_withdraw"], true);
    assert_eq!(run.objects[0]["attribute_errors"][0]["type_code"], 2);
    // The last of --as4/--no-as4 wins.
    assert_eq!(decode(&["--as4", "--no-as4"], &two_octet).status, 0);
    assert_eq!(decode(&["--no-as4", "--as4"], &two_octet).status, 1);
}

#[test]
fn extended_message_allows_65535_octet_updates() {
    // 1,100 /32s: 5,500 octets of NLRI, beyond 4096.
    let nlri: Vec<u8> = (0..1100u32)
        .flat_map(|i| {
            let [_, a, b, c] = i.to_be_bytes();
            [32, 10, a, b, c]
        })
        .collect();
    let big = lines(&[update(&[], &v4_attrs(65001), &nlri)]);
    let run = decode(&[], &big);
    assert_eq!(run.status, 1);
    assert_eq!(
        run.objects[0]["notification"]["subcode"], 2,
        "1/2 above 4096"
    );
    let run = decode(&["--extended-message", "--reencode"], &big);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(run.objects[0]["announced"].as_array().unwrap().len(), 1100);
    assert!(run.objects[0]["reencoded"].is_string());
}

#[test]
fn an_open_pair_sets_the_context_unless_no_infer() {
    // Two OPENs without the 4-octet AS capability: 2-octet AS_PATH from then on (RFC 6793 §3).
    let old = open(65000, &[&[1, 4, 0, 1, 0, 1]]);
    let attrs = [
        0x40, 1, 1, 0, 0x40, 2, 4, 2, 1, 0xfd, 0xe9, 0x40, 3, 4, 192, 0, 2, 1,
    ];
    let upd = update(&[], &attrs, &[32, 10, 1, 2, 3]);
    let input = lines(&[old.clone(), old.clone(), upd.clone()]);
    let run = decode(&[], &input);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(run.objects[2]["attributes"]["as_path"][0]["asns"][0], 65001);
    assert_eq!(decode(&["--no-infer"], &input).status, 1);
    // One OPEN is not a pair: the flags still rule.
    assert_eq!(decode(&[], &lines(&[old, upd])).status, 1);

    // Both OPENs with Extended Message (RFC 8654 §3): a 5,000-octet UPDATE is allowed.
    let ext = open(65000, &[&[6, 0], &[65, 4, 0, 0, 0xfd, 0xe8]]);
    let nlri: Vec<u8> = (0..1000u32)
        .flat_map(|i| {
            let [_, a, b, c] = i.to_be_bytes();
            [32, 10, a, b, c]
        })
        .collect();
    let input = lines(&[ext.clone(), ext, update(&[], &v4_attrs(65001), &nlri)]);
    let run = decode(&[], &input);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(run.objects[2]["announced"].as_array().unwrap().len(), 1000);
}

#[test]
fn binary_input_gives_the_same_objects_as_hex() {
    let raw: Vec<u8> = DEMO
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .flat_map(unhex)
        .collect();
    let from_hex = decode(&["--reencode"], DEMO.as_bytes());
    let from_binary = decode(&["--binary", "--reencode"], &raw);
    assert_eq!(from_binary.status, 0, "{}", from_binary.stderr);
    assert_eq!(from_binary.objects, from_hex.objects);
}

#[test]
fn binary_input_reports_a_truncated_tail_and_a_broken_header() {
    let keepalive = msg(4, &[]);
    let mut truncated = keepalive.clone();
    truncated.extend_from_slice(&update(&[], &[], &[])[..20]);
    let run = decode(&["--binary"], &truncated);
    assert_eq!(run.status, 1);
    assert_eq!(run.objects.len(), 2);
    assert_eq!(run.objects[1]["type"], "UPDATE");
    assert_eq!(run.objects[1]["notification"]["subcode"], 2);
    assert_eq!(run.objects[1]["notification"]["data"], "0017");

    // A broken marker ends the stream: nothing after it can be framed.
    let mut broken = keepalive.clone();
    broken.extend_from_slice(&[0u8; 19]);
    broken.extend_from_slice(&keepalive);
    let run = decode(&["--binary"], &broken);
    assert_eq!(run.status, 1);
    assert_eq!(run.objects.len(), 2);
    assert_eq!(run.objects[1]["notification"]["code"], 1);
    assert_eq!(run.objects[1]["notification"]["subcode"], 1);
    assert!(
        run.stderr.contains("cannot resynchronise"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_line_that_is_not_hex_exits_2_and_the_rest_still_decodes() {
    let mut input = b"not hex at all\n".to_vec();
    input.extend(lines(&[msg(4, &[])]));
    let run = decode(&[], &input);
    assert_eq!(run.status, 2);
    assert_eq!(run.objects.len(), 1);
    assert!(run.stderr.contains("line 1"), "{}", run.stderr);
}

#[test]
fn comments_and_blank_lines_are_skipped() {
    let input = format!("# a comment\n\n   \n{}  # trailing\n", hex(&msg(4, &[])));
    let run = decode(&[], input.as_bytes());
    assert_eq!(run.status, 0);
    assert_eq!(run.objects.len(), 1);
}

#[test]
fn garbage_never_panics_and_gives_one_object_per_line() {
    // Deterministic pseudo-random messages: a valid header prefix half the time so bodies are
    // reached, random bytes otherwise. Exit 101 would be a Rust panic.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut input = Vec::new();
    for i in 0..2000 {
        let len = 19 + (next() % 120) as usize;
        let mut m: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if i % 2 == 0 {
            m[..16].fill(0xff);
            m[16..18].copy_from_slice(&u16::try_from(len).unwrap().to_be_bytes());
            m[18] = 1 + (next() % 5) as u8;
        }
        input.push(m);
    }
    let run = decode(&["--reencode"], &lines(&input));
    assert!(
        run.status == 0 || run.status == 1,
        "status {}: {}",
        run.status,
        run.stderr
    );
    assert_eq!(run.objects.len(), input.len());
}
