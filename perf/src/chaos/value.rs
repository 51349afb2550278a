//! The self-describing append bodies of a chaos run.
//!
//! Every body names the run, the group, the client task and that task's sequence number,
//! so the checker can tell from the log alone which attempt an entry came from, and a
//! body left over from another run (or garbage) is recognised as never attempted.
//!
//! ```text
//! chaos1 r=<run id, 16 hex digits> g=<group number> c=<client number> s=<sequence>
//! ```
//!
//! ASCII, fields separated by single spaces, numbers in decimal (the run id in hex).

use std::fmt;

const MAGIC: &str = "chaos1";

/// Which attempt a body belongs to: unique within a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId {
    pub group: u32,
    pub client: u32,
    pub seq: u64,
}

impl fmt::Display for ValueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "g{}/c{}/s{}", self.group, self.client, self.seq)
    }
}

/// The body of attempt `id` in run `run`.
pub fn encode(run: u64, id: ValueId) -> Vec<u8> {
    format!(
        "{MAGIC} r={run:016x} g={} c={} s={}",
        id.group, id.client, id.seq
    )
    .into_bytes()
}

/// The attempt a body names, if it is a well-formed body of run `run`; `None` for
/// anything else (another run's body, garbage, a cut or padded body).
pub fn decode(run: u64, body: &[u8]) -> Option<ValueId> {
    let text = std::str::from_utf8(body).ok()?;
    let mut fields = text.split(' ');
    if fields.next()? != MAGIC {
        return None;
    }
    let run_field = fields.next()?.strip_prefix("r=")?;
    if run_field.len() != 16 || u64::from_str_radix(run_field, 16).ok()? != run {
        return None;
    }
    let group = fields.next()?.strip_prefix("g=")?.parse().ok()?;
    let client = fields.next()?.strip_prefix("c=")?.parse().ok()?;
    let seq = fields.next()?.strip_prefix("s=")?.parse().ok()?;
    if fields.next().is_some() {
        return None;
    }
    let id = ValueId { group, client, seq };
    // Refuse non-canonical spellings (leading zeros, '+'): one attempt, one body.
    (encode(run, id) == body).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_round_trip_and_name_their_attempt() {
        let id = ValueId {
            group: 3,
            client: 17,
            seq: 123_456,
        };
        let body = encode(0xdead_beef, id);
        assert_eq!(
            std::str::from_utf8(&body).expect("ascii"),
            "chaos1 r=00000000deadbeef g=3 c=17 s=123456"
        );
        assert_eq!(decode(0xdead_beef, &body), Some(id));
    }

    #[test]
    fn foreign_or_damaged_bodies_are_not_attempts() {
        let id = ValueId {
            group: 0,
            client: 1,
            seq: 2,
        };
        let body = encode(7, id);
        assert_eq!(decode(8, &body), None, "another run");
        assert_eq!(decode(7, &body[..body.len() - 1]), None, "cut");
        let mut padded = body.clone();
        padded.push(b' ');
        assert_eq!(decode(7, &padded), None, "padded");
        assert_eq!(decode(7, b""), None, "empty (a noop entry)");
        assert_eq!(
            decode(7, b"chaos1 r=0000000000000007 g=0 c=01 s=2"),
            None,
            "non-canonical number"
        );
        assert_eq!(decode(7, &[0xff, 0xfe]), None, "not UTF-8");
    }
}
