//! Sends a [`GatherBuf`] with gather writes (`sendmsg` with one iovec per piece), so
//! entry bodies go from where the log's tail cache holds them to the socket without a
//! user-space copy.
//!
//! glommio 0.9's `TcpStream` has no vectored write (its `poll_write` sends one slice),
//! so this calls `sendmsg(MSG_DONTWAIT)` on the stream's descriptor itself. When the
//! socket buffer is full (`EAGAIN`) it falls back to one glommio `write` of the next
//! piece, which waits for writability through the reactor and reports how many bytes it
//! sent; the cursor advances by exactly what each call reports, so nothing is skipped or
//! sent twice. Only the stream's single writer task calls this (the transport's
//! connections are one-way), so no other write can interleave.

use std::{
    io::{self, IoSlice},
    os::fd::AsRawFd,
};

use dledger::wire::GatherBuf;
use futures_lite::AsyncWriteExt;
use glommio::net::TcpStream;
use nix::{
    errno::Errno,
    sys::socket::{MsgFlags, sendmsg},
};

/// Linux's `UIO_MAXIOV`: the most iovecs one `sendmsg` takes.
const IOVECS_PER_CALL_MAX: usize = 1024;

/// Where the next byte to send is: piece `piece`, byte `offset` of it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Cursor {
    piece: usize,
    offset: usize,
}

impl Cursor {
    /// Moves past `n` sent bytes.
    fn advance(&mut self, pieces: &[&[u8]], mut n: usize) {
        while n > 0 {
            let left = pieces[self.piece].len() - self.offset;
            if n < left {
                self.offset += n;
                return;
            }
            n -= left;
            self.piece += 1;
            self.offset = 0;
        }
        // Never rest on an empty piece.
        while self.piece < pieces.len() && pieces[self.piece].len() == self.offset {
            self.piece += 1;
            self.offset = 0;
        }
    }
}

/// Writes every byte of `buf` to `stream`, in order.
pub(crate) async fn write_all_gathered(stream: &mut TcpStream, buf: &GatherBuf) -> io::Result<()> {
    let pieces = buf.pieces();
    let fd = stream.as_raw_fd();
    let mut at = Cursor::default();
    at.advance(&pieces, 0);
    let mut iov: Vec<IoSlice<'_>> = Vec::with_capacity(pieces.len().min(IOVECS_PER_CALL_MAX));
    while at.piece < pieces.len() {
        iov.clear();
        iov.push(IoSlice::new(&pieces[at.piece][at.offset..]));
        iov.extend(
            pieces[at.piece + 1..]
                .iter()
                .take(IOVECS_PER_CALL_MAX - 1)
                .map(|p| IoSlice::new(p)),
        );
        let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL;
        let sent = match sendmsg::<()>(fd, &iov, &[], flags, None) {
            Ok(n) => n,
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => {
                // Full: let glommio wait for room and send what it can of this piece.
                stream.write(&pieces[at.piece][at.offset..]).await?
            }
            Err(e) => return Err(e.into()),
        };
        if sent == 0 {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "the peer socket accepted no bytes",
            ));
        }
        at.advance(&pieces, sent);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cursor_crosses_pieces_exactly() {
        let a = [1u8; 3];
        let b = [2u8; 0];
        let c = [3u8; 5];
        let pieces: Vec<&[u8]> = vec![&a, &b, &c];
        let mut at = Cursor::default();
        at.advance(&pieces, 2);
        assert_eq!(
            at,
            Cursor {
                piece: 0,
                offset: 2
            }
        );
        at.advance(&pieces, 1);
        assert_eq!(
            at,
            Cursor {
                piece: 2,
                offset: 0
            },
            "the empty piece is skipped"
        );
        at.advance(&pieces, 4);
        assert_eq!(
            at,
            Cursor {
                piece: 2,
                offset: 4
            }
        );
        at.advance(&pieces, 1);
        assert_eq!(at.piece, 3);
    }

    /// More pieces than one sendmsg takes and more bytes than the socket buffers hold
    /// while the reader is not reading: the EAGAIN fallback and the iovec chunking are
    /// both taken, and the reader gets exactly the stream, in order.
    #[test]
    fn a_gather_write_through_a_full_socket_arrives_whole() {
        use bytes::Bytes;
        use futures_lite::AsyncReadExt;
        let out = crate::client::block_on("gather-write-test", || async {
            let listener = glommio::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            let addr = listener.local_addr().expect("address");
            let mut buf = GatherBuf::new();
            let mut part_no = 0u32;
            // ~6 MiB in 3000 parts of 2 KiB, each after 16 in-place bytes.
            while buf.len() < 6 << 20 {
                buf.put_slice(&part_no.to_be_bytes().repeat(4));
                buf.splice(&Bytes::from(vec![(part_no % 251) as u8; 2048]));
                part_no += 1;
            }
            let want = buf.to_bytes();
            let reader = glommio::spawn_local(async move {
                let mut conn = listener.accept().await.expect("accept");
                // Let the writer fill the socket buffers first.
                glommio::timer::sleep(std::time::Duration::from_millis(50)).await;
                let mut got = Vec::new();
                conn.read_to_end(&mut got).await.expect("read");
                got
            });
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            write_all_gathered(&mut stream, &buf)
                .await
                .expect("gather write");
            stream.close().await.expect("shut the write side");
            (reader.await, want)
        })
        .expect("executor");
        let (got, want) = out;
        assert_eq!(got.len(), want.len());
        assert!(got == want[..], "the bytes differ");
    }
}
