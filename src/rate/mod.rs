//! Rate limits per source, for whatever a source may do only so often: the
//! UDP echo's datagrams (`--udp-rate`) and new TCP connections
//! (`--max-conn-rate`).
//!
//! - [`bucket`]: one token bucket, stored as a single timestamp, with exact
//!   integer arithmetic (pure: the time is a parameter).
//! - [`table`]: the buckets of at most `max` sources, the least recently
//!   seen forgotten in O(1), so a flood of sources costs bounded memory.

pub mod bucket;
pub mod table;

/// Sources whose buckets are kept at once; the least recently seen one
/// is forgotten for a new one. About 100 bytes each at most (slot and
/// map entry), so a table stays under half a MiB however many sources
/// a flood forges.
pub const MAX_SOURCES: usize = 4096;
