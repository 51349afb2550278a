//! Every key a config file may contain. docs/config.md documents each one (a test checks).

/// Node-wide keys: RocketMQ broker keys, DLedger's own options by their names, and ours.
pub const NODE_KEYS: &[&str] = &[
    // RocketMQ broker keys.
    "brokerClusterName",
    "brokerName",
    "brokerIP1",
    "listenPort",
    "namesrvAddr",
    "storePathRootDir",
    "storePathCommitLog",
    "storePathDLedgerCommitLog",
    "enableDLegerCommitLog",
    "dLegerGroup",
    "dLegerPeers",
    "dLegerSelfId",
    "sendMessageThreadPoolNums",
    "preferredLeaderId",
    "flushDiskType",
    "enableBatchPush",
    "fileReservedTime",
    "diskMaxUsedSpaceRatio",
    "serverChannelMaxIdleTimeSeconds",
    // DLedger's own options.
    "preferredLeaderIds",
    "heartBeatTimeIntervalMs",
    "maxHeartBeatLeak",
    "minVoteIntervalMs",
    "maxVoteIntervalMs",
    "maxPendingRequestsNum",
    "maxWaitAckTimeMs",
    "maxPushTimeOutMs",
    "maxBatchPushSize",
    "mappedFileSizeForEntryData",
    "mappedFileSizeForEntryIndex",
    "fileReservedHours",
    "deleteWhen",
    "diskSpaceRatioToCheckExpired",
    "diskSpaceRatioToForceClean",
    "flushFileInterval",
    "checkPointInterval",
    "peerPushThrottlePoint",
    "peerPushQuota",
    "maxLeadershipTransferWaitIndex",
    "leadershipTransferWaitTimeout",
    // dledger-rs keys.
    "dLegerGroups",
    "shards",
    "cpuSet",
    "pinShards",
    "tickMs",
    "maxFrameBytes",
    "maxBodyBytes",
    "maxBodiesPerAppend",
    "maxInflightAppends",
    "maxBatchPushEntries",
    "peerQueueMaxBytes",
    "maxClientConnections",
    "clientFrameTimeoutMs",
    "diskSpaceRatioToRefuseWrites",
    "diskSyncMethod",
    "enableSharedFlush",
    "metricsPort",
];

/// RocketMQ broker keys that mean nothing in DLedger mode (RocketMQ ignores them too once
/// `enableDLegerCommitLog=true`): accepted with a warning so broker files work verbatim.
pub const IGNORED_ROCKETMQ_KEYS: &[&str] = &["brokerId", "brokerRole"];

/// Keys a group may override with `group.<name>.<key>=value` in the multi-group form.
pub const GROUP_KEYS: &[&str] = &[
    "dLegerPeers",
    "preferredLeaderId",
    "preferredLeaderIds",
    "flushDiskType",
    "maxPendingRequestsNum",
    "maxWaitAckTimeMs",
    "fileReservedHours",
];

/// The prefix of per-group override keys.
pub const GROUP_PREFIX: &str = "group.";

/// A known key close to `unknown` (same letters in another case, or at most two edits
/// away), to suggest in the error.
pub fn suggest(unknown: &str, known: &[&'static str]) -> Option<&'static str> {
    if let Some(k) = known.iter().find(|k| k.eq_ignore_ascii_case(unknown)) {
        return Some(k);
    }
    // DLedger spells it "dLeger"; people write "dLedger".
    let respelled = unknown
        .replace("dLedger", "dLeger")
        .replace("DLedger", "DLeger");
    if let Some(k) = known.iter().find(|k| k.eq_ignore_ascii_case(&respelled)) {
        return Some(k);
    }
    known
        .iter()
        .map(|k| {
            (
                edit_distance(&unknown.to_ascii_lowercase(), &k.to_ascii_lowercase()),
                k,
            )
        })
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| *k)
}

/// Levenshtein distance, bounded: inputs longer than 64 chars are never "close".
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len() > 64 || b.len() > 64 {
        return usize::MAX;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let subst = prev[j] + usize::from(ca != cb);
            cur[j + 1] = subst.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(suggest("dLedgerPeers", NODE_KEYS), Some("dLegerPeers"));
        assert_eq!(suggest("listenport", NODE_KEYS), Some("listenPort"));
        assert_eq!(
            suggest("heartBeatTimeIntervalMS", NODE_KEYS),
            Some("heartBeatTimeIntervalMs")
        );
        assert_eq!(suggest("tickMss", NODE_KEYS), Some("tickMs"));
        assert_eq!(suggest("completelyUnrelated", NODE_KEYS), None);
    }

    #[test]
    fn no_key_is_listed_twice() {
        for (i, k) in NODE_KEYS.iter().enumerate() {
            assert!(!NODE_KEYS[..i].contains(k), "{k}");
        }
        for k in GROUP_KEYS {
            assert!(
                NODE_KEYS.contains(k),
                "group key {k} must also be a node key"
            );
        }
    }
}
