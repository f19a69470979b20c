//! Chat (PROTOCOL.md §2): clients talk to each other in rooms.
//!
//! - [`command`]: one line → one [`command::Command`] (pure).
//! - [`router`]: nicks, rooms and who receives what, over slab keys (pure);
//!   nicks reserved by client certificates live in `reserved.rs`.
//! - [`session`]: per-connection framing and deadlines, glued to the router.

pub mod command;
mod commands;
mod reserved;
pub mod router;
pub mod session;

pub use session::{Chat, Departure, Expiry, Limits};

#[cfg(test)]
mod tests;
