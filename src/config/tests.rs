//! Tests over whole files: the shipped configs, every error class, and garbage input.

use proptest::prelude::*;

use super::*;

const BROKER_N0: &str = include_str!("../../conf/dledger/broker-n0.conf");
const BROKER_N1: &str = include_str!("../../conf/dledger/broker-n1.conf");
const BROKER_N2: &str = include_str!("../../conf/dledger/broker-n2.conf");
const MULTI_N0: &str = include_str!("../../conf/multigroup/node-n0.conf");
const MULTI_N1: &str = include_str!("../../conf/multigroup/node-n1.conf");
const MULTI_N2: &str = include_str!("../../conf/multigroup/node-n2.conf");
const DOCS: &str = include_str!("../../docs/config.md");

fn parse(text: &str) -> Result<Loaded, ConfigError> {
    parse_file_contents("test.conf", text)
}

fn ok(text: &str) -> NodeConfig {
    match parse(text) {
        Ok(l) => l.config,
        Err(e) => panic!("expected a valid config, got: {e}"),
    }
}

/// A minimal valid single-group file plus `extra` lines.
fn base(extra: &str) -> String {
    format!(
        "dLegerGroup=G\ndLegerPeers=n0-127.0.0.1:40911;n1-127.0.0.1:40912;n2-127.0.0.1:40913\n\
         dLegerSelfId=n0\nlistenPort=30911\n{extra}"
    )
}

fn err(text: &str) -> ConfigError {
    match parse(text) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e,
    }
}

#[test]
fn shipped_broker_files_parse_as_rocketmq_writes_them() {
    for (i, text) in [BROKER_N0, BROKER_N1, BROKER_N2].into_iter().enumerate() {
        let name = format!("conf/dledger/broker-n{i}.conf");
        let loaded = parse_file_contents(&name, text).unwrap();
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        let c = loaded.config;
        assert_eq!(c.cluster_name, "RaftCluster");
        assert_eq!(c.self_id, i as u32);
        assert_eq!(c.self_name, format!("n{i}"));
        assert_eq!(
            c.client_listen.to_string(),
            format!("127.0.0.1:309{}1", i + 1)
        );
        assert_eq!(
            c.peer_listen.to_string(),
            format!("127.0.0.1:4091{}", i + 1)
        );
        assert_eq!(c.namesrv, vec![parse_host_port("127.0.0.1:9876").unwrap()]);
        assert_eq!(c.storage.root_dir, format!("/tmp/rmqstore/node0{i}"));
        assert_eq!(
            c.storage.commitlog_dir,
            format!("/tmp/rmqstore/node0{i}/commitlog")
        );
        assert_eq!(c.groups.len(), 1);
        let g = &c.groups[0];
        assert_eq!(g.name, "RaftNode00");
        assert_eq!(g.members, vec![0, 1, 2]);
        assert_eq!(g.flush, FlushDiskType::SyncFlush);
        assert_eq!(
            c.group_dir(g),
            format!("/tmp/rmqstore/node0{i}/dledger-n{i}/RaftNode00")
        );
        assert_eq!(c.self_peer().follower_bid(), i as u32 + 1);
        // sendMessageThreadPoolNums=16 caps the automatic shard count.
        assert_eq!(c.shards.count(64), 16);
        assert_eq!(c.shards.count(2), 2);
    }
}

