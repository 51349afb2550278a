//! Configuration: RocketMQ broker properties files, verbatim, plus DLedger's own options
//! by their DLedger names and a few of ours; parsed into a typed, validated
//! [`NodeConfig`]. Every key, default and unit is in docs/config.md.
//!
//! Pure: the caller reads the file and hands its contents to [`parse_file_contents`].
//!
//! Two forms:
//! - single group (RocketMQ-on-DLedger): `dLegerGroup` (or `brokerName`), `dLegerPeers`,
//!   `dLegerSelfId`;
//! - many groups on one node (the DLedger-proxy way): `dLegerGroups=A,B,...` sharing the
//!   node-level `dLegerPeers`, with per-group overrides `group.<name>.<key>=value`.

mod build;
mod error;
mod groups;
mod keys;
mod model;
mod properties;
mod settings;
mod values;

#[cfg(test)]
mod tests;

pub use build::{
    FRAME_OVERHEAD_BYTES, Loaded, MAX_GROUPS, SEGMENT_ALIGN_BYTES, parse_file_contents,
};
pub use error::{ConfigError, ConfigWarning};
pub use keys::{GROUP_KEYS, IGNORED_ROCKETMQ_KEYS, NODE_KEYS};
pub use model::*;
pub use properties::{Property, SyntaxError, parse_properties};
pub use values::{HostPort, MAX_NODE_ID, parse_host_port, parse_node_name};
