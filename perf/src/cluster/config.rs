//! Node configs of the harnesses' clusters: the keys every node needs (ports, storage,
//! peers, groups), the settings that keep several nodes lean on one small machine, and
//! writing a config file only after the server's own parser has accepted it.

use std::fs;
use std::path::{Path, PathBuf};

use dledger::config::parse_file_contents;

use crate::error::{PerfError, PerfResult};

/// Several nodes and the load share a few cores: one unpinned shard each, so the OS
/// places the threads. A harness that measures shards overrides `shards`.
pub const LEAN_NODE: &[(&str, &str)] = &[("pinShards", "false"), ("shards", "1")];

/// Disk-usage ratios for scratch clusters. The harnesses' data is throw-away on what is
/// often a shared disk (other tenants' files count in statvfs): refuse writes only when
/// the disk is really full, not at DLedger's production 90%, and keep retention (which
/// would delete entries the checkers read back) out of the way.
pub const SCRATCH_DISK_RATIOS: &[(&str, &str)] = &[
    ("diskSpaceRatioToCheckExpired", "0.96"),
    ("diskSpaceRatioToForceClean", "0.97"),
    ("diskSpaceRatioToRefuseWrites", "0.98"),
];

/// Which groups a node serves, in which config form.
#[derive(Debug, Clone, Copy)]
pub enum Groups<'a> {
    /// `dLegerGroups=a,b,…` (the multi-group form).
    List(&'a [String]),
    /// The RocketMQ broker form of one group: `brokerName` = `dLegerGroup` = the name,
    /// and the commitlog under `<store>/commitlog`.
    Broker(&'a str),
}

/// Who node `self_id` is and where it listens, stores and finds its peers.
#[derive(Debug, Clone, Copy)]
pub struct NodeIdentity<'a> {
    /// `brokerClusterName`.
    pub cluster_name: &'a str,
    /// `n0`, `n1`, …
    pub self_id: &'a str,
    pub client_port: u16,
    pub store_dir: &'a Path,
    pub groups: Groups<'a>,
    /// `(id, host:port)` of every peer as this node dials it, itself included.
    pub peers: &'a [(String, String)],
}

/// An ordered `key=value` list; setting a key again replaces its value in place.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    pairs: Vec<(String, String)>,
}

impl Settings {
    /// The keys node `id` needs, nothing else (every other setting at its default).
    pub fn required(id: &NodeIdentity<'_>) -> Settings {
        let peers: Vec<String> = id.peers.iter().map(|(n, a)| format!("{n}-{a}")).collect();
        let mut s = Settings::default();
        s.set("brokerClusterName", id.cluster_name)
            .set("listenPort", id.client_port)
            .set("storePathRootDir", id.store_dir.display())
            .set("enableDLegerCommitLog", "true");
        match id.groups {
            Groups::List(names) => {
                s.set("dLegerGroups", names.join(","));
            }
            Groups::Broker(name) => {
                s.set("brokerName", name)
                    .set(
                        "storePathCommitLog",
                        id.store_dir.join("commitlog").display(),
                    )
                    .set("dLegerGroup", name);
            }
        }
        s.set("dLegerPeers", peers.join(";"))
            .set("dLegerSelfId", id.self_id);
        s
    }

    /// Sets `key` (replacing an earlier value, keeping its place).
    pub fn set(&mut self, key: &str, value: impl std::fmt::Display) -> &mut Settings {
        let value = value.to_string();
        match self.pairs.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.pairs.push((key.to_owned(), value)),
        }
        self
    }

    /// Sets every pair, in order.
    pub fn set_all<K: AsRef<str>, V: std::fmt::Display>(
        &mut self,
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> &mut Settings {
        for (k, v) in pairs {
            self.set(k.as_ref(), v);
        }
        self
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The properties file: a comment line, then `key=value` lines.
    pub fn text(&self, comment: &str) -> String {
        let mut out = format!("# {comment}\n");
        for (k, v) in &self.pairs {
            out.push_str(&format!("{k}={v}\n"));
        }
        out
    }

    /// Writes `dir/<name>.conf` once the server's config parser has accepted the text,
    /// so a bad generated config fails here with the parser's message, before any node
    /// runs.
    pub fn write_validated(&self, dir: &Path, name: &str, comment: &str) -> PerfResult<PathBuf> {
        let path = dir.join(format!("{name}.conf"));
        let text = self.text(comment);
        parse_file_contents(&path.to_string_lossy(), &text).map_err(|e| {
            PerfError::Cluster(format!("the generated config of {name} is invalid: {e}"))
        })?;
        fs::write(&path, &text).map_err(|e| PerfError::io("writing", &path, e))?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peers() -> Vec<(String, String)> {
        (0..3)
            .map(|i| (format!("n{i}"), format!("127.0.0.1:{}", 2001 + i)))
            .collect()
    }

    #[test]
    fn both_group_forms_validate_and_later_values_win() {
        let groups = vec!["A0".to_owned(), "A1".to_owned()];
        let peers = peers();
        for form in [Groups::List(&groups), Groups::Broker("RaftNode00")] {
            let id = NodeIdentity {
                cluster_name: "TestCluster",
                self_id: "n1",
                client_port: 1002,
                store_dir: Path::new("/tmp/dledger-perf-config-test/n1"),
                groups: form,
                peers: &peers,
            };
            let mut s = Settings::required(&id);
            s.set_all(LEAN_NODE.iter().copied())
                .set_all(SCRATCH_DISK_RATIOS.iter().copied())
                .set("shards", 2);
            assert_eq!(s.get("shards"), Some("2"));
            assert_eq!(s.text("t").matches("shards=").count(), 1);
            let loaded = parse_file_contents("t.conf", &s.text("t"))
                .unwrap_or_else(|e| panic!("{form:?}: {e}\n{}", s.text("t")));
            let want = match form {
                Groups::List(g) => g.len(),
                Groups::Broker(_) => 1,
            };
            assert_eq!(loaded.config.groups.len(), want);
            assert_eq!(loaded.config.client_listen.port, 1002);
        }
    }

    #[test]
    fn an_invalid_config_is_not_written() {
        let dir = std::env::temp_dir().join(format!("dledger-perf-cfg-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("temp dir");
        let mut s = Settings::default();
        s.set("listenPort", "not-a-port");
        let err = s
            .write_validated(&dir, "n0", "test")
            .expect_err("a bad port is refused");
        assert!(err.to_string().contains("n0"), "{err}");
        assert!(!dir.join("n0.conf").exists());
        fs::remove_dir_all(&dir).expect("remove temp dir");
    }
}
