//! The task queues of a shard.
//!
//! glommio runs task queues by CPU shares; a queue marked `Latency::Matters` also makes
//! the scheduler preempt the others more often (and its I/O goes to the latency ring).
//!
//! | queue        | shares | latency        | runs                                         |
//! |--------------|--------|----------------|----------------------------------------------|
//! | replication  | 1000   | Matters(1 ms)  | peer writers/readers, Raft ticks and steps    |
//! | client       | 1000   | Matters(2 ms)  | client connections, appends and reads         |
//! | background   | 100    | NotImportant   | retention, name-server reports, metrics, stop |
//!
//! Replication and client work get equal shares so neither can starve the other; a commit
//! needs both. Background work gets a tenth so it never delays an append, yet still runs
//! on a busy shard.

use std::time::Duration;

use glommio::{Latency, Shares, TaskQueueHandle};

pub const REPLICATION_SHARES: usize = 1000;
pub const CLIENT_SHARES: usize = 1000;
pub const BACKGROUND_SHARES: usize = 100;
pub const REPLICATION_LATENCY_MS: u64 = 1;
pub const CLIENT_LATENCY_MS: u64 = 2;

/// Handles of a shard's task queues (created on, and only valid on, that shard).
#[derive(Clone, Copy, Debug)]
pub struct TaskQueues {
    pub replication: TaskQueueHandle,
    pub client: TaskQueueHandle,
    pub background: TaskQueueHandle,
}

impl TaskQueues {
    /// Creates the three queues on the current executor.
    pub(crate) fn create() -> Self {
        let executor = glommio::executor();
        Self {
            replication: executor.create_task_queue(
                Shares::Static(REPLICATION_SHARES),
                Latency::Matters(Duration::from_millis(REPLICATION_LATENCY_MS)),
                "replication",
            ),
            client: executor.create_task_queue(
                Shares::Static(CLIENT_SHARES),
                Latency::Matters(Duration::from_millis(CLIENT_LATENCY_MS)),
                "client",
            ),
            background: executor.create_task_queue(
                Shares::Static(BACKGROUND_SHARES),
                Latency::NotImportant,
                "background",
            ),
        }
    }
}
