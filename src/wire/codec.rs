//! Bounded reading of a frame body, and the small writers shared by the message codecs.
//!
//! Conventions for every message (big-endian):
//! - `str8`: u8 length, then UTF-8 bytes (names, hosts).
//! - `str16`: u16 length, then UTF-8 bytes (messages), at most [`MAX_TEXT_BYTES`].
//! - `addr`: `str8` host, u16 port.
//! - `opt_node`: u32 node id, `u32::MAX` = none.
//! - `bool`: u8 0 or 1; anything else is an error.

use bytes::{BufMut, Bytes, BytesMut};

use crate::config::HostPort;
use crate::raft::{NodeId, Role};

use super::error::WireError;

/// Longest `str16` accepted (error messages).
pub const MAX_TEXT_BYTES: usize = 4096;
const NO_NODE: u32 = u32::MAX;

/// A cursor over a frame body. Every read is bounds-checked; slices share the body's
/// memory.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a Bytes,
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a Bytes) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        if self.remaining() < n {
            return Err(WireError::Truncated { what });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub fn u8(&mut self, what: &'static str) -> Result<u8, WireError> {
        Ok(self.take(1, what)?[0])
    }
    pub fn u16(&mut self, what: &'static str) -> Result<u16, WireError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    pub fn u32(&mut self, what: &'static str) -> Result<u32, WireError> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub fn u64(&mut self, what: &'static str) -> Result<u64, WireError> {
        let b = self.take(8, what)?;
        Ok(u64::from_be_bytes([
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
        ]))
    }
    pub fn bool(&mut self, what: &'static str) -> Result<bool, WireError> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(WireError::BadValue {
                what,
                value: u64::from(v),
            }),
        }
    }

    /// `n` bytes as a shared slice of the body (no copy).
    pub fn bytes(&mut self, n: usize, what: &'static str) -> Result<Bytes, WireError> {
        if self.remaining() < n {
            return Err(WireError::Truncated { what });
        }
        let s = self.buf.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(s)
    }

    /// A count that is then used to read `count` items of at least `min_item_bytes` each:
    /// refused if above `max` or if the rest of the body cannot hold that many, so no
    /// caller ever reserves memory for items that are not there.
    pub fn count(
        &mut self,
        what: &'static str,
        max: u32,
        min_item_bytes: usize,
    ) -> Result<usize, WireError> {
        let n = self.u32(what)?;
        if n > max {
            return Err(WireError::TooMany {
                what,
                count: u64::from(n),
                max: u64::from(max),
            });
        }
        let n = n as usize;
        if n.saturating_mul(min_item_bytes.max(1)) > self.remaining() {
            return Err(WireError::Truncated { what });
        }
        Ok(n)
    }

    pub fn str8(&mut self, what: &'static str) -> Result<String, WireError> {
        let n = usize::from(self.u8(what)?);
        let b = self.take(n, what)?;
        std::str::from_utf8(b)
            .map(str::to_string)
            .map_err(|_| WireError::BadUtf8 { what })
    }

    pub fn str16(&mut self, what: &'static str) -> Result<String, WireError> {
        let n = usize::from(self.u16(what)?);
        if n > MAX_TEXT_BYTES {
            return Err(WireError::TooMany {
                what,
                count: n as u64,
                max: MAX_TEXT_BYTES as u64,
            });
        }
        let b = self.take(n, what)?;
        std::str::from_utf8(b)
            .map(str::to_string)
            .map_err(|_| WireError::BadUtf8 { what })
    }

    pub fn addr(&mut self, what: &'static str) -> Result<HostPort, WireError> {
        let host = self.str8(what)?;
        let port = self.u16(what)?;
        Ok(HostPort { host, port })
    }

    pub fn opt_node(&mut self, what: &'static str) -> Result<Option<NodeId>, WireError> {
        let v = self.u32(what)?;
        Ok((v != NO_NODE).then_some(v))
    }

    pub fn role(&mut self, what: &'static str) -> Result<Role, WireError> {
        match self.u8(what)? {
            0 => Ok(Role::Follower),
            1 => Ok(Role::PreCandidate),
            2 => Ok(Role::Candidate),
            3 => Ok(Role::Leader),
            v => Err(WireError::BadValue {
                what,
                value: u64::from(v),
            }),
        }
    }

    /// The body must be fully consumed: trailing bytes mean a malformed or mismatched
    /// message.
    pub fn finish(self) -> Result<(), WireError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(WireError::TrailingBytes { count }),
        }
    }
}

pub fn put_str8(out: &mut BytesMut, s: &str, what: &'static str) -> Result<(), WireError> {
    let n = u8::try_from(s.len()).map_err(|_| WireError::TooMany {
        what,
        count: s.len() as u64,
        max: u64::from(u8::MAX),
    })?;
    out.put_u8(n);
    out.put_slice(s.as_bytes());
    Ok(())
}

pub fn put_str16(out: &mut BytesMut, s: &str, what: &'static str) -> Result<(), WireError> {
    if s.len() > MAX_TEXT_BYTES {
        return Err(WireError::TooMany {
            what,
            count: s.len() as u64,
            max: MAX_TEXT_BYTES as u64,
        });
    }
    out.put_u16(s.len() as u16); // <= MAX_TEXT_BYTES
    out.put_slice(s.as_bytes());
    Ok(())
}

pub fn put_addr(out: &mut BytesMut, a: &HostPort, what: &'static str) -> Result<(), WireError> {
    put_str8(out, &a.host, what)?;
    out.put_u16(a.port);
    Ok(())
}

pub fn put_opt_node(out: &mut BytesMut, n: Option<NodeId>) {
    out.put_u32(n.unwrap_or(NO_NODE));
}

pub fn put_role(out: &mut BytesMut, r: Role) {
    out.put_u8(match r {
        Role::Follower => 0,
        Role::PreCandidate => 1,
        Role::Candidate => 2,
        Role::Leader => 3,
    });
}

/// A u32 count for `n` items, refused above `max` (so the receiver will accept it).
pub fn put_count(
    out: &mut BytesMut,
    n: usize,
    max: u32,
    what: &'static str,
) -> Result<(), WireError> {
    if n > max as usize {
        return Err(WireError::TooMany {
            what,
            count: n as u64,
            max: u64::from(max),
        });
    }
    out.put_u32(n as u32); // <= max
    Ok(())
}