#[test]
fn shipped_multigroup_files_parse_and_agree() {
    let mut group_ids = Vec::new();
    for (i, text) in [MULTI_N0, MULTI_N1, MULTI_N2].into_iter().enumerate() {
        let name = format!("conf/multigroup/node-n{i}.conf");
        let loaded = parse_file_contents(&name, text).unwrap();
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        let c = loaded.config;
        assert_eq!(c.groups.len(), 8);
        assert_eq!(c.peers.len(), 3);
        assert_eq!(c.client_listen.port, 31911 + 10 * i as u16);
        for (k, g) in c.groups.iter().enumerate() {
            assert_eq!(g.name, format!("RaftNode0{k}"));
            assert_eq!(
                g.preferred_leader,
                Some(k as u32 % 3),
                "round-robin leaders"
            );
            assert!(c.group_dir(g).starts_with("/tmp/rmqstore-multi/"));
        }
        group_ids.push(c.groups.iter().map(|g| g.id).collect::<Vec<_>>());
        // Every node's client port differs from every peer port of the cluster.
        assert!(
            c.peers
                .iter()
                .all(|p| !p.peer_addr.may_clash(&c.client_listen))
        );
    }
    assert!(
        group_ids.windows(2).all(|w| w[0] == w[1]),
        "wire ids agree on all nodes"
    );
}

#[test]
fn defaults_give_fast_failover() {
    let c = ok(&base(""));
    let (lo, hi) = c.timing.election_timeout_ms();
    assert_eq!((lo, hi), (450, 600));
    let rc = c.raft_config(&c.groups[0]);
    assert_eq!(rc.heartbeat_interval_ticks, 10);
    assert_eq!(
        (rc.election_timeout_min_ticks, rc.election_timeout_max_ticks),
        (45, 60)
    );
    assert!(rc.check_quorum);
    assert_eq!(rc.voters, vec![0, 1, 2]);
    // DLedger's own timings reproduce DLedger's ~6.3-7 s.
    let slow = ok(&base(
        "heartBeatTimeIntervalMs=2000\nmaxHeartBeatLeak=3\nminVoteIntervalMs=300\nmaxVoteIntervalMs=1000\n",
    ));
    assert_eq!(slow.timing.election_timeout_ms(), (6300, 7000));
}

#[test]
fn error_display_names_file_line_key_and_reason() {
    let text = BROKER_N0.replace("dLegerSelfId=n0", "dLegerSelfId=n9");
    let e = parse_file_contents("conf/dledger/broker-n0.conf", &text).unwrap_err();
    assert_eq!(
        e.to_string(),
        "conf/dledger/broker-n0.conf:11: key 'dLegerSelfId': 'n9' is not among dLegerPeers (n0, n1, n2)"
    );
}

