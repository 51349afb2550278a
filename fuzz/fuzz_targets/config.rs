//! The config parser: properties syntax (`parse_properties`) and the typed, validated
//! node config built from it (`parse_file_contents`), on arbitrary text.
//!
//! Checked: no panic; a syntax error and a config error with a line name a line the
//! text has; a config error always has a reason, and its display starts with the file
//! name. Seed it with conf/**/*.conf (README, "Fuzzing") so it starts from configs that
//! load and mutates them key by key.
#![no_main]

use dledger::config::{parse_file_contents, parse_properties};
use libfuzzer_sys::fuzz_target;

const FILE: &str = "fuzz.conf";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Lines as the properties format counts them: \n, \r\n or a lone \r end one.
    let lines = text.split('\n').flat_map(|l| l.split('\r')).count().max(1) as u32;
    match parse_properties(text) {
        Ok(props) => {
            for p in &props {
                assert!(
                    p.line >= 1 && p.line <= lines,
                    "property line {} of {lines}",
                    p.line
                );
            }
        }
        Err(e) => assert!(
            e.line >= 1 && e.line <= lines,
            "syntax error line {} of {lines}",
            e.line
        ),
    }
    match parse_file_contents(FILE, text) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                assert!(w.line.is_none_or(|l| l >= 1 && l <= lines));
            }
        }
        Err(e) => {
            assert!(!e.reason.is_empty());
            assert!(
                e.line.is_none_or(|l| l >= 1 && l <= lines),
                "error line {:?} of {lines}",
                e.line
            );
            assert!(e.to_string().starts_with(FILE));
        }
    }
});
