//! RocketMQ CommitLog scanner: walks the messages of a broker's CommitLog files so they
//! can become the first entries of a group's log, each message's bytes unchanged.
//!
//! # Files
//!
//! A CommitLog is a run of equal files (`mappedFileSizeCommitLog`, 1 GiB by default),
//! each named by its start offset in 20 zero-padded digits. Files are preallocated with
//! zeros. Messages never span files: when a message does not fit in what is left of a
//! file (RocketMQ always keeps 8 bytes spare for this), the writer puts an end-of-file
//! filler there — TOTALSIZE = bytes left in the file, then [`BLANK_MAGIC_CODE`] — and the
//! message goes to the start of the next file. The rest of the filler is never read.
//!
//! # Message layout (big-endian)
//!
//! | offset           | bytes    | field                                            |
//! |-----------------:|---------:|--------------------------------------------------|
//! |                0 |        4 | TOTALSIZE: the whole message, these 4 included   |
//! |                4 |        4 | MAGICCODE: [`MESSAGE_MAGIC_CODE_V1`] or `_V2`     |
//! |                8 |        4 | BODYCRC: `crc32(body) & 0x7FFF_FFFF` (see below)  |
//! |               12 |        4 | QUEUEID                                          |
//! |               16 |        4 | FLAG                                             |
//! |               20 |        8 | QUEUEOFFSET                                      |
//! |               28 |        8 | PHYSICALOFFSET: file start + offset in the file  |
//! |               36 |        4 | SYSFLAG                                          |
//! |               40 |        8 | BORNTIMESTAMP                                    |
//! |               48 |   8 / 20 | BORNHOST (20 if SYSFLAG has [`BORNHOST_V6_FLAG`]) |
//! |                  |        8 | STORETIMESTAMP                                   |
//! |                  |   8 / 20 | STOREHOSTADDRESS (20 if [`STOREHOSTADDRESS_V6_FLAG`]) |
//! |                  |        4 | RECONSUMETIMES                                   |
//! |                  |        8 | PREPAREDTRANSACTIONOFFSET                        |
//! |                  |        4 | BODYLENGTH                                       |
//! |                  |        n | BODY                                             |
//! |                  |    1 / 2 | TOPICLENGTH (1 byte for v1, 2 for v2)            |
//! |                  |        t | TOPIC                                            |
//! |                  |        2 | PROPERTIESLENGTH                                 |
//! |                  |        p | PROPERTIES                                       |
//!
//! Sources of the facts (apache/rocketmq): `common/.../sysflag/MessageSysFlag.java`
//! defines `BORNHOST_V6_FLAG = 0x1 << 4` and `STOREHOSTADDRESS_V6_FLAG = 0x1 << 5`;
//! `common/.../UtilAll.java` computes the body CRC as
//! `(int) (crc32.getValue() & 0x7FFFFFFF)` over `java.util.zip.CRC32` (IEEE), so the
//! stored value is the IEEE CRC with its top bit cleared; `store/.../CommitLog.java`
//! (`checkMessageAndReturnSize`, `calMsgLength`) checks the CRC only for a body longer
//! than 0 and checks TOTALSIZE against the sum of the parts; `MessageVersion` gives the
//! topic length field 1 byte for the v1 magic and 2 bytes for v2.
//!
//! # What the scanner checks, and how it ends
//!
//! Per message: the magic, TOTALSIZE within bounds and inside the file, TOTALSIZE equal
//! to the sum of the parts, PHYSICALOFFSET equal to where the message lies, the body
//! CRC, and a properties length a Java `short` can hold. Any failure is an error that
//! names the file and the byte offset: the import stops and imports nothing past it.
//!
//! Per file: every file but the newest must end with a filler whose TOTALSIZE is
//! exactly the bytes left in the file (fixed-size files). In the newest file the log
//! may also end at zeros (the unwritten part), at the end of the file's bytes, or with
//! a message cut short by the end of the file: that is reported as a truncated tail
//! ([`TruncatedTail`]), not an error, and the import stops before it.
//!
//! # Streaming
//!
//! [`CommitLogScanner`] never needs a whole file in memory. The caller opens each file
//! in name order with [`CommitLogScanner::begin_file`], then feeds chunks: each call to
//! [`CommitLogScanner::scan`] takes bytes starting at [`CommitLogScanner::file_offset`]
//! and walks the whole messages in them. A chunk of at least `max_message_bytes` (or
//! reaching the end of the file) always makes progress.

use std::fmt;
use std::ops::Range;

