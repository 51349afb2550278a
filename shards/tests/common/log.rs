//! Reading a group's committed log through the client, and the client settings tests use.

use std::time::Duration;

use dledger::config::HostPort;
use dledger::wire::{ClientMessage, GetRequest, GotEntry, ResponseCode};
use dledger_shards::client::{Client, ClientError, ClientOptions, Connection, block_on};

/// Body bytes asked for per get.
const GET_BUDGET_BYTES: u32 = 1 << 20;

/// Client settings for tests: quick back-off, a call deadline long enough to ride out a
/// leader change.
pub fn test_options() -> ClientOptions {
    ClientOptions {
        connect_timeout_ms: 1_000,
        request_timeout_ms: 5_000,
        backoff_initial_ms: 5,
        backoff_max_ms: 200,
        call_deadline_ms: 20_000,
        max_attempts: 200,
        ..ClientOptions::default()
    }
}

/// Every committed entry from the first stored index up to the commit index as of the
/// last read, through the leader. Checks indexes are dense and ascending.
pub async fn read_committed(client: &Client) -> Result<Vec<GotEntry>, ClientError> {
    let meta = client.metadata().await?;
    // Raft's log starts at index 1 (an empty log reports ledger_begin 0).
    let mut from = meta.ledger_begin.max(1);
    let mut out: Vec<GotEntry> = Vec::new();
    loop {
        let resp = client.get(from, GET_BUDGET_BYTES).await?;
        if resp.entries.is_empty() {
            assert!(
                from > resp.commit_index || resp.commit_index == 0,
                "get from {from} returned nothing below commit index {}",
                resp.commit_index
            );
            return Ok(out);
        }
        for e in resp.entries {
            assert_eq!(e.index, from, "entries come dense and in order");
            from += 1;
            out.push(e);
        }
    }
}

/// Polls `f` every 50 ms until it returns `Some`, at most `timeout`.
pub fn wait_until<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Node `addr`'s own committed entries (a get sent to that node only, no redirect), or
/// `None` when the node serves gets only as the leader (answers NOT_LEADER).
pub fn replica_log(addr: &HostPort, group: &str) -> Option<Vec<GotEntry>> {
    let opts = test_options();
    let addr = addr.clone();
    let group = group.to_string();
    block_on("replica-read", || async move {
        let conn = Connection::connect(&addr, &opts).await.expect("connect");
        let mut out: Vec<GotEntry> = Vec::new();
        let mut from = 1;
        loop {
            let request = GetRequest {
                group: group.clone(),
                from_index: from,
                max_bytes: GET_BUDGET_BYTES,
            };
            let frame = conn
                .call(&request, Duration::from_millis(opts.request_timeout_ms))
                .await
                .expect("get answered");
            match ClientMessage::decode(&frame, &opts.limits).expect("decodable") {
                ClientMessage::GetResponse(r) if r.entries.is_empty() => return Some(out),
                ClientMessage::GetResponse(r) => {
                    for e in r.entries {
                        assert_eq!(e.index, from, "dense, ascending");
                        from += 1;
                        out.push(e);
                    }
                }
                ClientMessage::ErrorResponse(e) if e.code == ResponseCode::NotLeader => {
                    return None;
                }
                other => panic!("get from {addr}: unexpected answer {other:?}"),
            }
        }
    })
    .expect("executor")
}
