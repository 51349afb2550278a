//! Node-wide settings: timings, limits, storage and shards, each validated on its own.

use std::ops::RangeInclusive;

use super::build::{
    Ctx, FRAME_OVERHEAD_BYTES, RESERVED_HOURS_MAX, SEGMENT_ALIGN_BYTES, in_range, parse_sync_method,
};
use super::error::ConfigError;
use super::model::*;
use super::values::*;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

impl Ctx<'_> {
    pub(super) fn reserved_hours(&self) -> Result<u32, ConfigError> {
        let dledger = self.parse("fileReservedHours", |v| {
            in_range(v, &(1..=RESERVED_HOURS_MAX))
        })?;
        let rocketmq = self.parse("fileReservedTime", |v| {
            in_range(v, &(1..=RESERVED_HOURS_MAX))
        })?;
        match (dledger, rocketmq) {
            (Some(a), Some(b)) if a != b => Err(self.key_error(
                "fileReservedTime",
                format!("{b} hours contradicts fileReservedHours={a}; set one"),
            )),
            (Some(h), _) | (None, Some(h)) => Ok(h as u32),
            (None, None) => Ok(72),
        }
    }

    pub(super) fn timing(&self) -> Result<Timing, ConfigError> {
        let timing = Timing {
            tick_ms: self.num32("tickMs", 10, 1..=1_000)?,
            heartbeat_interval_ms: self.num32("heartBeatTimeIntervalMs", 100, 1..=60_000)?,
            max_heartbeat_leak: self.num32("maxHeartBeatLeak", 3, 1..=100)?,
            min_vote_interval_ms: self.num32("minVoteIntervalMs", 150, 0..=60_000)?,
            max_vote_interval_ms: self.num32("maxVoteIntervalMs", 300, 1..=60_000)?,
            max_push_timeout_ms: self.num32("maxPushTimeOutMs", 1_000, 1..=600_000)?,
            leadership_transfer_wait_timeout_ms: self.num32(
                "leadershipTransferWaitTimeout",
                1_000,
                1..=600_000,
            )?,
            flush_file_interval_ms: self.num32("flushFileInterval", 10, 1..=10_000)?,
            check_point_interval_ms: self.num32("checkPointInterval", 3_000, 1..=3_600_000)?,
        };
        if timing.heartbeat_interval_ms < timing.tick_ms {
            return Err(self.key_error(
                "heartBeatTimeIntervalMs",
                format!(
                    "{} ms is shorter than one tick (tickMs={})",
                    timing.heartbeat_interval_ms, timing.tick_ms
                ),
            ));
        }
        if timing.min_vote_interval_ms >= timing.max_vote_interval_ms {
            let key = if self.node.contains_key("minVoteIntervalMs") {
                "minVoteIntervalMs"
            } else {
                "maxVoteIntervalMs"
            };
            return Err(self.key_error(
                key,
                format!(
                    "minVoteIntervalMs ({}) must be below maxVoteIntervalMs ({}): the random vote delay breaks split votes",
                    timing.min_vote_interval_ms, timing.max_vote_interval_ms
                ),
            ));
        }
        let (lo, hi) = timing.election_timeout_ticks();
        if hi < lo + 2 {
            return Err(self.key_error(
                "maxVoteIntervalMs",
                format!(
                    "the vote delay range {}..{} ms spans under 2 ticks of {} ms: elections would split",
                    timing.min_vote_interval_ms, timing.max_vote_interval_ms, timing.tick_ms
                ),
            ));
        }
        Ok(timing)
    }

    pub(super) fn limits(&self) -> Result<Limits, ConfigError> {
        let max_frame_bytes = self.num32(
            "maxFrameBytes",
            16 * MIB as u32,
            64 * KIB as u32..=GIB as u32,
        )?;
        let room = max_frame_bytes - FRAME_OVERHEAD_BYTES;
        let max_body_bytes = self.num32("maxBodyBytes", 4 * MIB as u32, 1..=u32::MAX)?;
        if max_body_bytes > room {
            return Err(self.key_error(
                "maxBodyBytes",
                format!("{max_body_bytes} bytes leave no room for the frame header within maxFrameBytes={max_frame_bytes} (at most {room})"),
            ));
        }
        let max_batch_push_bytes = self.num32("maxBatchPushSize", MIB as u32, 1..=u32::MAX)?;
        if max_batch_push_bytes > room {
            return Err(self.key_error(
                "maxBatchPushSize",
                format!("{max_batch_push_bytes} bytes do not fit in maxFrameBytes={max_frame_bytes} (at most {room})"),
            ));
        }
        let enable_batch_push = self.bool("enableBatchPush", true)?;
        let batch_entries = self.num32("maxBatchPushEntries", 1024, 1..=65_536)?;
        let peer_queue_max_bytes = self.num("peerQueueMaxBytes", 64 * MIB, 1..=64 * GIB)?;
        if peer_queue_max_bytes < u64::from(max_frame_bytes) {
            return Err(self.key_error(
                "peerQueueMaxBytes",
                format!("{peer_queue_max_bytes} bytes cannot hold one frame of maxFrameBytes={max_frame_bytes}"),
            ));
        }
        Ok(Limits {
            max_frame_bytes,
            max_body_bytes,
            max_bodies_per_append: self.num32("maxBodiesPerAppend", 1024, 1..=65_536)?,
            max_inflight_appends: self.num32("maxInflightAppends", 32, 1..=4_096)?,
            enable_batch_push,
            max_batch_push_entries: if enable_batch_push { batch_entries } else { 1 },
            max_batch_push_bytes,
            peer_push_throttle_point_bytes: self.num(
                "peerPushThrottlePoint",
                300 * MIB,
                1..=u64::MAX,
            )?,
            peer_push_quota_bytes_per_sec: self.num("peerPushQuota", 20 * MIB, 1..=u64::MAX)?,
            max_leadership_transfer_wait_index: self.num(
                "maxLeadershipTransferWaitIndex",
                1_000,
                0..=u64::MAX,
            )?,
            peer_queue_max_bytes,
            max_client_connections: self.num32("maxClientConnections", 1024, 1..=65_536)?,
            // RocketMQ's default; 0 (RocketMQ: never) is refused: every slot is bounded.
            client_idle_timeout_ms: 1000
                * self.num("serverChannelMaxIdleTimeSeconds", 120, 1..=86_400)?,
            client_frame_timeout_ms: self.num("clientFrameTimeoutMs", 10_000, 100..=600_000)?,
        })
    }

    pub(super) fn storage(&self, limits: &Limits) -> Result<Storage, ConfigError> {
        let root_dir = self
            .non_empty("storePathRootDir")?
            .unwrap_or_else(|| "/tmp/dledgerstore".to_string());
        let trimmed_root = root_dir.trim_end_matches('/');
        let commitlog_dir = self
            .non_empty("storePathCommitLog")?
            .unwrap_or_else(|| format!("{trimmed_root}/commitlog"));
        let dledger_base_dir = self
            .non_empty("storePathDLedgerCommitLog")?
            .unwrap_or_else(|| root_dir.clone());
        let data_segment_bytes =
            self.segment_size("mappedFileSizeForEntryData", 256 * MIB, MIB..=64 * GIB)?;
        let needed = u64::from(limits.max_body_bytes) + u64::from(FRAME_OVERHEAD_BYTES);
        if data_segment_bytes < needed {
            return Err(self.key_error(
                "mappedFileSizeForEntryData",
                format!("{data_segment_bytes} bytes cannot hold one record of maxBodyBytes={} (records never span segments)", limits.max_body_bytes),
            ));
        }
        let index_segment_bytes =
            self.segment_size("mappedFileSizeForEntryIndex", 16 * MIB, 64 * KIB..=16 * GIB)?;
        let delete_when_hours = self
            .parse("deleteWhen", parse_hours)?
            .unwrap_or_else(|| vec![4]);

        let check_expired = self.parse("diskSpaceRatioToCheckExpired", parse_ratio)?;
        let rocketmq_percent = self.parse("diskMaxUsedSpaceRatio", |v| in_range(v, &(1..=100)))?;
        let disk_ratio_check_expired = match (check_expired, rocketmq_percent) {
            (Some(r), Some(p)) if (r - p as f64 / 100.0).abs() > 1e-9 => {
                return Err(self.key_error(
                    "diskMaxUsedSpaceRatio",
                    format!("{p}% contradicts diskSpaceRatioToCheckExpired={r}; set one"),
                ));
            }
            (Some(r), _) => r,
            (None, Some(p)) => p as f64 / 100.0,
            (None, None) => 0.70,
        };
        let disk_ratio_force_clean = self
            .parse("diskSpaceRatioToForceClean", parse_ratio)?
            .unwrap_or(0.85);
        let disk_ratio_refuse_writes = self
            .parse("diskSpaceRatioToRefuseWrites", parse_ratio)?
            .unwrap_or(0.90);
        if disk_ratio_check_expired > disk_ratio_force_clean {
            return Err(self.key_error(
                "diskSpaceRatioToForceClean",
                format!("{disk_ratio_force_clean} is below the ratio that starts expiry ({disk_ratio_check_expired})"),
            ));
        }
        if disk_ratio_force_clean > disk_ratio_refuse_writes {
            return Err(self.key_error(
                "diskSpaceRatioToRefuseWrites",
                format!("{disk_ratio_refuse_writes} is below diskSpaceRatioToForceClean ({disk_ratio_force_clean})"),
            ));
        }
        let sync_method = self
            .parse("diskSyncMethod", parse_sync_method)?
            .unwrap_or(DiskSyncMethod::Adaptive);
        let shared_flush = self.bool("enableSharedFlush", true)?;
        Ok(Storage {
            root_dir,
            commitlog_dir,
            dledger_base_dir,
            data_segment_bytes,
            index_segment_bytes,
            delete_when_hours,
            disk_ratio_check_expired,
            disk_ratio_force_clean,
            disk_ratio_refuse_writes,
            sync_method,
            shared_flush,
        })
    }

    pub(super) fn segment_size(
        &self,
        key: &str,
        default: u64,
        range: RangeInclusive<u64>,
    ) -> Result<u64, ConfigError> {
        let n = self.num(key, default, range)?;
        if n % SEGMENT_ALIGN_BYTES != 0 {
            return Err(self.key_error(
                key,
                format!(
                    "{n} bytes is not a multiple of {SEGMENT_ALIGN_BYTES} (direct I/O alignment)"
                ),
            ));
        }
        Ok(n)
    }

    pub(super) fn shard_settings(&self) -> Result<ShardSettings, ConfigError> {
        Ok(ShardSettings {
            explicit_count: self
                .parse("shards", |v| in_range(v, &(1..=u64::from(MAX_SHARDS))))?
                .map(|n| n as u32),
            thread_pool_cap: self
                .parse("sendMessageThreadPoolNums", |v| in_range(v, &(1..=1024)))?
                .map(|n| n as u32),
            cpu_set: self.parse("cpuSet", parse_cpu_set)?,
            pin: self.bool("pinShards", true)?,
        })
    }
}
