//! Nicks reserved by client certificates (PROTOCOL.md §3): a client whose
//! certificate names it connects as that nick, taking it from whoever held
//! it without a certificate, and keeps it until it leaves.

use super::router::{Outbox, Router};

impl Router {
    /// A new client whose certificate reserves `name` (or a plain new client
    /// with `None`). Whoever holds `name` without a certificate is renamed
    /// to a fresh `guest<N>` first. Returns `false` (after queueing
    /// `ERR nick-in-use` and asking for a close) if another connection with
    /// the same certificate holds it.
    pub fn connect_as(&mut self, key: usize, name: Option<&str>, out: &mut impl Outbox) -> bool {
        let Some(name) = name else {
            self.connect(key, out);
            return true;
        };
        // A squatter's rename goes out at once: held notices go first.
        self.send_notices(out);
        let lower = name.to_ascii_lowercase();
        if let Some(&holder) = self.nicks.get(lower.as_str()) {
            if self.client(holder).is_some_and(|c| c.reserved) {
                self.error(key, "nick-in-use", out);
                out.close_after_flush(key);
                return false;
            }
            self.evict(holder, out);
        }
        self.admit(key, name.to_string(), true, out);
        true
    }

    /// Renames `key` to a fresh `guest<N>`: it and its room receive
    /// `NICK <old> guest<N>`.
    fn evict(&mut self, key: usize, out: &mut impl Outbox) {
        let guest = self.fresh_guest();
        let Some(c) = self.clients.get_mut(key).and_then(Option::as_mut) else {
            return;
        };
        let old = std::mem::replace(&mut c.nick, guest.as_str().into());
        let room = c.room.clone();
        self.nicks.remove(old.to_ascii_lowercase().as_str());
        self.nicks.insert(guest.as_str().into(), key);
        self.reply(key, &["NICK", &old, &guest], out);
        self.broadcast(&room, key, &["NICK", &old, &guest], out);
    }
}

#[cfg(test)]
mod tests {
    use crate::chat::record::Record;
    use std::rc::Rc;

    use super::*;

    #[derive(Default)]
    struct Rec {
        got: Vec<(usize, String)>,
        closed: Vec<usize>,
    }

    impl Record for Rec {
        fn record(&mut self, to: usize, line: &Rc<[u8]>) {
            let s = String::from_utf8(line.to_vec()).unwrap();
            self.got.push((to, s.trim_end().to_string()));
        }
        fn closed(&mut self, key: usize) {
            self.closed.push(key);
        }
    }

    impl Rec {
        fn take(&mut self) -> Vec<(usize, String)> {
            std::mem::take(&mut self.got)
        }
    }

    fn got(v: &[(usize, &str)]) -> Vec<(usize, String)> {
        v.iter().map(|(k, s)| (*k, s.to_string())).collect()
    }

    #[test]
    fn holder_gets_its_nick_in_hello() {
        let (mut r, mut o) = (Router::new(), Rec::default());
        r.connect(0, &mut o);
        assert!(r.connect_as(1, Some("alice"), &mut o));
        assert_eq!(
            o.take(),
            got(&[
                (0, "HELLO guest1 lobby"),
                (1, "HELLO alice lobby"),
                (0, "JOIN alice")
            ])
        );
    }

    #[test]
    fn nobody_else_can_take_it_and_the_holder_cannot_change_it() {
        let (mut r, mut o) = (Router::new(), Rec::default());
        r.connect_as(0, Some("alice"), &mut o);
        r.connect(1, &mut o);
        o.take();
        r.line(1, b"/nick ALICE", &mut o);
        r.line(0, b"/nick bob", &mut o);
        r.line(0, b"/nick alice", &mut o);
        assert_eq!(
            o.take(),
            got(&[
                (1, "ERR nick-in-use"),
                (0, "ERR bad-nick"),
                (0, "ERR bad-nick")
            ])
        );
    }

    #[test]
    fn a_squatter_is_renamed_before_the_holder_joins() {
        let (mut r, mut o) = (Router::new(), Rec::default());
        r.connect(0, &mut o);
        r.connect(1, &mut o);
        r.line(0, b"/nick Alice", &mut o);
        o.take();
        assert!(r.connect_as(2, Some("alice"), &mut o));
        assert_eq!(
            o.take(),
            got(&[
                (0, "NICK Alice guest3"),
                (1, "NICK Alice guest3"),
                (2, "HELLO alice lobby"),
                (0, "JOIN alice"),
                (1, "JOIN alice"),
            ])
        );
        assert_eq!(r.nick(0), Some("guest3"));
    }

    #[test]
    fn a_second_holder_is_refused_and_the_name_frees_on_leave() {
        let (mut r, mut o) = (Router::new(), Rec::default());
        r.connect_as(0, Some("alice"), &mut o);
        o.take();
        assert!(!r.connect_as(1, Some("alice"), &mut o));
        assert_eq!(o.take(), got(&[(1, "ERR nick-in-use")]));
        assert_eq!(o.closed, vec![1]);
        assert_eq!(r.clients(), 1);
        r.disconnect(0, None, true, &mut o);
        r.connect(2, &mut o);
        o.take();
        r.line(2, b"/nick alice", &mut o);
        assert_eq!(o.take(), got(&[(2, "OK nick alice")]));
    }
}
