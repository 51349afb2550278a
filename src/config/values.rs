//! Parsers for single config values. Each returns a reason string on failure; the caller
//! adds file, line and key.

use std::fmt;

use crate::raft::NodeId;

/// A `host:port` as written in the config (`127.0.0.1:40911`, `localhost:9876`,
/// `[::1]:40911`). Not resolved: resolution is I/O and belongs to the server.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostPort {
    /// Host without IPv6 brackets.
    pub host: String,
    pub port: u16,
}

impl HostPort {
    /// True when both could bind the same socket: same port and the same host, or either
    /// host is a wildcard (`0.0.0.0`, `::`).
    pub fn may_clash(&self, other: &HostPort) -> bool {
        let wildcard = |h: &str| h == "0.0.0.0" || h == "::";
        self.port == other.port
            && (self.host.eq_ignore_ascii_case(&other.host)
                || wildcard(&self.host)
                || wildcard(&other.host))
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Parses `host:port` (IPv6 hosts in brackets). Port 1..=65535.
pub fn parse_host_port(text: &str) -> Result<HostPort, String> {
    let text = text.trim();
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("'{text}': missing ']' after an IPv6 host"))?;
        let port = after
            .strip_prefix(':')
            .ok_or_else(|| format!("'{text}': expected ':port' after ']'"))?;
        (host, port)
    } else {
        text.rsplit_once(':')
            .ok_or_else(|| format!("'{text}': expected host:port"))?
    };
    if host.is_empty() {
        return Err(format!("'{text}': empty host"));
    }
    if host
        .chars()
        .any(|c| c.is_whitespace() || c == ';' || c == ',')
    {
        return Err(format!(
            "'{text}': host '{host}' contains a blank or separator"
        ));
    }
    if !text.starts_with('[') && host.contains(':') {
        return Err(format!(
            "'{text}': write IPv6 hosts in brackets, e.g. [::1]:9876"
        ));
    }
    let port = parse_port(port).map_err(|r| format!("'{text}': {r}"))?;
    Ok(HostPort {
        host: host.to_string(),
        port,
    })
}

/// A TCP port 1..=65535.
pub fn parse_port(text: &str) -> Result<u16, String> {
    let n: u64 = parse_uint(text)?;
    u16::try_from(n)
        .ok()
        .filter(|&p| p != 0)
        .ok_or_else(|| format!("port {n} is not in 1..=65535"))
}

/// A non-negative decimal integer (no sign, no suffix, no separators).
pub fn parse_uint(text: &str) -> Result<u64, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("expected a number, found nothing".to_string());
    }
    if !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("'{t}' is not a non-negative whole number"));
    }
    t.parse::<u64>()
        .map_err(|_| format!("'{t}' is too large (max {})", u64::MAX))
}

/// `true` / `false`, any case (Java's `Boolean.parseBoolean` turns typos into `false`
/// silently; we refuse them).
pub fn parse_bool(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(format!("'{other}' is not true or false")),
    }
}

/// A ratio in (0, 1].
pub fn parse_ratio(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let ok_chars = !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    let v: f64 = ok_chars
        .then(|| t.parse().ok())
        .flatten()
        .ok_or_else(|| format!("'{t}' is not a decimal number like 0.85"))?;
    if v > 0.0 && v <= 1.0 {
        Ok(v)
    } else {
        Err(format!("ratio {v} is not in (0, 1]"))
    }
}

/// The largest node id: BID = id + 1 must stay a positive i32 (RocketMQ's broker id type).
pub const MAX_NODE_ID: NodeId = (i32::MAX - 1) as NodeId;

