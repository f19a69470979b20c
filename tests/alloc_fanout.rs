//! No allocation per recipient in steady state, measured: a line fanned
//! out through the chat router and the output queues to N members costs
//! the same number of allocations whatever N is (the one shared line),
//! with one line per turn, with more than a queue's small array holds, and
//! with more than the early flush. A global allocator of this test binary
//! counts the allocations made on the test's own thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{ErrorKind, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::rc::Rc;

use edgechat::chat::router::{Outbox, Router};
use edgechat::queue::{reserve_spares, OutQueue, EARLY_FLUSH};

/// The system allocator, counting allocations (and reallocations).
struct Counting;

thread_local! {
    // Const-initialized and without a destructor: reading it allocates
    // nothing, so the allocator may use it.
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    ALLOCS.with(|a| a.set(a.get() + 1));
}

fn allocs() -> u64 {
    ALLOCS.with(Cell::get)
}

// SAFETY: every call is passed on unchanged to the system allocator, which
// upholds GlobalAlloc's contract; counting touches no allocated memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's layout is passed on as it came.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: `ptr` and `layout` come from this allocator, which got
        // them from the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as for realloc.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// Members' queues, flushed as the reactor flushes them: at once when one
/// holds [`EARLY_FLUSH`] buffers, else once at the end of the turn.
struct Members {
    queues: Vec<OutQueue>,
    fds: Vec<OwnedFd>,
    peers: Vec<UnixStream>,
    dirty: Vec<usize>,
}

impl Members {
    fn new(n: usize) -> Members {
        let mut m = Members {
            queues: Vec::new(),
            fds: Vec::new(),
            peers: Vec::new(),
            dirty: Vec::with_capacity(n),
        };
        for _ in 0..n {
            let (ours, theirs) = UnixStream::pair().expect("socketpair");
            ours.set_nonblocking(true).expect("nonblocking");
            theirs.set_nonblocking(true).expect("nonblocking");
            m.queues.push(OutQueue::default());
            m.fds.push(OwnedFd::from(ours));
            m.peers.push(theirs);
        }
        m
    }

    fn flush(&mut self, key: usize) {
        self.queues[key]
            .flush(self.fds[key].as_fd())
            .expect("flush");
    }

    /// The end of a turn: every queue given lines is sent, and every
    /// member reads what it got.
    fn end_turn(&mut self, buf: &mut [u8]) {
        while let Some(key) = self.dirty.pop() {
            self.flush(key);
            assert!(self.queues[key].is_empty(), "a socket took it all");
        }
        for p in &mut self.peers {
            loop {
                match p.read(buf) {
                    Ok(0) => panic!("EOF"),
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => panic!("read: {e}"),
                }
            }
        }
    }
}

impl Outbox for Members {
    fn deliver(&mut self, to: usize, line: &Rc<[u8]>) {
        let q = &mut self.queues[to];
        let was_empty = q.is_empty();
        q.push_shared(line.clone());
        if was_empty {
            self.dirty.push(to);
        }
        if q.chunks() >= EARLY_FLUSH {
            self.flush(to);
        }
    }

    fn close_after_flush(&mut self, _key: usize) {}
}

/// Allocations made by `turns` turns of `per_turn` lines from member 0 to
/// a room of `n` members, after as many turns of `warm` lines to warm up.
fn allocations(n: usize, warm: usize, per_turn: usize, turns: usize) -> u64 {
    measure(n, warm, 0, per_turn, turns)
}

/// The same, with one turn of `per_turn` lines between the warm-up and the
/// turns counted.
fn allocations_after(n: usize, warm: usize, per_turn: usize, turns: usize) -> u64 {
    measure(n, warm, 1, per_turn, turns)
}

fn measure(n: usize, warm: usize, settle: usize, per_turn: usize, turns: usize) -> u64 {
    reserve_spares(10_000); // as the chat reactor does at start (--max-clients)
    let mut room = Members::new(n);
    let mut router = Router::new();
    let mut buf = vec![0u8; 64 * 1024];
    for key in 0..n {
        router.connect(key, &mut room);
    }
    room.end_turn(&mut buf);
    let mut turn = |room: &mut Members, per_turn: usize| {
        for _ in 0..per_turn {
            router.line(0, b"steady state", room);
        }
        room.end_turn(&mut buf);
    };
    for _ in 0..turns {
        turn(&mut room, warm);
    }
    for _ in 0..settle {
        turn(&mut room, per_turn);
    }
    let before = allocs();
    for _ in 0..turns {
        turn(&mut room, per_turn);
    }
    allocs() - before
}

#[test]
fn no_allocation_per_recipient_in_steady_state() {
    const TURNS: usize = 50;
    // One line a turn; more than the small array a queue keeps (4); more
    // than the early flush (32).
    for per_turn in [1, 8, EARLY_FLUSH + 8] {
        let lines = (TURNS * per_turn) as u64;
        let few = allocations(10, per_turn, per_turn, TURNS);
        let many = allocations(200, per_turn, per_turn, TURNS);
        eprintln!(
            "{per_turn} lines a turn: {few} allocations for {lines} lines to 9 members, \
             {many} to 199"
        );
        assert_eq!(
            few, many,
            "{per_turn} lines a turn: allocations grow with the members"
        );
        assert_eq!(few, lines, "one allocation per line: the shared line");
    }
}

/// More members than spare arrays: after bursts that each member's small
/// array cannot hold (the members the stock does not cover grow arrays of
/// their own and free them, and allocate a small one again with the next
/// line, once), a line per turn allocates nothing per recipient, and the
/// stock is whole again (the stocked members allocate nothing even then).
#[test]
fn bursts_to_more_members_than_spares_leave_no_allocation_per_line() {
    const TURNS: usize = 10;
    let after = allocations(2000, 8, 1, TURNS);
    assert!(
        after <= TURNS as u64 + 2000 - 1024,
        "{after} allocations: more than one small array per member the stock did not cover"
    );
    let settled = allocations_after(2000, 8, 1, TURNS);
    assert_eq!(
        settled, TURNS as u64,
        "one allocation per line: the shared line"
    );
}