use thiserror::Error;

use super::be::{i32_at, u16_at, u32_at, u64_at};
use super::walk::{ChunkScanner, FileChunkEnd, FileStop, FileWalk, WalkError};
use crate::store::SegmentName;

/// MAGICCODE of a v1 message (1-byte topic length): `0xDAA320A7`.
pub const MESSAGE_MAGIC_CODE_V1: i32 = -626_843_481;
/// MAGICCODE of a v2 message (2-byte topic length): `0xDAA320AB`.
pub const MESSAGE_MAGIC_CODE_V2: i32 = -626_843_477;
/// MAGICCODE of the end-of-file filler: `0xCBD43194`.
pub const BLANK_MAGIC_CODE: i32 = -875_286_124;
/// SYSFLAG bit: BORNHOST is an IPv6 address (16 bytes + 4-byte port).
pub const BORNHOST_V6_FLAG: u32 = 1 << 4;
/// SYSFLAG bit: STOREHOSTADDRESS is an IPv6 address (16 bytes + 4-byte port).
pub const STOREHOSTADDRESS_V6_FLAG: u32 = 1 << 5;
/// Default CommitLog file size (`mappedFileSizeCommitLog`).
pub const DEFAULT_COMMITLOG_FILE_BYTES: u64 = 1 << 30;
/// TOTALSIZE + MAGICCODE: what the scanner needs to see to decide anything.
pub const MESSAGE_PREFIX_BYTES: usize = 8;

const HOST_V4_BYTES: usize = 8;
const HOST_V6_BYTES: usize = 20;
const PHYSICAL_OFFSET_AT: usize = 28;
const SYSFLAG_AT: usize = 36;
const BORNHOST_AT: usize = 48;
/// Bytes of all fixed-size fields except the two hosts: 48 before BORNHOST, then
/// STORETIMESTAMP (8), RECONSUMETIMES (4), PREPAREDTRANSACTIONOFFSET (8), BODYLENGTH (4).
const FIXED_WITHOUT_HOSTS: usize = 72;
/// A Java `short` bounds PROPERTIESLENGTH (RocketMQ refuses longer properties).
const PROPERTIES_BYTES_MAX: u16 = i16::MAX as u16;

/// Which message format (by MAGICCODE).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageVersion {
    /// 1-byte TOPICLENGTH.
    V1,
    /// 2-byte TOPICLENGTH.
    V2,
}

impl MessageVersion {
    pub const fn from_magic(magic: i32) -> Option<Self> {
        match magic {
            MESSAGE_MAGIC_CODE_V1 => Some(MessageVersion::V1),
            MESSAGE_MAGIC_CODE_V2 => Some(MessageVersion::V2),
            _ => None,
        }
    }

    pub const fn magic(self) -> i32 {
        match self {
            MessageVersion::V1 => MESSAGE_MAGIC_CODE_V1,
            MessageVersion::V2 => MESSAGE_MAGIC_CODE_V2,
        }
    }

    pub const fn topic_length_bytes(self) -> usize {
        match self {
            MessageVersion::V1 => 1,
            MessageVersion::V2 => 2,
        }
    }
}

/// The smallest valid message of `version` with both hosts IPv4: all fixed fields,
/// an empty body, topic and properties.
pub const fn min_message_bytes(version: MessageVersion) -> usize {
    FIXED_WITHOUT_HOSTS + 2 * HOST_V4_BYTES + version.topic_length_bytes() + 2
}

/// The body CRC RocketMQ stores: IEEE CRC32 with the top bit cleared (`UtilAll.crc32`).
pub fn rocketmq_body_crc(body: &[u8]) -> u32 {
    crc32fast::hash(body) & 0x7FFF_FFFF
}

/// The fields of one message, with byte ranges relative to the message's first byte.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MessageFields {
    pub version: MessageVersion,
    pub total_size: u32,
    /// As stored (RocketMQ's masked CRC).
    pub body_crc: u32,
    pub queue_id: i32,
    pub queue_offset: u64,
    pub physical_offset: u64,
    pub sys_flag: u32,
    pub body: Range<usize>,
    pub topic: Range<usize>,
    pub properties: Range<usize>,
}

