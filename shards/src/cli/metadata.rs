//! `dledger metadata`: print a group's leader, term, commit point, ledger end and peers.

use argh::FromArgs;
use dledger::wire::MetadataResponse;

use crate::client::block_on;

/// Print a group's state as its leader (or any node that answers) sees it.
#[derive(FromArgs, Debug, Clone, PartialEq, Eq)]
#[argh(subcommand, name = "metadata")]
pub struct MetadataArgs {
    /// client addresses of the group's nodes, host:port separated by ';' or ','
    #[argh(option)]
    pub peers: String,
    /// the group (e.g. RaftNode00)
    #[argh(option)]
    pub group: String,
    /// give up after this many ms of retries (default 15000)
    #[argh(option, default = "15000")]
    pub timeout_ms: u64,
}

pub fn run(args: MetadataArgs) -> Result<(), String> {
    block_on("dledger-metadata", move || metadata(args))?
}

async fn metadata(args: MetadataArgs) -> Result<(), String> {
    let client = super::connect(
        &args.peers,
        &args.group,
        super::client_options(args.timeout_ms),
    )
    .await?;
    let m = client
        .metadata()
        .await
        .map_err(|e| super::describe(&e, &format!("metadata of {}", args.group)))?;
    print!("{}", render(&m));
    Ok(())
}

fn render(m: &MetadataResponse) -> String {
    let leader = match &m.leader {
        None => "none known".to_string(),
        Some(l) => match &l.client_addr {
            Some(a) => format!("n{} {a}", l.id),
            None => format!("n{} (client address unknown)", l.id),
        },
    };
    let mut out = format!(
        "group       {}\nanswered by n{} ({:?})\nleader      {leader}\nterm        {}\n\
         commit      {}\nledger      begin {} end {}\ntolerates   {} failed node(s)\n",
        m.group,
        m.self_id,
        m.role,
        m.term,
        m.commit_index,
        m.ledger_begin,
        m.ledger_end,
        m.failures_tolerated
    );
    for (i, p) in m.peers.iter().enumerate() {
        let client = p
            .client_addr
            .as_ref()
            .map_or_else(|| "unknown".to_string(), ToString::to_string);
        out.push_str(if i == 0 {
            "peers       "
        } else {
            "            "
        });
        out.push_str(&format!("n{} peer {} client {client}\n", p.id, p.peer_addr));
    }
    out
}
