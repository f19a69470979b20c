//! Spare queue arrays, set aside at start, so that a client sent more
//! lines in a turn than its queue's small array holds costs no allocation.
//!
//! A queue keeps its own small array ([`SMALL`] slots) for good: that is
//! all a client sent a line or two per turn needs, and an idle client must
//! stay cheap (under 1 KiB in all, measured with 10 000 of them). A client
//! sent more lines in one turn needs a bigger array, but only until its
//! queue drains, at the latest when the reactor sends it early at
//! [`EARLY_FLUSH`] buffers. Growing the small array and freeing the big
//! one each turn costs two or three allocations per recipient and turn.
//! The other ways out cost idle clients, measured at 10 000 of them
//! connecting at once (each gets a burst of `JOIN`s per turn): keeping the
//! big array after a burst, 1 212 B per idle client instead of 995 B (at
//! 2 000); a stock of returned arrays, even of 16, about 1 300 B instead of
//! 1 000 B, as arrays kept from late in a burst pin the top of the heap and
//! malloc can no longer give back the free memory below them.
//!
//! So the stock is [`STOCK`] big arrays, allocated together when the chat
//! server starts (under 1 MiB, low in the heap), and only those. A queue
//! whose small array is full borrows a big one and parks its small array
//! beside it (`OutQueue::parked`); once drained it gives the big one back
//! and takes its small array again. A borrowed array that fills (its client
//! fell behind) is traded for one of the queue's own, twice the size, and
//! goes back to the stock at once, so the stock never shrinks. In steady
//! state, up to [`STOCK`] clients sent bursts in the same turn cost no
//! allocation (`tests/alloc_fanout.rs`); beyond that, the rest grow their
//! own arrays as a plain `VecDeque` does and free them once drained, so
//! their next line allocates a small array again, once. (Giving those a
//! big array of their own and keeping the small one parked was measured:
//! 1 290 B per idle client at 10 000, over the 1 KiB bound, as the big
//! arrays freed after the `JOIN` storm leave holes among the small ones.)

use std::cell::RefCell;
use std::collections::VecDeque;

use super::{Chunk, EARLY_FLUSH};

/// The array a queue keeps: the smallest a `VecDeque` of 24-byte chunks
/// allocates.
pub(super) const SMALL: usize = 4;
/// Big arrays set aside: up to this many clients can be sent a burst in
/// the same turn without an allocation (784 bytes each with malloc's size
/// word: 0.8 MiB in all).
const STOCK: usize = 1024;

thread_local! {
    /// The big arrays set aside and not lent, all empty.
    static SPARE: RefCell<Vec<VecDeque<Chunk>>> = const { RefCell::new(Vec::new()) };
}

/// Sets the stock aside (once per thread; the chat reactor's): [`STOCK`]
/// arrays, or `clients` if fewer.
pub(super) fn reserve(clients: usize) {
    SPARE.with_borrow_mut(|s| {
        if !s.is_empty() {
            return;
        }
        let n = STOCK.min(clients);
        s.reserve_exact(n);
        for _ in 0..n {
            s.push(VecDeque::with_capacity(EARLY_FLUSH));
        }
    });
}

/// `q` is full. A full small array is parked in `parked` and `q` borrows
/// a big one from the stock (its chunks moved over); a full borrowed array
/// is traded for one of the queue's own, twice the size, and goes back.
/// Otherwise, or if the stock has none, `q` grows as any `VecDeque` does.
#[cold]
#[inline(never)]
pub(super) fn trade_up(q: &mut VecDeque<Chunk>, parked: &mut VecDeque<Chunk>, lent: &mut bool) {
    if *lent {
        let mut own = VecDeque::with_capacity(2 * q.capacity());
        own.extend(q.drain(..));
        let borrowed = std::mem::replace(q, own);
        SPARE.with_borrow_mut(|s| s.push(borrowed));
        *lent = false;
    } else if q.capacity() == SMALL && parked.capacity() == 0 {
        let Some(big) = SPARE.with_borrow_mut(|s| s.pop()) else {
            return;
        };
        *parked = std::mem::replace(q, big);
        q.extend(parked.drain(..));
        *lent = true;
    }
}

/// `q` drained with an array bigger than the small one: a borrowed array
/// goes back to the stock (one of its own is freed), and `q` takes its
/// parked small array again (or none, if it never had one).
#[cold]
#[inline(never)]
pub(super) fn trade_down(q: &mut VecDeque<Chunk>, parked: &mut VecDeque<Chunk>, lent: &mut bool) {
    let array = std::mem::replace(q, std::mem::take(parked));
    if std::mem::take(lent) {
        SPARE.with_borrow_mut(|s| s.push(array));
    }
}

/// The queue holding `q` is going away: a borrowed array goes back.
pub(super) fn give_back(q: &mut VecDeque<Chunk>) {
    q.clear();
    let array = std::mem::take(q);
    SPARE.with_borrow_mut(|s| s.push(array));
}

/// Big arrays in the stock.
#[cfg(test)]
pub(super) fn stocked() -> usize {
    SPARE.with_borrow(|s| s.len())
}
