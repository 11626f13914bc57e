//! One upgraded connection: whole messages in, batches of frames out.
//!
//! The socket holds no buffer while the connection is idle. Reads wait for
//! the TCP stream's readiness and then read into the stack; only bytes of a
//! frame not yet complete are kept, and released once it is. Writes are
//! queued into one buffer, written, and the buffer released after the batch.
//! (A WebSocket library keeps its read and write buffers for the
//! connection's life at the size of the largest message: 1.5 KiB per idle
//! agent, a sixth of what a connection costs; BENCHMARKS.md, memory.)
//!
//! Both directions are cancel-safe, as the session's `select!` needs:
//! everything read or half-written lives in the socket, not in a future, so
//! a `recv` or `flush` dropped at any await loses nothing and the next call
//! goes on where it stopped.

use super::frame::{self, Opcode};
use bytes::Bytes;
use std::io;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// How much one read takes from the kernel (on the stack, not kept).
const READ_CHUNK: usize = 4096;

/// A whole message from the peer.
#[derive(Debug, PartialEq, Eq)]
pub enum Message {
    Text(String),
    Binary(Vec<u8>),
    /// A frame of a message not yet complete (its bytes are kept until the
    /// last one): returned so that every frame counts for the session's
    /// limits, a peer's endless run of empty continuations included.
    Fragment,
    /// Answered already: the pong is queued and goes with the next flush.
    Ping,
    Pong,
    /// The peer's close, with its code when it gave one. The reply is
    /// queued (for the next flush) unless the hub closed first; nothing
    /// more is read after it.
    Close(Option<u16>),
}