/// What is wrong with a message (or with what stands where one should).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum MessageProblem {
    #[error("bad magic code {found:#010x} (neither a v1/v2 message nor an end-of-file filler)")]
    BadMagic { found: u32 },
    #[error("TOTALSIZE {total} is below the smallest message ({min} bytes)")]
    TotalTooSmall { total: i64, min: usize },
    #[error("TOTALSIZE {total} exceeds the import limit of {max} bytes")]
    TotalTooLarge { total: i64, max: u32 },
    #[error("TOTALSIZE {total} runs past the end of the file ({remaining} bytes left)")]
    PastFileEnd { total: u64, remaining: u64 },
    #[error("field {field} runs past TOTALSIZE {total}")]
    FieldPastEnd { field: &'static str, total: u32 },
    #[error("BODYLENGTH {found} is negative")]
    NegativeBodyLength { found: i32 },
    #[error("PROPERTIESLENGTH {found} does not fit a Java short")]
    PropertiesTooLong { found: u16 },
    #[error("TOTALSIZE {total} differs from the sum of the parts ({computed})")]
    SizeMismatch { total: u32, computed: u64 },
    #[error("PHYSICALOFFSET {found} differs from the message's place {expected}")]
    PhysicalOffsetMismatch { found: u64, expected: u64 },
    #[error("BODYCRC {stored:#010x} differs from the body's CRC {computed:#010x}")]
    BodyCrcMismatch { stored: u32, computed: u32 },
    #[error("end-of-file filler says {found} bytes, but {expected} remain in the file")]
    BadFillerLength { found: i64, expected: u64 },
    #[error(
        "zeros where a message or the end-of-file filler must be (only the newest file may end this way)"
    )]
    ZerosInOlderFile,
    #[error(
        "the file's bytes end before its end-of-file filler (only the newest file may end this way)"
    )]
    OlderFileEndsEarly,
}

/// Parses and checks one whole message. `msg` must be exactly TOTALSIZE bytes (the
/// scanner cuts it); `expected_physical_offset` is where the message lies.
pub fn parse_message(
    msg: &[u8],
    expected_physical_offset: u64,
) -> Result<MessageFields, MessageProblem> {
    let past = |field| MessageProblem::FieldPastEnd {
        field,
        total: u32::try_from(msg.len()).unwrap_or(u32::MAX),
    };
    let total = u32_at(msg, 0).ok_or(past("TOTALSIZE"))?;
    let magic = i32_at(msg, 4).ok_or(past("MAGICCODE"))?;
    let version = MessageVersion::from_magic(magic).ok_or(MessageProblem::BadMagic {
        found: magic as u32,
    })?;
    if total as usize != msg.len() {
        return Err(MessageProblem::SizeMismatch {
            total,
            computed: msg.len() as u64,
        });
    }
    let body_crc = u32_at(msg, 8).ok_or(past("BODYCRC"))?;
    let queue_id = i32_at(msg, 12).ok_or(past("QUEUEID"))?;
    let queue_offset = u64_at(msg, 20).ok_or(past("QUEUEOFFSET"))?;
    let physical_offset = u64_at(msg, PHYSICAL_OFFSET_AT).ok_or(past("PHYSICALOFFSET"))?;
    let sys_flag = u32_at(msg, SYSFLAG_AT).ok_or(past("SYSFLAG"))?;
    let born_host = if sys_flag & BORNHOST_V6_FLAG != 0 {
        HOST_V6_BYTES
    } else {
        HOST_V4_BYTES
    };
    let store_host = if sys_flag & STOREHOSTADDRESS_V6_FLAG != 0 {
        HOST_V6_BYTES
    } else {
        HOST_V4_BYTES
    };
    // BORNHOST, STORETIMESTAMP(8), STOREHOSTADDRESS, RECONSUMETIMES(4), PREPARED...(8).
    let body_len_at = BORNHOST_AT + born_host + 8 + store_host + 4 + 8;
    let body_len = i32_at(msg, body_len_at).ok_or(past("BODYLENGTH"))?;
    let body_len = usize::try_from(body_len)
        .map_err(|_| MessageProblem::NegativeBodyLength { found: body_len })?;
    let body_start = body_len_at + 4;
    let body_end = body_start.checked_add(body_len).ok_or(past("BODY"))?;
    if body_end > msg.len() {
        return Err(past("BODY"));
    }
    let topic_len_at = body_end;
    let (topic_len, topic_start) = match version {
        MessageVersion::V1 => (
            usize::from(*msg.get(topic_len_at).ok_or(past("TOPICLENGTH"))?),
            topic_len_at + 1,
        ),
        MessageVersion::V2 => (
            usize::from(u16_at(msg, topic_len_at).ok_or(past("TOPICLENGTH"))?),
            topic_len_at + 2,
        ),
    };
    let topic_end = topic_start + topic_len;
    let props_len = u16_at(msg, topic_end).ok_or(past("PROPERTIESLENGTH"))?;
    if props_len > PROPERTIES_BYTES_MAX {
        return Err(MessageProblem::PropertiesTooLong { found: props_len });
    }
    let props_start = topic_end + 2;
    let props_end = props_start + usize::from(props_len);
    if props_end != msg.len() {
        return Err(MessageProblem::SizeMismatch {
            total,
            computed: props_end as u64,
        });
    }
    debug_assert_eq!(
        props_end,
        FIXED_WITHOUT_HOSTS
            + born_host
            + store_host
            + body_len
            + version.topic_length_bytes()
            + topic_len
            + 2
            + usize::from(props_len),
        "layout sum and walk disagree"
    );
    if physical_offset != expected_physical_offset {
        return Err(MessageProblem::PhysicalOffsetMismatch {
            found: physical_offset,
            expected: expected_physical_offset,
        });
    }
    // RocketMQ checks the CRC only for a non-empty body (checkMessageAndReturnSize).
    if body_len > 0 {
        let computed = rocketmq_body_crc(&msg[body_start..body_end]);
        if computed != body_crc {
            return Err(MessageProblem::BodyCrcMismatch {
                stored: body_crc,
                computed,
            });
        }
    }
    Ok(MessageFields {
        version,
        total_size: total,
        body_crc,
        queue_id,
        queue_offset,
        physical_offset,
        sys_flag,
        body: body_start..body_end,
        topic: topic_start..topic_end,
        properties: props_start..props_end,
    })
}

