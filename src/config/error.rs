//! What went wrong in a config file, said so that the reader can go straight to the line.

use std::fmt;

/// A config file that cannot start a node: names the file, the line (when one line is to
/// blame), the key and the reason.
///
/// Display: `conf/dledger/broker-n0.conf:7: key 'dLegerSelfId': 'n9' is not among
/// dLegerPeers (n0, n1, n2)`. A missing key has no line:
/// `broker.conf: key 'dLegerPeers': required but not set`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The file name given to [`super::parse_file_contents`].
    pub file: String,
    /// 1-based line where the offending entry starts (a continued entry: its first line).
    pub line: Option<u32>,
    /// The key at fault, exactly as written (`group.RaftNode03.preferredLeaderId`).
    pub key: Option<String>,
    pub reason: String,
}

/// Something legal but suspicious (e.g. `dLegerGroup` differs from `brokerName`). Same
/// fields and display as [`ConfigError`]; the node starts and should log it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigWarning {
    pub file: String,
    pub line: Option<u32>,
    pub key: Option<String>,
    pub reason: String,
}

fn write_located(
    f: &mut fmt::Formatter<'_>,
    file: &str,
    line: Option<u32>,
    key: Option<&str>,
    reason: &str,
) -> fmt::Result {
    f.write_str(file)?;
    if let Some(line) = line {
        write!(f, ":{line}")?;
    }
    if let Some(key) = key {
        write!(f, ": key '{key}'")?;
    }
    write!(f, ": {reason}")
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_located(f, &self.file, self.line, self.key.as_deref(), &self.reason)
    }
}

impl std::error::Error for ConfigError {}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_located(f, &self.file, self.line, self.key.as_deref(), &self.reason)
    }
}
