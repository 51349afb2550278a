//! Deliberate server bugs (feature `planted-bugs`, never in a normal build), switched on
//! with `dledger server --planted-bug NAME`, so the chaos checker can be shown to fail.

use std::sync::atomic::{AtomicBool, Ordering};

static ACK_WITHOUT_QUORUM: AtomicBool = AtomicBool::new(false);

/// The bugs `--planted-bug` accepts.
pub const NAMES: &[&str] = &["ack-without-quorum"];

/// Switches bug `name` on for this process.
pub fn enable(name: &str) -> Result<(), String> {
    match name {
        // The leader acknowledges an append once its own write is durable, without
        // waiting for a majority: a leader cut off (or killed) right after loses it.
        "ack-without-quorum" => ACK_WITHOUT_QUORUM.store(true, Ordering::SeqCst),
        other => {
            return Err(format!(
                "unknown planted bug {other:?} (known: {})",
                NAMES.join(", ")
            ));
        }
    }
    // Logging is not set up yet: say it on stderr, which goes to the node log.
    eprintln!("dledger server: PLANTED BUG {name} ENABLED: this node is deliberately unsafe");
    Ok(())
}

pub fn ack_without_quorum() -> bool {
    ACK_WITHOUT_QUORUM.load(Ordering::Relaxed)
}