/// Scanner settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CommitLogScanConfig {
    /// `mappedFileSizeCommitLog` of the broker that wrote the files.
    pub file_bytes: u64,
    /// Largest message accepted: each becomes one record body of our log, so this is
    /// at most our `max_record_bytes - 48`.
    pub max_message_bytes: u32,
}

/// One valid message, as handed to the scanner's callback.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CommitLogMessage {
    pub file: SegmentName,
    /// Byte offset of the message in its file.
    pub offset: u64,
    /// File start + offset (equal to the stored PHYSICALOFFSET).
    pub physical_offset: u64,
    pub total_size: u32,
    /// The whole message in the chunk passed to [`CommitLogScanner::scan`].
    pub range: Range<usize>,
    pub fields: MessageFields,
}

/// The newest file ends inside a message: the import stops before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TruncatedTail {
    pub file: SegmentName,
    /// Byte offset of the cut message in the file.
    pub offset: u64,
    pub physical_offset: u64,
    /// Bytes the message needs (its TOTALSIZE, or 8 when even that is cut).
    pub needed: u64,
    /// Bytes the file still has.
    pub have: u64,
}

impl fmt::Display for TruncatedTail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "truncated tail at offset {} of CommitLog file {} (physical offset {}): the file \
             ends {} bytes into a message of {} bytes; the import stops before it",
            self.offset, self.file, self.physical_offset, self.have, self.needed
        )
    }
}

/// How the log ended in the newest file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LogEndKind {
    /// Zeros: the unwritten part of the preallocated file.
    Zeros,
    /// The file's bytes ended right after a message.
    EndOfFile,
    /// An end-of-file filler: the newest file is full.
    Filler,
}

/// Why a [`CommitLogScanner::scan`] call returned.
pub type ChunkStop = FileStop<LogEndKind, TruncatedTail>;

/// Where a chunk's scan ended (`items`: messages accepted in this call).
pub type ChunkEnd = FileChunkEnd<LogEndKind, TruncatedTail>;

/// Why a CommitLog cannot be imported.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum CommitLogError {
    #[error("RocketMQ CommitLog file {file}, byte offset {offset}: {problem}")]
    Message {
        file: SegmentName,
        offset: u64,
        problem: MessageProblem,
    },
    #[error(transparent)]
    Files(#[from] WalkError),
    #[error("file size {file_bytes} cannot hold a message and an end-of-file filler")]
    BadFileBytes { file_bytes: u64 },
}

/// What the scanner calls its files in errors.
const FILE_KIND: &str = "CommitLog file";

/// Walks a CommitLog's files in order, chunk by chunk (see the module documentation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitLogScanner {
    config: CommitLogScanConfig,
    walk: FileWalk,
    messages: u64,
}

