//! `dledger get`: print committed entries from an index.

use std::fmt::Write as _;

use argh::FromArgs;

use crate::client::{GotEntry, block_on};

/// Print committed entries of a group, starting at an index.
#[derive(FromArgs, Debug, Clone, PartialEq, Eq)]
#[argh(subcommand, name = "get")]
pub struct GetArgs {
    /// client addresses of the group's nodes, host:port separated by ';' or ','
    #[argh(option)]
    pub peers: String,
    /// the group (e.g. RaftNode00)
    #[argh(option)]
    pub group: String,
    /// the first index to print
    #[argh(option, short = 'i')]
    pub index: u64,
    /// at most this many entries (default 1)
    #[argh(option, short = 'n', default = "1")]
    pub max: u64,
    /// print bodies as hex instead of UTF-8 text
    #[argh(switch)]
    pub hex: bool,
    /// body bytes asked for per request (default 1048576)
    #[argh(option, default = "1 << 20")]
    pub max_bytes: u32,
    /// give up after this many ms of retries (default 15000)
    #[argh(option, default = "15000")]
    pub timeout_ms: u64,
}

pub fn run(args: GetArgs) -> Result<(), String> {
    if args.max == 0 {
        return Err("-n must be at least 1".into());
    }
    block_on("dledger-get", move || get(args))?
}

async fn get(args: GetArgs) -> Result<(), String> {
    let client = super::connect(
        &args.peers,
        &args.group,
        super::client_options(args.timeout_ms),
    )
    .await?;
    let mut from = args.index;
    let mut printed = 0u64;
    let mut commit_index = 0;
    while printed < args.max {
        let resp = client.get(from, args.max_bytes).await.map_err(|e| {
            super::describe(&e, &format!("get from index {from} of {}", args.group))
        })?;
        commit_index = resp.commit_index;
        if resp.entries.is_empty() {
            break;
        }
        for e in resp.entries.iter().take((args.max - printed) as usize) {
            if e.index != from {
                return Err(format!(
                    "the node answered index {} where {from} was expected",
                    e.index
                ));
            }
            println!("{}", render(e, args.hex));
            printed += 1;
            from += 1;
        }
    }
    if printed == 0 {
        return Err(format!(
            "no committed entry at index {} of {} (commit index {commit_index})",
            args.index, args.group
        ));
    }
    if printed < args.max {
        eprintln!(
            "printed {printed} of {} entries: the commit index is {commit_index}",
            args.max
        );
    }
    Ok(())
}

/// `index=.. term=.. pos=.. len=.. body=..` on one line (control characters escaped).
fn render(e: &GotEntry, hex: bool) -> String {
    let mut body = String::with_capacity(e.body.len() * if hex { 2 } else { 1 });
    if hex {
        for b in e.body.iter() {
            let _ = write!(body, "{b:02x}");
        }
    } else {
        for c in String::from_utf8_lossy(&e.body).chars() {
            if c.is_control() {
                body.extend(c.escape_default());
            } else {
                body.push(c);
            }
        }
    }
    format!(
        "index={} term={} pos={} len={} body={body}",
        e.index,
        e.term,
        e.pos,
        e.body.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn bodies_render_as_text_or_hex() {
        let e = GotEntry {
            index: 7,
            term: 2,
            pos: 4096,
            body: Bytes::from_static(b"hi\n\xff"),
        };
        assert_eq!(
            render(&e, false),
            "index=7 term=2 pos=4096 len=4 body=hi\\n\u{fffd}"
        );
        assert_eq!(
            render(&e, true),
            "index=7 term=2 pos=4096 len=4 body=68690aff"
        );
    }
}