/// Each error class: (extra lines, key the error must name, expected line, words in reason).
#[test]
fn every_error_class_names_its_key_and_line() {
    let cases: &[(&str, &str, Option<u32>, &str)] = &[
        ("listenPort2=1\n", "listenPort2", Some(5), "unknown key"),
        (
            "dLedgerPeers=x\n",
            "dLedgerPeers",
            Some(5),
            "did you mean 'dLegerPeers'",
        ),
        (
            "tickMs=ten\n",
            "tickMs",
            Some(5),
            "not a non-negative whole number",
        ),
        ("tickMs=0\n", "tickMs", Some(5), "not in 1..=1000"),
        (
            "heartBeatTimeIntervalMs=99999999999999999999\n",
            "heartBeatTimeIntervalMs",
            Some(5),
            "too large",
        ),
        (
            "diskSpaceRatioToForceClean=1.5\n",
            "diskSpaceRatioToForceClean",
            Some(5),
            "not in (0, 1]",
        ),
        (
            "diskSpaceRatioToForceClean=0\n",
            "diskSpaceRatioToForceClean",
            Some(5),
            "not in (0, 1]",
        ),
        (
            "diskSpaceRatioToForceClean=0.5\n",
            "diskSpaceRatioToForceClean",
            Some(5),
            "below the ratio",
        ),
        (
            "minVoteIntervalMs=500\nmaxVoteIntervalMs=400\n",
            "minVoteIntervalMs",
            Some(5),
            "must be below",
        ),
        (
            "minVoteIntervalMs=300\nmaxVoteIntervalMs=300\n",
            "minVoteIntervalMs",
            Some(5),
            "must be below",
        ),
        (
            "minVoteIntervalMs=100\nmaxVoteIntervalMs=105\n",
            "maxVoteIntervalMs",
            Some(6),
            "2 ticks",
        ),
        (
            "heartBeatTimeIntervalMs=5\n",
            "heartBeatTimeIntervalMs",
            Some(5),
            "shorter than one tick",
        ),
        (
            "flushDiskType=SYNC\n",
            "flushDiskType",
            Some(5),
            "SYNC_FLUSH or ASYNC_FLUSH",
        ),
        (
            "diskSyncMethod=fsync\n",
            "diskSyncMethod",
            Some(5),
            "ADAPTIVE, FDATASYNC or O_DSYNC",
        ),
        (
            "enableBatchPush=yes\n",
            "enableBatchPush",
            Some(5),
            "true or false",
        ),
        (
            "enableDLegerCommitLog=false\n",
            "enableDLegerCommitLog",
            Some(5),
            "always runs",
        ),
        (
            "listenPort=40912\n",
            "listenPort",
            Some(5),
            "set twice (first on line 4)",
        ),
        (
            "preferredLeaderId=n7\n",
            "preferredLeaderId",
            Some(5),
            "not a peer",
        ),
        (
            "preferredLeaderId=n1\npreferredLeaderIds=n2\n",
            "preferredLeaderIds",
            Some(6),
            "contradicts",
        ),
        (
            "fileReservedTime=48\nfileReservedHours=72\n",
            "fileReservedTime",
            Some(5),
            "contradicts",
        ),
        (
            "diskMaxUsedSpaceRatio=75\ndiskSpaceRatioToCheckExpired=0.7\n",
            "diskMaxUsedSpaceRatio",
            Some(5),
            "contradicts",
        ),
        (
            "mappedFileSizeForEntryData=1048577\n",
            "mappedFileSizeForEntryData",
            Some(5),
            "multiple of 4096",
        ),
        (
            "maxBodyBytes=20000000\n",
            "maxBodyBytes",
            Some(5),
            "no room",
        ),
        ("maxFrameBytes=1000\n", "maxFrameBytes", Some(5), "not in"),
        ("cpuSet=1-0\n", "cpuSet", Some(5), "backwards"),
        ("shards=0\n", "shards", Some(5), "not in 1..=256"),
        ("metricsPort=30911\n", "metricsPort", Some(5), "already"),
        (
            "namesrvAddr=127.0.0.1\n",
            "namesrvAddr",
            Some(5),
            "host:port",
        ),
        (
            "group.G.tickMs=5\n",
            "group.G.tickMs",
            Some(5),
            "cannot be set per group",
        ),
        (
            "group.H.preferredLeaderId=n1\n",
            "group.H.preferredLeaderId",
            Some(5),
            "not configured",
        ),
        ("dLegerGroups=A,B\n", "dLegerGroup", Some(1), "not both"),
    ];
    for (extra, key, line, words) in cases {
        let e = err(&base(extra));
        assert_eq!(e.file, "test.conf");
        assert_eq!(e.key.as_deref(), Some(*key), "{extra:?} → {e}");
        assert_eq!(e.line, *line, "{extra:?} → {e}");
        assert!(e.reason.contains(words), "{extra:?} → {e}");
    }
}