impl CommitLogScanner {
    pub fn new(config: CommitLogScanConfig) -> Result<Self, CommitLogError> {
        let smallest = (min_message_bytes(MessageVersion::V1) + MESSAGE_PREFIX_BYTES) as u64;
        if config.file_bytes < smallest {
            return Err(CommitLogError::BadFileBytes {
                file_bytes: config.file_bytes,
            });
        }
        Ok(CommitLogScanner {
            config,
            walk: FileWalk::new(FILE_KIND, config.file_bytes),
            messages: 0,
        })
    }

    /// Messages accepted so far, over all files.
    pub fn messages(&self) -> u64 {
        self.messages
    }

    /// Where the next chunk of the open file must start.
    pub fn file_offset(&self) -> Option<u64> {
        self.walk.file_offset()
    }

    /// Whether the log has ended (clean end or truncated tail in the newest file).
    pub fn is_finished(&self) -> bool {
        self.walk.is_finished()
    }

    /// Opens the file starting at `file_start` (its name parsed). Files must come in
    /// name order without gaps; `is_newest` marks the last file of the CommitLog, the
    /// only one that may end without a filler.
    pub fn begin_file(&mut self, file_start: u64, is_newest: bool) -> Result<(), CommitLogError> {
        Ok(self.walk.begin_file(file_start, is_newest)?)
    }

    /// Walks the whole messages in `bytes`, which start at [`Self::file_offset`] of the
    /// open file. `input_is_file_end`: the bytes run to the end of the file as it is
    /// on disk. `on_message` gets each valid message and its bytes, in order.
    pub fn scan(
        &mut self,
        bytes: &[u8],
        input_is_file_end: bool,
        mut on_message: impl FnMut(&CommitLogMessage, &[u8]),
    ) -> Result<ChunkEnd, CommitLogError> {
        let file = self.walk.chunk_file(bytes.len())?;
        let file_bytes = self.config.file_bytes;
        let name = file.name();
        let err = |offset: u64, problem| CommitLogError::Message {
            file: name,
            offset,
            problem,
        };
        let mut at = 0usize;
        let mut messages = 0u64;
        let stop = loop {
            let rest = &bytes[at..];
            let offset = file.offset + at as u64;
            let remaining = file_bytes - offset;
            let physical_offset = file.start + offset;
            let truncated = |needed: u64| {
                FileStop::TruncatedTail(TruncatedTail {
                    file: name,
                    offset,
                    physical_offset,
                    needed,
                    have: rest.len() as u64,
                })
            };
            // All of the file up to its nominal end is here: nothing more can follow.
            let have_all = input_is_file_end || rest.len() as u64 == remaining;
            if rest.len() < MESSAGE_PREFIX_BYTES {
                if !have_all {
                    break FileStop::NeedMoreInput;
                }
                if !file.is_newest {
                    return Err(err(offset, MessageProblem::OlderFileEndsEarly));
                }
                if rest.is_empty() {
                    break FileStop::LogEnd(LogEndKind::EndOfFile);
                }
                if rest.iter().all(|&b| b == 0) {
                    break FileStop::LogEnd(LogEndKind::Zeros);
                }
                // TOTALSIZE may have survived even if the magic did not.
                let needed = i32_at(rest, 0)
                    .and_then(|t| u64::try_from(t).ok())
                    .filter(|&t| t >= MESSAGE_PREFIX_BYTES as u64)
                    .unwrap_or(MESSAGE_PREFIX_BYTES as u64);
                break truncated(needed);
            }
            let total = i64::from(i32_at(rest, 0).unwrap_or(0));
            let magic = i32_at(rest, 4).unwrap_or(0);
            if total == 0 && magic == 0 {
                if !file.is_newest {
                    return Err(err(offset, MessageProblem::ZerosInOlderFile));
                }
                break FileStop::LogEnd(LogEndKind::Zeros);
            }
            if magic == BLANK_MAGIC_CODE {
                if u64::try_from(total).ok() != Some(remaining) {
                    return Err(err(
                        offset,
                        MessageProblem::BadFillerLength {
                            found: total,
                            expected: remaining,
                        },
                    ));
                }
                break if file.is_newest {
                    FileStop::LogEnd(LogEndKind::Filler)
                } else {
                    FileStop::FileDone
                };
            }
            let Some(version) = MessageVersion::from_magic(magic) else {
                return Err(err(
                    offset,
                    MessageProblem::BadMagic {
                        found: magic as u32,
                    },
                ));
            };
            let min = min_message_bytes(version);
            if total < min as i64 {
                return Err(err(offset, MessageProblem::TotalTooSmall { total, min }));
            }
            if total > i64::from(self.config.max_message_bytes) {
                return Err(err(
                    offset,
                    MessageProblem::TotalTooLarge {
                        total,
                        max: self.config.max_message_bytes,
                    },
                ));
            }
            let total = total as u64; // in [min, max_message_bytes]
            if total > remaining {
                return Err(err(
                    offset,
                    MessageProblem::PastFileEnd { total, remaining },
                ));
            }
            if (rest.len() as u64) < total {
                if !have_all {
                    break FileStop::NeedMoreInput;
                }
                if !file.is_newest {
                    return Err(err(offset, MessageProblem::OlderFileEndsEarly));
                }
                break truncated(total);
            }
            let msg = &rest[..total as usize];
            let fields = parse_message(msg, physical_offset).map_err(|p| err(offset, p))?;
            let message = CommitLogMessage {
                file: name,
                offset,
                physical_offset,
                total_size: fields.total_size,
                range: at..at + total as usize,
                fields,
            };
            on_message(&message, msg);
            messages += 1;
            at += total as usize;
        };
        self.messages += messages;
        Ok(self.walk.end_chunk(file, at, messages, stop))
    }
}

