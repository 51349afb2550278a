//! Reading a group's committed log through the client, and the client settings tests use.

use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
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

/// A client of `group` on `peers` with [`test_options`], to share between tasks.
pub async fn test_client(peers: Vec<HostPort>, group: &str) -> Rc<Client> {
    Rc::new(
        Client::connect(peers, group, test_options())
            .await
            .expect("connect"),
    )
}

/// `group`'s committed log read through a fresh client of `peers` (see
/// [`read_committed`]), on its own executor.
pub fn read_group(peers: Vec<HostPort>, group: &str) -> Vec<GotEntry> {
    let group = group.to_string();
    block_on("read", || async move {
        let client = Client::connect(peers, group, test_options())
            .await
            .expect("connect");
        read_committed(&client).await.expect("read back")
    })
    .expect("executor")
}

/// Every acknowledged `(index, body)` is in `log`, at that index.
pub fn assert_acked_in(log: &[GotEntry], acked: &[(u64, Bytes)]) {
    for (index, body) in acked {
        let got = log
            .iter()
            .find(|e| e.index == *index)
            .unwrap_or_else(|| panic!("acknowledged index {index} is missing"));
        assert_eq!(&got.body, body, "index {index}");
    }
}

/// Appends each task's bodies one call at a time, in order, the tasks concurrently over
/// one client; every append must succeed. The `(index, body)` of each, per task.
pub async fn append_tasks(client: &Rc<Client>, tasks: Vec<Vec<Bytes>>) -> Vec<Vec<(u64, Bytes)>> {
    let running: Vec<_> = tasks
        .into_iter()
        .map(|bodies| {
            let client = client.clone();
            glommio::spawn_local(async move {
                let mut acked = Vec::with_capacity(bodies.len());
                for body in bodies {
                    let e = client
                        .append(std::slice::from_ref(&body))
                        .await
                        .expect("append");
                    acked.push((e[0].index, body));
                }
                acked
            })
        })
        .collect();
    let mut out = Vec::with_capacity(running.len());
    for t in running {
        out.push(t.await);
    }
    out
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
