//! No allocation in steady state, measured: lines fanned out through the
//! chat router, the turn and the output queues to N members cost no
//! allocation at all, whatever N is and however many lines a turn holds.
//! A global allocator of this test binary counts the allocations made on
//! the test's own thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{ErrorKind, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;

use edgechat::chat::router::{Outbox, Router};
use edgechat::queue::{Line, OutQueue, Turn};

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

/// Members' queues, flushed as the reactor flushes them: once at the end
/// of the turn (or when the turn is full), then settled.
struct Members {
    queues: Vec<OutQueue>,
    fds: Vec<OwnedFd>,
    peers: Vec<UnixStream>,
    dirty: Vec<usize>,
    turn: Turn,
    /// Sends made (one per member per turn is the goal).
    sends: u64,
}

impl Members {
    fn new(n: usize) -> Members {
        let mut m = Members {
            queues: Vec::new(),
            fds: Vec::new(),
            peers: Vec::new(),
            dirty: Vec::with_capacity(n),
            turn: Turn::default(),
            sends: 0,
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

    /// Sends what every listed queue owes and settles the turn.
    fn settle(&mut self) {
        while let Some(key) = self.dirty.pop() {
            let q = &mut self.queues[key];
            q.flush(self.fds[key].as_fd(), &self.turn).expect("flush");
            self.sends += 1;
            assert!(q.is_empty(), "a socket took it all");
            q.settle(&self.turn);
        }
        self.turn.clear();
    }

    /// The end of a turn: every queue given lines is sent, and every
    /// member reads what it got.
    fn end_turn(&mut self, buf: &mut [u8]) {
        self.settle();
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
    type Line = Line;

    fn post(&mut self, line: &[u8], many: bool) -> Line {
        if self.turn.is_full() {
            self.settle();
        }
        self.turn.post(line, many)
    }

    fn suffix(&self, line: &Line, skip: usize) -> Line {
        line.suffix(skip)
    }
    fn deliver(&mut self, to: usize, line: &Line) {
        let q = &mut self.queues[to];
        if !q.in_turn() {
            self.dirty.push(to);
        }
        q.push_line(&mut self.turn, *line);
    }

    fn close_after_flush(&mut self, _key: usize) {}
}

/// Allocations and sends made by `turns` turns of `per_turn` lines from
/// member 0 to a room of `n` members, after as many turns of `warm` lines
/// to warm up.
fn measure(n: usize, warm: usize, per_turn: usize, turns: usize) -> (u64, u64) {
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
    let (before, sends) = (allocs(), room.sends);
    for _ in 0..turns {
        turn(&mut room, per_turn);
    }
    (allocs() - before, room.sends - sends)
}

#[test]
fn no_allocation_and_one_send_per_recipient_and_turn() {
    const TURNS: usize = 20;
    for per_turn in [1, 8, 40, 256] {
        let lines = TURNS * per_turn;
        for n in [10, 200] {
            let (allocated, sends) = measure(n, per_turn, per_turn, TURNS);
            eprintln!(
                "{per_turn} lines a turn, {lines} lines to {} members: \
                 {allocated} allocations, {sends} sends",
                n - 1
            );
            assert_eq!(allocated, 0, "{per_turn} lines a turn to {n}: allocated");
            assert_eq!(
                sends,
                (TURNS * (n - 1)) as u64,
                "one send per member and turn"
            );
        }
    }
}

/// After bursts to a room of 2 000 (the join storm that built it
/// included), a line per turn allocates nothing.
#[test]
fn bursts_to_a_big_room_leave_no_allocation_per_line() {
    let (allocated, _) = measure(2000, 64, 1, 10);
    assert_eq!(allocated, 0, "allocations after bursts to 2 000 members");
}