impl ChunkScanner for CommitLogScanner {
    type Item = CommitLogMessage;
    type End = LogEndKind;
    type Tail = TruncatedTail;
    type Error = CommitLogError;

    fn begin_file(&mut self, file_start: u64, is_newest: bool) -> Result<(), CommitLogError> {
        CommitLogScanner::begin_file(self, file_start, is_newest)
    }
    fn file_offset(&self) -> Option<u64> {
        CommitLogScanner::file_offset(self)
    }
    fn is_finished(&self) -> bool {
        CommitLogScanner::is_finished(self)
    }
    fn scan_chunk(
        &mut self,
        bytes: &[u8],
        input_is_file_end: bool,
        on_item: &mut dyn FnMut(&CommitLogMessage, &[u8]),
    ) -> Result<ChunkEnd, CommitLogError> {
        self.scan(bytes, input_is_file_end, on_item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upgrade::fixtures::RmqMessage;

    #[test]
    fn lengths_that_lie_are_caught_without_reading_past_the_message() {
        let m = RmqMessage::simple("Topic", b"body bytes");
        let good = m.encode(0);
        let f = parse_message(&good, 0).unwrap();

        // BODYLENGTH claiming more than the message holds.
        let mut bad = good.clone();
        let at = f.body.start - 4;
        bad[at..at + 4].copy_from_slice(&10_000i32.to_be_bytes());
        assert_eq!(
            parse_message(&bad, 0),
            Err(MessageProblem::FieldPastEnd {
                field: "BODY",
                total: good.len() as u32
            })
        );

        // PROPERTIESLENGTH beyond a Java short.
        let mut bad = good.clone();
        let at = f.properties.start - 2;
        bad[at..at + 2].copy_from_slice(&0x8001u16.to_be_bytes());
        assert_eq!(
            parse_message(&bad, 0),
            Err(MessageProblem::PropertiesTooLong { found: 0x8001 })
        );

        // A topic length pointing past the end.
        let mut bad = good.clone();
        bad[f.body.end] = 250;
        assert!(matches!(
            parse_message(&bad, 0),
            Err(MessageProblem::FieldPastEnd {
                field: "PROPERTIESLENGTH",
                ..
            })
        ));

        // A slice shorter than TOTALSIZE says.
        assert!(matches!(
            parse_message(&good[..good.len() - 1], 0),
            Err(MessageProblem::SizeMismatch { .. })
        ));
        assert!(matches!(
            parse_message(&good[..3], 0),
            Err(MessageProblem::FieldPastEnd {
                field: "TOTALSIZE",
                ..
            })
        ));
    }

    #[test]
    fn a_v1_topic_may_use_the_whole_length_byte() {
        let mut m = RmqMessage::simple("x", b"b");
        m.topic = vec![b'q'; 255];
        let bytes = m.encode(77);
        let f = parse_message(&bytes, 77).unwrap();
        assert_eq!(f.topic.len(), 255);
        assert_eq!(f.version, MessageVersion::V1);
    }

    #[test]
    fn an_empty_body_is_not_crc_checked_like_rocketmq() {
        let m = RmqMessage::simple("T", b"");
        let bytes = m.encode_with_crc(0, 12345);
        assert_eq!(parse_message(&bytes, 0).map(|f| f.body_crc), Ok(12345));
    }
}
