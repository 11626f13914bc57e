//! The WebSocket, owned by the hub: the opening handshake ([`upgrade`]),
//! frames ([`frame`], pure), the connection ([`socket`]) and its frame
//! budget ([`rate_limit`]).
//!
//! Why not a WebSocket library's stream: idle connections are the bulk of
//! a node, and a library keeps a read and a write buffer per connection
//! for its whole life, grown to the largest message it ever carried, with
//! no way to give them back. The hub's socket holds a buffer only while a
//! frame is half read or a batch half written (BENCHMARKS.md, memory per
//! connection). What it speaks is the subset a server needs: no extension,
//! no subprotocol, frames out never fragmented; frames in are checked as
//! RFC 6455 says (masked, no reserved bit, known opcode, short unfragmented
//! control frames, UTF-8 text, allowed close codes), and a frame that
//! breaks it ends the connection with 1002 (1007 for text that is not
//! UTF-8; PROTOCOL.md §1 and §3.2).
//!
//! Sessions (`/v1/ws`) and the integration API (`/api/v1/ws`) both speak
//! through it.

pub mod frame;
pub mod rate_limit;
pub mod socket;
pub mod upgrade;

pub use rate_limit::{Part, RateLimiter};
pub use socket::{Error, Message, Out, Socket};
pub use upgrade::{Rejection, Upgrade};
