//! Hostile input against the config parser, through the public API: arbitrary text never
//! panics, and a bad entry is reported with the line it is on and the key it sets — the
//! two things an operator needs to fix the file.
//!
//! The shipped example configs are the starting point; entries are then replaced by
//! garbage, moved behind comments, blank and continued lines, or misspelt.

// Test helpers outside #[test] fns: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use dledger::config::{
    ConfigError, GROUP_KEYS, IGNORED_ROCKETMQ_KEYS, NODE_KEYS, parse_file_contents,
    parse_properties,
};
use proptest::prelude::*;

const FILE: &str = "hostile.conf";
const BROKER_N0: &str = include_str!("../conf/dledger/broker-n0.conf");
const MULTIGROUP_N0: &str = include_str!("../conf/multigroup/node-n0.conf");

/// Lines that change nothing: blank, comments in both styles, a comment that looks
/// like an entry.
fn filler_line() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("   ".to_string()),
        "# [ -~]{0,30}",
        "! [ -~]{0,30}",
        Just("#listenPort=not-a-port".to_string()),
    ]
}

/// Values no typed key accepts: not a number, bool, ratio, host:port or node list.
fn garbage_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("@@@".to_string()),
        Just("-1x".to_string()),
        Just("99999999999999999999999".to_string()),
        Just("n0-:;".to_string()),
        "[%&*]{1,8}",
    ]
}

/// `base` without any entry of `key`, with `extra` lines inserted at `at` (a line
/// index, wrapped) and filler lines before it. Returns the text and the 1-based line
/// where the first extra line lands.
fn insert(base: &str, key: &str, extra: &[String], at: usize, fillers: &[String]) -> (String, u32) {
    let mut lines: Vec<String> = base
        .lines()
        .filter(|l| l.split(['=', ':', ' ']).next().map(str::trim) != Some(key))
        .map(str::to_string)
        .collect();
    let at = at % (lines.len() + 1);
    let mut added: Vec<String> = fillers.to_vec();
    let line = (at + added.len() + 1) as u32;
    added.extend_from_slice(extra);
    lines.splice(at..at, added);
    (lines.join("\n") + "\n", line)
}

fn names(e: &ConfigError, key: &str, line: u32) -> Result<(), TestCaseError> {
    prop_assert_eq!(e.key.as_deref(), Some(key), "{}", e);
    prop_assert_eq!(e.line, Some(line), "{}", e);
    prop_assert_eq!(e.file.as_str(), FILE);
    let shown = e.to_string();
    prop_assert!(
        shown.starts_with(&format!("{FILE}:{line}: key '{key}'")),
        "the message leads with file, line and key: {}",
        shown
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any text: no panic; an error's line is a line of the text.
    #[test]
    fn arbitrary_text_never_panics(text in "(\\PC|\n|\r|\\\\){0,300}") {
        let lines = text.split('\n').flat_map(|l| l.split('\r')).count() as u32;
        if let Err(e) = parse_properties(&text) {
            prop_assert!(e.line >= 1 && e.line <= lines, "line {} of {}", e.line, lines);
        }
        if let Err(e) = parse_file_contents(FILE, &text) {
            prop_assert!(!e.reason.is_empty());
            prop_assert!(e.line.is_none_or(|l| l >= 1 && l <= lines), "line {:?} of {}", e.line, lines);
        }
    }

    /// A node key set to garbage, anywhere in a valid file: either the key takes any
    /// text (a name, a path), or the error names exactly that key and line.
    #[test]
    fn a_bad_value_is_reported_at_its_key_and_line(
        key in proptest::sample::select(NODE_KEYS.to_vec()),
        value in garbage_value(),
        at in any::<usize>(),
        fillers in proptest::collection::vec(filler_line(), 0..4),
        separator in proptest::sample::select(vec!["=", " = ", ":", " "]),
    ) {
        let entry = format!("{key}{separator}{value}");
        let (text, line) = insert(BROKER_N0, key, &[entry], at, &fillers);
        if let Err(e) = parse_file_contents(FILE, &text) {
            // A key that clashes with another entry (`dLegerGroups` next to
            // `dLegerGroup`) may be reported at that entry, with the reason naming
            // this key.
            if e.key.as_deref() != Some(key) && e.reason.contains(key) {
                return Ok(());
            }
            names(&e, key, line)?;
        }
    }

    /// The same for a per-group override in the multi-group config.
    #[test]
    fn a_bad_group_override_is_reported_at_its_key_and_line(
        key in proptest::sample::select(GROUP_KEYS.to_vec()),
        value in garbage_value(),
        at in any::<usize>(),
        fillers in proptest::collection::vec(filler_line(), 0..4),
    ) {
        let full_key = format!("group.RaftNode01.{key}");
        let entry = format!("{full_key}={value}");
        let (text, line) = insert(MULTIGROUP_N0, &full_key, &[entry], at, &fillers);
        if let Err(e) = parse_file_contents(FILE, &text) {
            names(&e, &full_key, line)?;
        }
    }

    /// A key that does not exist (a typo of a real one, or noise) is refused with its
    /// line, also when it is written over continued lines.
    #[test]
    fn an_unknown_key_is_refused_at_its_line(
        real in proptest::sample::select(NODE_KEYS.to_vec()),
        cut in any::<usize>(),
        at in any::<usize>(),
        continued in any::<bool>(),
        fillers in proptest::collection::vec(filler_line(), 0..4),
    ) {
        // Drop one character: a near miss of a real key.
        let cut = cut % real.len();
        let typo: String = real.chars().enumerate().filter(|(i, _)| *i != cut).map(|(_, c)| c).collect();
        prop_assume!(!NODE_KEYS.contains(&typo.as_str()) && !IGNORED_ROCKETMQ_KEYS.contains(&typo.as_str()));
        let entry = if continued {
            vec![format!("{typo}=first \\"), "   second".to_string()]
        } else {
            vec![format!("{typo}=1")]
        };
        let (text, line) = insert(BROKER_N0, &typo, &entry, at, &fillers);
        let e = parse_file_contents(FILE, &text).unwrap_err();
        names(&e, &typo, line)?;
    }
}