#[test]
fn peer_contradictions() {
    // Client port equal to a peer port on the same host.
    let e = err(&base("").replace("listenPort=30911", "listenPort=40913"));
    assert_eq!((e.key.as_deref(), e.line), (Some("listenPort"), Some(4)));
    // Duplicate ids, shared addresses, self missing.
    let e = err(&base("").replace("n2-127.0.0.1:40913", "n1-127.0.0.1:40914"));
    assert_eq!(e.key.as_deref(), Some("dLegerPeers"));
    assert!(e.reason.contains("twice"), "{e}");
    let e = err(&base("").replace("40913", "40912"));
    assert!(e.reason.contains("share"), "{e}");
    let e = err(&base("").replace("dLegerSelfId=n0", "dLegerSelfId=x"));
    assert_eq!(e.key.as_deref(), Some("dLegerSelfId"));
    // Missing required keys have no line.
    let e = err("dLegerGroup=G\ndLegerSelfId=n0\n");
    assert_eq!((e.key.as_deref(), e.line), (Some("dLegerPeers"), None));
    assert_eq!(
        e.to_string(),
        "test.conf: key 'dLegerPeers': required but not set"
    );
    let e = err("dLegerPeers=n0-a:1\n");
    assert_eq!(e.key.as_deref(), Some("dLegerSelfId"));
    let e = err("dLegerPeers=n0-a:1\ndLegerSelfId=n0\n");
    assert_eq!(e.key.as_deref(), Some("dLegerGroup"));
    // More than MAX_PEERS.
    let many: Vec<String> = (0..8).map(|i| format!("n{i}-h:{}", 100 + i)).collect();
    let e = err(&format!(
        "dLegerGroup=G\ndLegerSelfId=n0\ndLegerPeers={}\n",
        many.join(";")
    ));
    assert!(e.reason.contains("more than 7"), "{e}");
}

#[test]
fn syntax_errors_name_the_line() {
    let e = err(&base("x=\\u12zz\n"));
    assert_eq!((e.line, e.key.as_deref()), (Some(5), None));
}

#[test]
fn warnings_do_not_stop() {
    let loaded = parse(&base("brokerName=Other\nbrokerId=0\n")).unwrap();
    let keys: Vec<_> = loaded
        .warnings
        .iter()
        .filter_map(|w| w.key.clone())
        .collect();
    assert!(keys.contains(&"dLegerGroup".to_string()), "{keys:?}");
    assert!(keys.contains(&"brokerId".to_string()), "{keys:?}");
    let two = parse("dLegerGroup=G\ndLegerPeers=n0-127.0.0.1:1;n1-127.0.0.1:2\ndLegerSelfId=n0\n")
        .unwrap();
    assert!(
        two.warnings
            .iter()
            .any(|w| w.reason.contains("no failover"))
    );
    let same = parse(&base("preferredLeaderId=n2\npreferredLeaderIds=n2\n")).unwrap();
    assert_eq!(same.config.groups[0].preferred_leader, Some(2));
    let pref = parse(&base("preferredLeaderIds=n1;n2\n")).unwrap();
    assert_eq!(pref.config.groups[0].preferred_leader, Some(1));
    assert_eq!(pref.warnings.len(), 1);
}

#[test]
fn multigroup_overrides() {
    let text = "dLegerGroups=A, B;C\n\
        dLegerPeers=n0-127.0.0.1:41911;n1-127.0.0.1:41912;n2-127.0.0.1:41913\n\
        dLegerSelfId=n1\nlistenPort=31921\nflushDiskType=ASYNC_FLUSH\n\
        group.B.dLegerPeers=n0-127.0.0.1:41911;n1-127.0.0.1:41912;n3-127.0.0.1:41914\n\
        group.B.flushDiskType=SYNC_FLUSH\ngroup.C.preferredLeaderId=n2\n\
        group.A.maxPendingRequestsNum=5\n";
    let c = ok(text);
    let b = c.group("B").unwrap();
    assert_eq!(b.members, vec![0, 1, 3]);
    assert_eq!(b.flush, FlushDiskType::SyncFlush);
    assert_eq!(c.group("A").unwrap().flush, FlushDiskType::AsyncFlush);
    assert_eq!(c.group("A").unwrap().max_pending_requests, 5);
    assert_eq!(c.group("C").unwrap().preferred_leader, Some(2));
    assert_eq!(
        c.peers.iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![0, 1, 2, 3]
    );
    assert_eq!(c.group_by_id(group_id_of("C")).unwrap().name, "C");

    // A node's address must be the same in every group.
    let bad = text.replace("n3-127.0.0.1:41914", "n2-127.0.0.1:41999");
    let e = err(&bad);
    assert_eq!(
        (e.key.as_deref(), e.line),
        (Some("group.B.dLegerPeers"), Some(6))
    );
    assert!(e.reason.contains("contradicts"), "{e}");
    // Another node's id may not take a used address.
    let e = err(&text.replace("n3-127.0.0.1:41914", "n3-127.0.0.1:41913"));
    assert!(e.reason.contains("both listen"), "{e}");
    // A group override that leaves this node out.
    let e = err(&text.replace(
        "group.B.dLegerPeers=n0-127.0.0.1:41911;n1-127.0.0.1:41912",
        "group.B.dLegerPeers=n0-127.0.0.1:41911;n4-127.0.0.1:41915",
    ));
    assert_eq!(e.key.as_deref(), Some("group.B.dLegerPeers"));
    // Duplicate and malformed group names.
    assert!(
        err(&text.replace("A, B;C", "A,B,A"))
            .reason
            .contains("twice")
    );
    assert!(
        err(&text.replace("A, B;C", "A,B.x,C"))
            .reason
            .contains("contains '.'")
    );
}