/// What the hub writes.
#[derive(Clone, Copy, Debug)]
pub enum Out<'a> {
    Text(&'a str),
    Ping,
    Close(u16, &'a str),
}

/// Why reading failed.
#[derive(Debug)]
pub enum Error {
    /// A frame or a message longer than the socket's bound; its payload was
    /// not read.
    TooLarge,
    /// A frame that breaks RFC 6455: closed with 1002.
    Malformed(&'static str),
    /// A text message (or a close reason) that is not UTF-8: closed with
    /// 1007.
    NotUtf8,
    Io(io::Error),
}

impl Error {
    /// The close code a peer is told for this error: 1002 (RFC 6455
    /// broken), 1007 (not UTF-8); none for the others (the session answers
    /// a size with its own `too_large`, and an I/O error has no one to tell).
    pub fn close_code(&self) -> Option<u16> {
        match self {
            Error::Malformed(_) => Some(1002),
            Error::NotUtf8 => Some(1007),
            Error::TooLarge | Error::Io(_) => None,
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::TooLarge => f.write_str("message too large"),
            Error::Malformed(why) => write!(f, "malformed frame: {why}"),
            Error::NotUtf8 => f.write_str("text is not UTF-8"),
            Error::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {}

/// A fragmented message being assembled.
struct Partial {
    text: bool,
    data: Vec<u8>,
}

/// An upgraded WebSocket over its TCP stream (the hub's side: frames in
/// are masked, frames out are not).
pub struct Socket {
    stream: TcpStream,
    /// Bytes read and not yet consumed, from `at`; empty (no allocation)
    /// between messages.
    input: Vec<u8>,
    at: usize,
    /// A fragmented message being assembled: rare, and boxed so that every
    /// idle connection's task does not carry its room.
    partial: Option<Box<Partial>>,
    /// Frames queued and not yet written, from `written`; released after
    /// each flush.
    out: Vec<u8>,
    written: usize,
    /// The longest frame or message read (`--max-frame-bytes` is enforced
    /// by the session on whole messages, below this hard bound).
    max_message: usize,
    close_sent: bool,
    /// Nothing more is read: the peer closed, or broke the protocol.
    read_done: bool,
}

impl Socket {
    /// `already` is what the HTTP server read past the handshake (a client
    /// may send its first frame with the upgrade request).
    pub fn new(stream: TcpStream, already: Bytes, max_message: usize) -> Socket {
        Socket {
            stream,
            input: already.to_vec(),
            at: 0,
            partial: None,
            out: Vec::new(),
            written: 0,
            max_message,
            close_sent: false,
            read_done: false,
        }
    }

    /// The next whole message (or [`Message::Fragment`] for each frame of
    /// one still coming); `None` once the peer closed (after its
    /// `Close`) or the connection ended. After an `Err` nothing more is read
    /// (a close frame saying why was offered to the peer, without waiting).
    pub async fn recv(&mut self) -> Option<Result<Message, Error>> {
        loop {
            if self.read_done {
                return None;
            }
            match self.parse() {
                Ok(Some(message)) => return Some(Ok(message)),
                Ok(None) => {}
                Err(e) => {
                    self.fail(&e);
                    return Some(Err(e));
                }
            }
            // Polled rather than `readable()`: the waker waits in the
            // stream's own registration, not in a node inside this future
            // (which every idle connection's task would carry).
            if let Err(e) = std::future::poll_fn(|cx| self.stream.poll_read_ready(cx)).await {
                return Some(Err(Error::Io(e)));
            }
            match self.fill() {
                Ok(0) => {
                    self.read_done = true;
                    return None;
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    self.read_done = true;
                    return Some(Err(Error::Io(e)));
                }
            }
        }
    }

    /// Queues a frame for the next [`Socket::flush`]. Nothing is queued
    /// after a close.
    pub fn queue(&mut self, message: Out<'_>) {
        if self.close_sent {
            return;
        }
        match message {
            Out::Text(text) => frame::write(&mut self.out, Opcode::Text, text.as_bytes()),
            Out::Ping => frame::write(&mut self.out, Opcode::Ping, b""),
            Out::Close(code, reason) => {
                self.close_sent = true;
                let mut payload = Vec::with_capacity(2 + reason.len());
                payload.extend_from_slice(&code.to_be_bytes());
                payload.extend_from_slice(reason.as_bytes());
                frame::write(&mut self.out, Opcode::Close, &payload);
            }
        }
    }

    /// Room for `bytes` of payload in `frames` frames, so a batch is queued
    /// with one allocation.
    pub fn reserve(&mut self, frames: usize, bytes: usize) {
        self.out.reserve(bytes + frames * 10);
    }

    /// Writes everything queued (pongs and close replies included).
    pub async fn flush(&mut self) -> io::Result<()> {
        while self.written < self.out.len() {
            std::future::poll_fn(|cx| self.stream.poll_write_ready(cx)).await?;
            match self.stream.try_write(&self.out[self.written..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        self.out = Vec::new();
        self.written = 0;
        Ok(())
    }

    /// [`Socket::flush`] within `deadline`: `false` when it could not be
    /// (a peer that does not read, or is gone), and the connection should
    /// end.
    pub async fn flush_within(&mut self, deadline: Duration) -> bool {
        matches!(
            tokio::time::timeout(deadline, self.flush()).await,
            Ok(Ok(()))
        )
    }

    /// Queues `message` and flushes within `deadline` (as
    /// [`Socket::flush_within`]).
    pub async fn send_within(&mut self, message: Out<'_>, deadline: Duration) -> bool {
        self.queue(message);
        self.flush_within(deadline).await
    }

    /// Sends a close frame (within `write_timeout`: when even that cannot
    /// be written the TCP connection is simply dropped), then reads until
    /// the peer answers it (at most `linger`), so unread data from the peer
    /// does not turn the close into a reset that loses the frame. A reason
    /// is cut to 120 bytes (a close frame's payload is at most 125).
    pub async fn close_within(
        &mut self,
        code: u16,
        reason: &str,
        linger: Duration,
        write_timeout: Duration,
    ) {
        let mut cut = reason.len().min(120);
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        if !self
            .send_within(Out::Close(code, &reason[..cut]), write_timeout)
            .await
        {
            return;
        }
        let _ = tokio::time::timeout(linger, async {
            loop {
                match self.recv().await {
                    Some(Ok(Message::Close(_))) => break,
                    Some(Ok(_)) => {}
                    // No more frames to read (the peer broke the protocol,
                    // or the line ended): what it still sends is dropped
                    // until it closes.
                    Some(Err(_)) | None => {
                        self.discard().await;
                        break;
                    }
                }
            }
        })
        .await;
    }

    /// Ends the hub's side (FIN, after what is queued) and reads and drops
    /// whatever the peer still sends, until it closes too: after the hub's
    /// close frame, so that bytes left unread do not turn the end into a
    /// reset that loses that frame. Nothing more is parsed. The caller
    /// bounds the time.
    pub async fn discard(&mut self) {
        self.read_done = true;
        self.input = Vec::new();
        self.at = 0;
        self.partial = None;
        if self.flush().await.is_err() || self.stream.shutdown().await.is_err() {
            return;
        }
        loop {
            if std::future::poll_fn(|cx| self.stream.poll_read_ready(cx))
                .await
                .is_err()
            {
                return;
            }
            match self.skip() {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
    }

    /// Reads what the kernel has into the stack, and drops it.
    fn skip(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; READ_CHUNK];
        self.stream.try_read(&mut chunk)
    }

    /// While a frame is incomplete: drops the bytes consumed before it, and
    /// the room a larger message left behind.
    fn compact(&mut self) {
        if self.at > 0 {
            self.input.drain(..self.at);
            self.at = 0;
        }
        if self.input.capacity() > 2 * self.input.len() + READ_CHUNK {
            self.input.shrink_to(self.input.len() + READ_CHUNK);
        }
    }

    /// Reads what the kernel has, through the stack.
    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; READ_CHUNK];
        let n = self.stream.try_read(&mut chunk)?;
        if self.at > 0 {
            self.input.drain(..self.at);
            self.at = 0;
        }
        self.input.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// The next message from the bytes read, if they hold one.
    fn parse(&mut self) -> Result<Option<Message>, Error> {
        let available = &self.input[self.at..];
        let Some(header) = frame::parse_header(available).map_err(|m| Error::Malformed(m.0))?
        else {
            return Ok(None);
        };
        // A continuation adds to the message it continues; a control
        // frame between fragments is measured alone.
        let assembled = match (header.opcode, &self.partial) {
            (Opcode::Continuation, Some(p)) => p.data.len(),
            _ => 0,
        };
        if header.len > self.max_message.saturating_sub(assembled) as u64 {
            return Err(Error::TooLarge);
        }
        let len = header.len as usize;
        if available.len() < header.size + len {
            // The rest is to come. Room is made as bytes arrive, not
            // for the length announced: a header costs its sender 14
            // bytes, and must not cost the hub the frame's size.
            self.compact();
            return Ok(None);
        }
        let start = self.at + header.size;
        let mut payload = self.input[start..start + len].to_vec();
        frame::unmask(&mut payload, header.mask);
        self.at = start + len;
        if self.at == self.input.len() {
            // Everything read is consumed: hold nothing while idle.
            self.input = Vec::new();
            self.at = 0;
        }
        match header.opcode {
            Opcode::Text | Opcode::Binary => {
                if self.partial.is_some() {
                    return Err(Error::Malformed("a new message inside a fragmented one"));
                }
                let text = header.opcode == Opcode::Text;
                if header.fin {
                    return complete(text, payload).map(Some);
                }
                self.partial = Some(Box::new(Partial {
                    text,
                    data: payload,
                }));
                Ok(Some(Message::Fragment))
            }
            Opcode::Continuation => {
                let Some(mut partial) = self.partial.take() else {
                    return Err(Error::Malformed("a continuation without a message"));
                };
                partial.data.extend_from_slice(&payload);
                if header.fin {
                    return complete(partial.text, partial.data).map(Some);
                }
                self.partial = Some(partial);
                Ok(Some(Message::Fragment))
            }
            Opcode::Ping => {
                if !self.close_sent {
                    frame::write(&mut self.out, Opcode::Pong, &payload);
                }
                Ok(Some(Message::Ping))
            }
            Opcode::Pong => Ok(Some(Message::Pong)),
            Opcode::Close => {
                let code = close_code(&payload)?;
                self.read_done = true;
                if !self.close_sent {
                    // The reply echoes the peer's code (RFC 6455 §5.5.1).
                    self.close_sent = true;
                    let reply = code.map(u16::to_be_bytes);
                    frame::write(
                        &mut self.out,
                        Opcode::Close,
                        reply.as_ref().map_or(&[][..], |c| &c[..]),
                    );
                }
                Ok(Some(Message::Close(code)))
            }
        }
    }

    /// After a read error: read nothing more, and offer the peer a close
    /// frame saying why, without waiting for the socket (it is ending).
    fn fail(&mut self, e: &Error) {
        self.read_done = true;
        let Some(code) = e.close_code() else {
            return;
        };
        self.queue(Out::Close(code, ""));
        if let Ok(n) = self.stream.try_write(&self.out[self.written..]) {
            self.written += n;
        }
    }
}

/// A whole message's payload, as what it says it is.
fn complete(text: bool, data: Vec<u8>) -> Result<Message, Error> {
    if text {
        String::from_utf8(data)
            .map(Message::Text)
            .map_err(|_| Error::NotUtf8)
    } else {
        Ok(Message::Binary(data))
    }
}

/// A close frame's code: none, or two bytes of an allowed code and a UTF-8
/// reason.
fn close_code(payload: &[u8]) -> Result<Option<u16>, Error> {
    match payload {
        [] => Ok(None),
        [_] => Err(Error::Malformed("a close payload of one byte")),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !frame::close_code_allowed(code) {
                return Err(Error::Malformed("a close code that may not be sent"));
            }
            std::str::from_utf8(reason).map_err(|_| Error::NotUtf8)?;
            Ok(Some(code))
        }
    }
}