/// The rule mapping a DLedger peer name to a Raft node id: one or more ASCII letters then
/// one or more ASCII digits, nothing else; the id is the number the digits spell
/// (`n0` → 0, `n12` → 12). Uniqueness of ids is checked by the caller (`n1` and `n01`
/// both map to 1 and are refused together).
pub fn parse_node_name(name: &str) -> Result<NodeId, String> {
    let digits_at = name
        .find(|c: char| c.is_ascii_digit())
        .ok_or_else(|| format!("peer id '{name}' has no number (expected e.g. n0)"))?;
    let (letters, digits) = name.split_at(digits_at);
    if letters.is_empty() || !letters.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(format!(
            "peer id '{name}' must start with letters, then digits (e.g. n0)"
        ));
    }
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "peer id '{name}' must end in digits only (e.g. n0)"
        ));
    }
    let n = parse_uint(digits).map_err(|r| format!("peer id '{name}': {r}"))?;
    NodeId::try_from(n)
        .ok()
        .filter(|&id| id <= MAX_NODE_ID)
        .ok_or_else(|| format!("peer id '{name}': number {n} exceeds {MAX_NODE_ID}"))
}

/// One entry of `dLegerPeers`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PeerSpec {
    /// As written (`n0`).
    pub name: String,
    pub id: NodeId,
    /// The Raft peer address.
    pub addr: HostPort,
}

/// Parses `n0-127.0.0.1:40911;n1-127.0.0.1:40912`: entries split on `;`, a peer id is the
/// text before the first `-`. Refuses duplicate names, duplicate ids and two ids on one
/// address. At most `max_peers` entries.
pub fn parse_peers(text: &str, max_peers: usize) -> Result<Vec<PeerSpec>, String> {
    let mut peers: Vec<PeerSpec> = Vec::new();
    for part in text.split(';').map(str::trim) {
        if part.is_empty() {
            continue;
        }
        let (name, addr) = part.split_once('-').ok_or_else(|| {
            format!("'{part}': expected <id>-<host>:<port>, e.g. n0-127.0.0.1:40911")
        })?;
        let name = name.trim();
        let id = parse_node_name(name)?;
        let addr = parse_host_port(addr)?;
        if let Some(prev) = peers.iter().find(|p| p.id == id) {
            return Err(if prev.name == name {
                format!("peer id '{name}' is listed twice")
            } else {
                format!(
                    "peer ids '{}' and '{name}' both map to node id {id}",
                    prev.name
                )
            });
        }
        if let Some(prev) = peers.iter().find(|p| p.addr.may_clash(&addr)) {
            return Err(format!(
                "peers '{}' and '{name}' share the address {}",
                prev.name, addr
            ));
        }
        peers.push(PeerSpec {
            name: name.to_string(),
            id,
            addr,
        });
        if peers.len() > max_peers {
            return Err(format!("more than {max_peers} peers in one group"));
        }
    }
    if peers.is_empty() {
        return Err("no peers listed".to_string());
    }
    Ok(peers)
}

/// A list of CPUs: `0,1`, `0-3`, `0-1,4`. Sorted, no duplicates, each below 1024.
pub fn parse_cpu_set(text: &str) -> Result<Vec<u32>, String> {
    const MAX_CPU: u64 = 1023;
    let mut cpus = Vec::new();
    for part in text.split(',').map(str::trim) {
        if part.is_empty() {
            return Err(format!("'{text}': empty entry (expected e.g. 0,1 or 0-3)"));
        }
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (parse_uint(a)?, parse_uint(b)?),
            None => {
                let n = parse_uint(part)?;
                (n, n)
            }
        };
        if lo > hi {
            return Err(format!("'{part}': range runs backwards"));
        }
        if hi > MAX_CPU {
            return Err(format!("'{part}': cpu {hi} is above {MAX_CPU}"));
        }
        for cpu in lo..=hi {
            let cpu = cpu as u32; // <= MAX_CPU, checked above
            if cpus.contains(&cpu) {
                return Err(format!("cpu {cpu} is listed twice"));
            }
            cpus.push(cpu);
        }
    }
    cpus.sort_unstable();
    Ok(cpus)
}