#[test]
fn shard_settings() {
    let c = ok(&base("cpuSet=0-1\n"));
    assert_eq!(c.shards.count(8), 2);
    assert_eq!(c.shards.cpu_for_shard(3, 8), Some(1));
    let c = ok(&base("shards=4\ncpuSet=0,1\npinShards=false\n"));
    assert_eq!(c.shards.count(1), 4);
    assert_eq!(c.shards.cpu_for_shard(0, 8), None);
    let c = ok(&base("sendMessageThreadPoolNums=3\nshards=5\n"));
    assert_eq!(
        c.shards.count(64),
        5,
        "an explicit shards wins over the cap"
    );
    let c = ok(&base("enableBatchPush=false\n"));
    assert_eq!(c.limits.max_batch_push_entries, 1);
}

#[test]
fn disk_sync_method() {
    assert_eq!(ok(&base("")).storage.sync_method, DiskSyncMethod::Adaptive);
    let c = ok(&base("diskSyncMethod=ADAPTIVE\n"));
    assert_eq!(c.storage.sync_method.as_str(), "ADAPTIVE");
    let c = ok(&base("diskSyncMethod=FDATASYNC\n"));
    assert_eq!(c.storage.sync_method, DiskSyncMethod::Fdatasync);
    let c = ok(&base("diskSyncMethod=O_DSYNC\n"));
    assert_eq!(c.storage.sync_method, DiskSyncMethod::ODsync);
    assert_eq!(c.storage.sync_method.as_str(), "O_DSYNC");
}

#[test]
fn shared_flush_is_on_unless_turned_off() {
    assert!(ok(&base("")).storage.shared_flush);
    assert!(!ok(&base("enableSharedFlush=false\n")).storage.shared_flush);
    assert!(ok(&base("enableSharedFlush=true\n")).storage.shared_flush);
}

#[test]
fn docs_cover_every_key() {
    for key in NODE_KEYS.iter().chain(IGNORED_ROCKETMQ_KEYS) {
        assert!(
            DOCS.contains(&format!("`{key}`")),
            "docs/config.md lacks `{key}`"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn garbage_never_panics(text in "\\PC{0,400}") {
        let _ = parse(&text);
    }

    #[test]
    fn config_like_garbage_never_panics(
        lines in proptest::collection::vec(
            (proptest::sample::select(NODE_KEYS.to_vec()), "[ -~]{0,40}"), 0..12)
    ) {
        let text: String = lines.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        let _ = parse(&base(&text));
    }

    #[test]
    fn mutated_shipped_file_never_panics(pos in 0usize..400, byte in any::<u8>()) {
        let mut bytes = BROKER_N0.as_bytes().to_vec();
        let at = pos % bytes.len();
        bytes[at] = byte;
        let text = String::from_utf8_lossy(&bytes);
        if let Err(e) = parse(&text) {
            // Every error names the file and either a key or a line.
            prop_assert_eq!(e.file.as_str(), "test.conf");
            prop_assert!(e.key.is_some() || e.line.is_some());
        }
    }
}
