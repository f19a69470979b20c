//! One chat sender's window: which of its lines are in flight, and how many
//! receivers have each. Pure, and nothing is allocated after
//! [`Window::new`]: a fixed ring of `depth` counters, slot `seq % depth`.
//!
//! A line is delivered once every receiver has it. Lines complete in order
//! (the server keeps each sender's order towards each receiver), so the
//! window is the run `base..next` of sequence numbers.

/// One sender's lines in flight.
#[derive(Debug)]
pub struct Window {
    /// The oldest line not yet delivered to every receiver.
    base: u64,
    /// The next line to send.
    next: u64,
    /// Receivers that have line `seq`, at slot `seq % depth`.
    got: Box<[u32]>,
    receivers: u32,
}

impl Window {
    /// A window of `depth` lines, each to be delivered to `receivers`.
    pub fn new(depth: usize, receivers: usize) -> Window {
        Window {
            base: 0,
            next: 0,
            got: vec![0; depth.max(1)].into_boxed_slice(),
            receivers: u32::try_from(receivers).unwrap_or(u32::MAX),
        }
    }

    fn depth(&self) -> u64 {
        self.got.len() as u64
    }

    /// Lines that may be started now.
    pub fn room(&self) -> u64 {
        self.base + self.depth() - self.next
    }

    /// Lines started and not yet delivered to every receiver.
    #[cfg(test)]
    pub fn in_flight(&self) -> u64 {
        self.next - self.base
    }

    /// Takes the next sequence number (the caller checked [`Window::room`]).
    pub fn start(&mut self) -> u64 {
        let seq = self.next;
        self.next += 1;
        seq
    }

    /// One receiver has line `seq`. Returns how many lines are now delivered
    /// to every receiver (and leave the window). A number outside the window
    /// (a duplicate, say) changes nothing: the receiver's order check counts
    /// it.
    pub fn got(&mut self, seq: u64) -> u64 {
        if seq < self.base || seq >= self.next {
            return 0;
        }
        let depth = self.depth();
        self.got[(seq % depth) as usize] += 1;
        let mut done = 0;
        while self.base < self.next {
            let slot = &mut self.got[(self.base % depth) as usize];
            if *slot < self.receivers {
                break;
            }
            *slot = 0;
            self.base += 1;
            done += 1;
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_delivered_when_every_receiver_has_it() {
        let mut w = Window::new(2, 3);
        assert_eq!(w.room(), 2);
        assert_eq!((w.start(), w.start()), (0, 1));
        assert_eq!(w.room(), 0);
        assert_eq!(w.got(0) + w.got(0), 0);
        assert_eq!(w.got(1), 0);
        assert_eq!(w.got(0), 1, "the third receiver completes line 0");
        assert_eq!((w.room(), w.in_flight()), (1, 1));
        assert_eq!(w.got(1) + w.got(1), 1);
        assert_eq!((w.room(), w.in_flight()), (2, 0));
    }

    #[test]
    fn the_ring_is_reused() {
        let mut w = Window::new(4, 1);
        for seq in 0..100 {
            assert_eq!(w.start(), seq);
            assert_eq!(w.got(seq), 1);
        }
        assert_eq!(w.room(), 4);
    }

    #[test]
    fn lines_complete_in_order() {
        let mut w = Window::new(3, 1);
        for _ in 0..3 {
            w.start();
        }
        assert_eq!(w.got(2), 0, "line 0 is still out");
        assert_eq!(w.got(1), 0);
        assert_eq!(w.got(0), 3);
    }

    #[test]
    fn numbers_outside_the_window_change_nothing() {
        let mut w = Window::new(2, 1);
        w.start();
        assert_eq!(w.got(5), 0);
        assert_eq!(w.got(0), 1);
        assert_eq!(w.got(0), 0, "a duplicate");
        assert_eq!(w.in_flight(), 0);
    }
}