/// RocketMQ's `deleteWhen`: hours of the day, `04` or `04;16`.
pub fn parse_hours(text: &str) -> Result<Vec<u8>, String> {
    let mut hours = Vec::new();
    for part in text.split([';', ',']).map(str::trim) {
        let h = parse_uint(part)?;
        let h = u8::try_from(h)
            .ok()
            .filter(|&h| h < 24)
            .ok_or_else(|| format!("hour {h} is not in 0..=23"))?;
        if !hours.contains(&h) {
            hours.push(h);
        }
    }
    hours.sort_unstable();
    Ok(hours)
}

/// A group name: 1..=64 of `[A-Za-z0-9_-]` (it becomes a directory name and part of
/// `group.<name>.<key>` override keys, so no dots or slashes).
pub fn check_group_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err(format!("group name '{name}' must be 1 to 64 characters"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return Err(format!(
            "group name '{name}' contains '{c}' (allowed: letters, digits, '_' and '-')"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_ports() {
        assert_eq!(
            parse_host_port("127.0.0.1:40911").unwrap(),
            HostPort {
                host: "127.0.0.1".into(),
                port: 40911
            }
        );
        let v6 = parse_host_port("[::1]:9876").unwrap();
        assert_eq!(v6.host, "::1");
        assert_eq!(v6.to_string(), "[::1]:9876");
        for bad in [
            "", "host", ":1", "h:0", "h:65536", "h:x", "::1:5", "[::1]5", "a b:1",
        ] {
            assert!(parse_host_port(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn node_names() {
        assert_eq!(parse_node_name("n0").unwrap(), 0);
        assert_eq!(parse_node_name("node12").unwrap(), 12);
        for bad in ["0", "n", "n-1", "n1a", "1n", "n99999999999", "ñ1", ""] {
            assert!(parse_node_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn peers() {
        let p = parse_peers("n0-127.0.0.1:40911;n1-127.0.0.1:40912;", 7).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!((p[1].id, p[1].addr.port), (1, 40912));
        // The id is the text before the FIRST '-': hosts may contain '-'.
        let p = parse_peers("n0-my-host:1", 7).unwrap();
        assert_eq!(p[0].addr.host, "my-host");
        assert!(
            parse_peers("n0-a:1;n0-a:2", 7)
                .unwrap_err()
                .contains("twice")
        );
        assert!(
            parse_peers("n1-a:1;n01-a:2", 7)
                .unwrap_err()
                .contains("map to")
        );
        assert!(
            parse_peers("n0-a:1;n1-a:1", 7)
                .unwrap_err()
                .contains("share")
        );
        assert!(parse_peers("n0-0.0.0.0:1;n1-a:1", 7).is_err());
        assert!(parse_peers("", 7).is_err());
        assert!(parse_peers("n0-a:1;n1-a:2;n2-a:3", 2).is_err());
    }

    #[test]
    fn cpu_sets_hours_ratios() {
        assert_eq!(parse_cpu_set("0,1").unwrap(), vec![0, 1]);
        assert_eq!(parse_cpu_set("2-3, 0").unwrap(), vec![0, 2, 3]);
        for bad in ["", "1,", "3-1", "0,0", "0-1,1", "x", "5000"] {
            assert!(parse_cpu_set(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_hours("04").unwrap(), vec![4]);
        assert_eq!(parse_hours("16;04").unwrap(), vec![4, 16]);
        assert!(parse_hours("24").is_err());
        assert!(parse_ratio("0.85").is_ok());
        assert!(parse_ratio("1").is_ok());
        for bad in ["0", "1.01", "-0.5", "NaN", "inf", "", "0.5x"] {
            assert!(parse_ratio(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn uints_and_bools() {
        assert_eq!(parse_uint(" 42 ").unwrap(), 42);
        for bad in ["", "-1", "+1", "1e3", "0x10", "99999999999999999999"] {
            assert!(parse_uint(bad).is_err(), "{bad}");
        }
        assert!(parse_bool("TRUE").unwrap());
        assert!(!parse_bool("false").unwrap());
        assert!(parse_bool("yes").is_err());
    }
}
