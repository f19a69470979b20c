//! Spare queue arrays, set aside at start, so that a client sent more
//! lines in a turn than its queue's small array holds costs no allocation.
//!
//! A queue keeps a small array ([`SMALL`] slots) for good: that is all a
//! client sent a line or two per turn needs, and an idle client must stay
//! cheap (under 1 KiB in all, measured with 10 000 of them). A client sent
//! more lines in one turn needs a bigger array, but only until its queue
//! drains, at the latest when the reactor sends it early at [`EARLY_FLUSH`]
//! buffers. Growing the small array and freeing the big one each turn
//! costs two or three allocations per recipient and turn. The other ways
//! out cost idle clients, measured at 10 000 of them connecting at once
//! (each gets a burst of `JOIN`s per turn): keeping the big array after a
//! burst, 1 212 B per idle client instead of 995 B (at 2 000); a stock of
//! returned arrays, even of 16, about 1 300 B instead of 1 000 B, as arrays
//! kept from late in a burst pin the top of the heap and malloc can no
//! longer give back the free memory below them.
//!
//! So the stock is [`STOCK`] big arrays and as many small ones, allocated
//! together when the chat server starts (under 1 MiB, low in the heap), and
//! only those: a queue whose small array is full borrows a big one (its own
//! small array is freed, or a borrowed one given back), and once drained
//! gives it back and borrows a small one. Arrays a queue allocated itself
//! are freed as they would be without the stock. In steady state, up to
//! [`STOCK`] clients sent bursts in the same turn cost no allocation
//! (`tests/alloc_fanout.rs`), and idle clients cost what they did: 977 B
//! each at 10 000 (958 B without the stock), 758 B at 2 000 (995 B), the
//! stock itself being counted before the first client.

use std::cell::RefCell;
use std::collections::VecDeque;

use super::{Chunk, EARLY_FLUSH};

/// The array a queue keeps: the smallest a `VecDeque` of 24-byte chunks
/// allocates.
pub(super) const SMALL: usize = 4;
/// Arrays of each size set aside: up to this many clients can be sent a
/// burst in the same turn without an allocation (896 bytes each, both
/// sizes with malloc's size words: 0.9 MiB in all).
const STOCK: usize = 1024;

/// Whose array a queue holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum Array {
    /// Its own (or none): freed when it is not needed.
    #[default]
    Own,
    /// A small one from the stock.
    Small,
    /// A big one from the stock.
    Big,
}

/// The arrays set aside and not lent, all empty.
struct Stock {
    small: Vec<VecDeque<Chunk>>,
    big: Vec<VecDeque<Chunk>>,
}

thread_local! {
    static SPARE: RefCell<Stock> = const {
        RefCell::new(Stock { small: Vec::new(), big: Vec::new() })
    };
}

/// Sets the stock aside (once per thread; the chat reactor's).
pub(super) fn reserve() {
    SPARE.with_borrow_mut(|s| {
        if !s.big.is_empty() || !s.small.is_empty() {
            return;
        }
        s.big.reserve_exact(STOCK);
        s.small.reserve_exact(STOCK);
        for _ in 0..STOCK {
            s.big.push(VecDeque::with_capacity(EARLY_FLUSH));
            s.small.push(VecDeque::with_capacity(SMALL));
        }
    });
}

/// `q` is full. A full small array is traded for a big one from the stock
/// (its chunks moved over); an empty queue borrows a small one. Otherwise,
/// or if the stock has none, `q` grows as any `VecDeque` does (a big
/// array that grows is the queue's own from then on).
#[cold]
#[inline(never)]
pub(super) fn trade_up(q: &mut VecDeque<Chunk>, whose: &mut Array) {
    let cap = q.capacity();
    SPARE.with_borrow_mut(|s| match cap {
        0 => match s.small.pop() {
            Some(small) => {
                *q = small;
                *whose = Array::Small;
            }
            None => *whose = Array::Own,
        },
        SMALL => {
            let Some(mut big) = s.big.pop() else {
                *whose = Array::Own;
                return;
            };
            std::mem::swap(q, &mut big);
            q.extend(big.drain(..));
            if *whose == Array::Small {
                s.small.push(big);
            }
            *whose = Array::Big;
        }
        _ => *whose = Array::Own,
    });
}

/// `q` drained with an array bigger than the small one: a borrowed big
/// array goes back to the stock (any other is freed), and `q` borrows a
/// small one (or holds none if the stock has none).
#[cold]
#[inline(never)]
pub(super) fn trade_down(q: &mut VecDeque<Chunk>, whose: &mut Array) {
    SPARE.with_borrow_mut(|s| {
        let small = s.small.pop();
        let array = std::mem::replace(q, small.unwrap_or_default());
        if *whose == Array::Big && array.capacity() == EARLY_FLUSH {
            s.big.push(array);
        }
        *whose = match q.capacity() {
            0 => Array::Own,
            _ => Array::Small,
        };
    });
}

/// The queue holding `q` is going away: a borrowed array goes back.
pub(super) fn give_back(q: &mut VecDeque<Chunk>, whose: Array) {
    let ok = match whose {
        Array::Own => false,
        Array::Small => q.capacity() == SMALL,
        Array::Big => q.capacity() == EARLY_FLUSH,
    };
    if !ok {
        return;
    }
    q.clear();
    let array = std::mem::take(q);
    SPARE.with_borrow_mut(|s| match whose {
        Array::Small => s.small.push(array),
        _ => s.big.push(array),
    });
}

/// Arrays in the stock: (small, big).
#[cfg(test)]
pub(super) fn stocked() -> (usize, usize) {
    SPARE.with_borrow(|s| (s.small.len(), s.big.len()))
}
