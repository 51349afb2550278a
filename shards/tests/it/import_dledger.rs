//! `dledger import --dledger-store`: a DLedger 0.3.x store (data and index files) built
//! byte by byte from the documented format, imported with the real binary: terms and
//! positions kept, indexes shifted by one; a wrong index record or size is refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::import_common;

use dledger::upgrade::IMPORT_DIGEST_FILE;
use dledger::upgrade::fixtures::DLedgerImage;
use import_common::{dledger, group_dir, read_log, text, write_files};

const GROUP: &str = "RaftNode00";
/// The test cluster's `mappedFileSizeForEntryData`: entries keep their positions, so
/// the store's data files have our segment size.
const DATA_FILE_BYTES: u64 = 8 << 20;
const INDEX_FILE_BYTES: u64 = 4096;

/// Two data files (the first ends in a tail marker) over several index files, terms
/// rising, with a no-op entry.
fn store() -> DLedgerImage {
    let mut img = DLedgerImage::new(DATA_FILE_BYTES, INDEX_FILE_BYTES);
    for i in 0..140u64 {
        let term = 1 + i / 50;
        if i == 60 {
            img.append(2, term, b"");
            continue;
        }
        let body: Vec<u8> = (0..(60_000 + i * 13)).map(|j| (i * 7 + j) as u8).collect();
        img.append(1, term, &body);
    }
    assert_eq!(img.data.len(), 2, "the fixture spans two data files");
    assert!(img.index.len() > 1, "and several index files");
    img
}

fn write_store(dir: &std::path::Path, img: &DLedgerImage) {
    write_files(&dir.join("data"), &img.data);
    write_files(&dir.join("index"), &img.index);
}

fn import(src: &std::path::Path, config: &std::path::Path) -> std::process::Output {
    dledger(&[
        "import",
        "--dledger-store",
        src.to_str().unwrap(),
        "--group",
        GROUP,
        "-c",
        config.to_str().unwrap(),
    ])
}

#[test]
fn a_dledger_store_keeps_terms_and_positions_with_indexes_shifted_by_one() {
    let cluster = import_common::three_nodes();
    let img = store();
    let src = cluster.dir.join("dledger-store");
    write_store(&src, &img);
    let config = &cluster.nodes[0].config_path;
    let out = import(&src, config);
    assert!(out.status.success(), "{}", text(&out));
    let log = read_log(config, GROUP);
    assert_eq!(log.len(), img.entries.len());
    for ((index, term, pos, body), (d_index, d_term, d_pos, d_body)) in log.iter().zip(&img.entries)
    {
        assert_eq!((*index, *term, *pos), (d_index + 1, *d_term, *d_pos));
        assert_eq!(body, d_body, "entry {index}");
    }
    assert!(group_dir(config, GROUP).join(IMPORT_DIGEST_FILE).exists());
}

#[test]
fn an_index_record_that_disagrees_with_its_entry_is_refused() {
    let cluster = import_common::three_nodes();
    let mut img = store();
    // Entry 70's index record: change its term (record i at address i × 32, term at +24).
    let addr = 70 * 32 + 24;
    let file = (addr / INDEX_FILE_BYTES) as usize;
    let at = (addr % INDEX_FILE_BYTES) as usize;
    img.index[file].1[at + 7] ^= 0x40;
    let src = cluster.dir.join("dledger-store-bad-index");
    write_store(&src, &img);
    let config = &cluster.nodes[0].config_path;
    let out = import(&src, config);
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "DLedger index file {:020}, byte offset {} (entry 70",
            file as u64 * INDEX_FILE_BYTES,
            at - 24
        )) && err.contains("term"),
        "{}",
        text(&out)
    );
    assert!(!group_dir(config, GROUP).join("data").exists());
}

#[test]
fn a_store_with_another_data_file_size_is_refused_with_the_key_to_set() {
    let cluster = import_common::three_nodes();
    let mut img = DLedgerImage::new(2 * DATA_FILE_BYTES, INDEX_FILE_BYTES);
    img.append(1, 1, b"hello");
    let src = cluster.dir.join("dledger-store-big");
    write_store(&src, &img);
    let out = import(&src, &cluster.nodes[0].config_path);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("mappedFileSizeForEntryData"),
        "{}",
        text(&out)
    );
}
