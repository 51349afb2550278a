//! The test cluster harness itself: configs rewritten from conf/ must validate, with every
//! port moved to a fresh one and storage inside the test directory. Needs no server.

use crate::common;

use std::collections::HashSet;
use std::fs;

use common::cluster::TestCluster;
use dledger::config::parse_file_contents;

fn check(cluster: &TestCluster, nodes: usize, groups: usize, peers: usize) {
    assert_eq!(cluster.len(), nodes);
    let mut ports = HashSet::new();
    for node in &cluster.nodes {
        let text = fs::read_to_string(&node.config_path).expect("config written");
        assert!(!text.contains("namesrvAddr"), "no name server in tests");
        let cfg = parse_file_contents("test", &text).expect("valid").config;
        assert_eq!(cfg.groups.len(), groups);
        assert_eq!(cfg.peers.len(), peers, "{text}");
        for p in &cfg.peers {
            ports.insert(p.peer_addr.port);
        }
        ports.insert(cfg.client_listen.port);
        assert_eq!(cfg.client_listen.port, node.client_addr.port);
        // The example ports are gone (moved to free ones).
        assert!(![30911, 30921, 30931, 31911, 31921, 31931].contains(&cfg.client_listen.port));
        for p in &cfg.peers {
            assert!(
                ![40911, 40912, 40913, 41911, 41912, 41913].contains(&p.peer_addr.port),
                "peer port {} not moved",
                p.peer_addr.port
            );
        }
        let root = cfg.storage.root_dir.clone();
        assert!(
            root.starts_with(&*cluster.dir.to_string_lossy()),
            "storage {root} is outside the test dir"
        );
        assert!(text.contains("pinShards=false"));
    }
    // Client ports of all nodes plus the shared peer ports: all distinct.
    assert_eq!(ports.len(), nodes + peers, "{ports:?}");
}

#[test]
fn three_node_configs_validate_with_fresh_ports_and_private_storage() {
    let c = TestCluster::three_nodes();
    check(&c, 3, 1, 3);
    assert_eq!(c.groups(), vec!["RaftNode00".to_string()]);
    assert_eq!(c.peers_arg().split(';').count(), 3);
    let dir = c.dir.clone();
    drop(c);
    assert!(!dir.exists(), "the test dir is removed on drop");
}

#[test]
fn multigroup_and_two_node_configs_validate() {
    let c = TestCluster::multigroup();
    check(&c, 3, 8, 3);
    let c = TestCluster::two_nodes();
    check(&c, 2, 1, 2);
}
