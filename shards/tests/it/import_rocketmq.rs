//! `dledger import --rocketmq-commitlog`: CommitLog files built byte by byte from the
//! documented format (files ending in blank filler, a corrupted body CRC, a truncated
//! last message), imported with the real binary and read back with the real store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::import_common;

use dledger::upgrade::IMPORT_DIGEST_FILE;
use dledger::upgrade::fixtures::CommitLogImage;
use import_common::{
    COMMITLOG_FILE_BYTES, GROUP, group_dir, import_commitlog, read_log, sample_commitlog, text,
};

const FILE_BYTES: u64 = COMMITLOG_FILE_BYTES;

/// About 3 files of messages of varied sizes (so each older file ends in a filler).
fn commitlog() -> CommitLogImage {
    let img = sample_commitlog(160, None);
    assert!(img.files.len() >= 3, "the fixture spans files");
    img
}

fn import(
    src: &std::path::Path,
    files: &[(u64, Vec<u8>)],
    config: &std::path::Path,
    extra: &[&str],
) -> std::process::Output {
    import_commitlog(src, files, config, extra)
}

#[test]
fn a_commitlog_with_fillers_and_a_cut_last_message_imports_up_to_the_last_whole_one() {
    let cluster = import_common::three_nodes();
    let img = commitlog();
    let (last_at, last) = img.messages.last().cloned().unwrap();
    // Cut the newest file inside its last message: the broker stopped mid-write.
    let mut files = img.files.clone();
    let newest = files.last_mut().unwrap();
    newest
        .1
        .truncate((last_at - newest.0) as usize + last.len() / 2);
    let src = cluster.dir.join("commitlog");
    let config = &cluster.nodes[0].config_path;

    // A dry run reports and writes nothing.
    let dry = import(&src, &files, config, &["--dry-run"]);
    assert!(dry.status.success(), "{}", text(&dry));
    assert!(!group_dir(config, GROUP).join(IMPORT_DIGEST_FILE).exists());

    let out = import(&src, &files, config, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let whole = img.messages.len() - 1;
    assert!(
        stdout.contains(&format!(
            "checked: {whole} entries importable as indexes 1..={whole}"
        )),
        "{}",
        text(&out)
    );
    let cut_offset = last_at - files.last().unwrap().0;
    assert!(
        stdout.contains(&format!(
            "rejected: 1 (truncated tail at offset {cut_offset} of CommitLog file {:020}",
            files.last().unwrap().0
        )),
        "{}",
        text(&out)
    );

    // One entry per whole message, bodies unchanged, term 1, indexes from 1.
    let log = read_log(config, GROUP);
    assert_eq!(log.len(), whole);
    for (i, ((index, term, _, body), (_, msg))) in log.iter().zip(&img.messages).enumerate() {
        assert_eq!((*index, *term), (i as u64 + 1, 1));
        assert_eq!(body, msg, "entry {index}");
    }
    assert!(group_dir(config, GROUP).join(IMPORT_DIGEST_FILE).exists());

    // A second import into the now non-empty log is refused, and says so.
    let again = import(&src, &files, config, &[]);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already holds an imported prefix"),
        "{}",
        text(&again)
    );
    // Without the digest, the records themselves make the log non-empty.
    std::fs::remove_file(group_dir(config, GROUP).join(IMPORT_DIGEST_FILE)).unwrap();
    let again = import(&src, &files, config, &[]);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("is not empty"),
        "{}",
        text(&again)
    );
}

#[test]
fn a_corrupted_body_crc_is_refused_naming_file_and_offset_and_nothing_is_written() {
    let cluster = import_common::three_nodes();
    let mut img = commitlog();
    // Damage one body byte of a message in the second file (its stored CRC stays).
    let (at, msg) = img
        .messages
        .iter()
        .find(|(at, _)| *at >= FILE_BYTES + 1000)
        .cloned()
        .unwrap();
    let body_at = at + msg.len() as u64 - 40; // inside the body, before topic/properties
    let old = msg[msg.len() - 40];
    img.overwrite(body_at, &[old ^ 0xff]);
    let src = cluster.dir.join("commitlog-bad");
    let config = &cluster.nodes[0].config_path;
    let out = import(&src, &img.files, config, &[]);
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    let file = at - at % FILE_BYTES;
    assert!(
        err.contains(&format!(
            "RocketMQ CommitLog file {file:020}, byte offset {}: BODYCRC",
            at - file
        )),
        "{}",
        text(&out)
    );
    // Nothing imported: no digest, no log written.
    let dir = group_dir(config, GROUP);
    assert!(!dir.join(IMPORT_DIGEST_FILE).exists());
    assert!(!dir.join("data").exists(), "the check pass writes nothing");
}
