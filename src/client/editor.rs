//! The interactive client's screen, as pure code: keys and server bytes in,
//! screen bytes and lines to send out. The line being typed is kept here,
//! not by the terminal, so a line that arrives is printed above it and the
//! typed text is drawn again below: what arrives never splits what is typed.
//!
//! Keys: printable UTF-8 is added and echoed; Backspace (DEL or Ctrl-H)
//! removes the last character, Ctrl-W the last word, Ctrl-U the whole line;
//! Enter sends the line with `\n`; Ctrl-D on an empty line is the end of
//! input. Escape sequences (arrows, function keys, Alt+key) are swallowed,
//! other control keys ignored. A line wider than the terminal scrolls
//! sideways: only its tail is shown, so it always fits on one row.
//!
//! What the server sends is printed a whole line at a time, as
//! `"\r\x1b[K" + line + "\r\n"` (erase the row holding the typed line,
//! print, next row), then the typed line is drawn again. Bytes without
//! their `\n` yet are held (at most [`MAX_HELD`]) until it comes or the
//! server closes. Control characters other than TAB (C0, DEL, and the C1
//! range U+0080 to U+009F, where U+009B is an 8-bit CSI) are shown as `?`,
//! and bytes that are not UTF-8 as U+FFFD, so no server can drive the
//! terminal.

/// Longest line that can be typed, in bytes; a key past it rings the bell.
pub const MAX_INPUT: usize = 16 * 1024;
/// Most bytes of one server line held while its `\n` has not come; a
/// longer line is printed in pieces of at most this many bytes, each on a
/// row of its own.
pub const MAX_HELD: usize = 64 * 1024;
/// Columns assumed when the terminal does not say.
pub const DEFAULT_COLUMNS: usize = 80;

/// Back to column 0, then erase to the end of the row (`EL`).
const CLEAR_ROW: &[u8] = b"\r\x1b[K";
const NEWLINE: &[u8] = b"\r\n";
const BELL: u8 = 0x07;

/// What a run of keys amounted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Typed {
    /// Keep reading keys.
    More,
    /// Ctrl-D on an empty line: the end of input (keys after it are dropped).
    Eof,
}

/// Where the key decoder is inside an escape sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escape {
    None,
    /// After ESC.
    Esc,
    /// After `ESC [`: parameters until a final byte (0x40 to 0x7E).
    Csi,
    /// After `ESC O`: one more byte.
    Ss3,
}

/// The typed line, the server's unfinished line, and the terminal's width.
#[derive(Debug)]
pub struct Editor {
    line: String,
    /// The start of a UTF-8 character whose other bytes have not come yet.
    partial: Vec<u8>,
    escape: Escape,
    /// The last key was `\r`: a `\n` right after it is the same Enter.
    after_cr: bool,
    held: Vec<u8>,
    columns: usize,
}

impl Editor {
    /// An empty line on a terminal `columns` wide (0: unknown).
    pub fn new(columns: usize) -> Editor {
        let mut e = Editor {
            line: String::new(),
            partial: Vec::new(),
            escape: Escape::None,
            after_cr: false,
            held: Vec::new(),
            columns: DEFAULT_COLUMNS,
        };
        e.set_columns(columns);
        e
    }

    /// The terminal's new width (0: unknown); call [`Editor::redraw`] after.
    pub fn set_columns(&mut self, columns: usize) {
        self.columns = if columns == 0 {
            DEFAULT_COLUMNS
        } else {
            columns
        };
    }

    /// Handles keys as read from the terminal: appends to `screen` what to
    /// show and to `send` every line finished with Enter.
    pub fn keys(&mut self, input: &[u8], screen: &mut Vec<u8>, send: &mut Vec<u8>) -> Typed {
        for &b in input {
            let after_cr = std::mem::take(&mut self.after_cr);
            if self.escape != Escape::None {
                self.escape = next_escape(self.escape, b);
            } else if b >= 0x80 {
                self.utf8_byte(b, screen);
            } else {
                self.partial.clear(); // a character cut short by this key
                match b {
                    b'\r' => {
                        self.after_cr = true;
                        self.enter(screen, send);
                    }
                    b'\n' if after_cr => {}
                    b'\n' => self.enter(screen, send),
                    0x7f | 0x08 => self.erase(screen, |line| {
                        line.pop();
                    }),
                    0x17 => self.erase(screen, erase_word),
                    0x15 => self.erase(screen, |line| line.clear()),
                    0x04 if self.line.is_empty() => return Typed::Eof,
                    0x1b => self.escape = Escape::Esc,
                    0x20..=0x7e => self.insert(b as char, screen),
                    _ => {} // other control keys, TAB included
                }
            }
        }
        Typed::More
    }

    /// Prints every whole line in `data` above the typed line, then draws
    /// the typed line again; holds what follows the last `\n`.
    pub fn incoming(&mut self, data: &[u8], screen: &mut Vec<u8>) {
        let mut printed = false;
        let mut rest = data;
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            if self.held.is_empty() {
                print_line(&rest[..i], screen);
            } else {
                self.held.extend_from_slice(&rest[..i]);
                print_line(&self.held, screen);
                self.held.clear();
            }
            rest = &rest[i + 1..];
            printed = true;
        }
        self.held.extend_from_slice(rest);
        while self.held.len() > MAX_HELD {
            let cut = char_boundary(&self.held, MAX_HELD);
            print_line(&self.held[..cut], screen);
            self.held.drain(..cut);
            printed = true;
        }
        if printed {
            self.redraw_after_output(screen);
        }
    }

    /// The server has closed, or the client is leaving: prints what is held
    /// and leaves the cursor at the start of an empty row below the typed
    /// line (which stays on screen).
    pub fn leave(&mut self, screen: &mut Vec<u8>) {
        if !self.held.is_empty() {
            print_line(&self.held, screen);
            self.held.clear();
            self.redraw_after_output(screen);
        }
        if !self.line.is_empty() {
            screen.extend_from_slice(NEWLINE);
        }
    }

    /// Erases the typed line from the screen (before the process stops:
    /// the shell gets a clean row); [`Editor::redraw`] brings it back.
    pub fn hide(&self, screen: &mut Vec<u8>) {
        if !self.line.is_empty() {
            screen.extend_from_slice(CLEAR_ROW);
        }
    }

    /// Draws the typed line on the cursor's row, from column 0: as much of
    /// its end as fits.
    pub fn redraw(&self, screen: &mut Vec<u8>) {
        screen.extend_from_slice(CLEAR_ROW);
        screen.extend_from_slice(self.visible().as_bytes());
    }

    fn redraw_after_output(&self, screen: &mut Vec<u8>) {
        if !self.line.is_empty() {
            self.redraw(screen); // an empty line needs nothing: the row is empty
        }
    }

    /// The end of the typed line that fits in one row, with a column to
    /// spare for the cursor.
    fn visible(&self) -> &str {
        let room = self.columns.saturating_sub(1).max(1);
        let mut used = 0;
        let mut start = self.line.len();
        for (i, c) in self.line.char_indices().rev() {
            used += columns(c);
            if used > room {
                break;
            }
            start = i;
        }
        &self.line[start..]
    }

    /// The whole line and the cursor fit in one row (counting stops at
    /// the width, so a long line costs no more than a short one).
    fn fits(&self) -> bool {
        let mut used = 0;
        self.line.chars().all(|c| {
            used += columns(c);
            used < self.columns
        })
    }

    fn insert(&mut self, c: char, screen: &mut Vec<u8>) {
        if is_control(c) {
            return;
        }
        if self.line.len() + c.len_utf8() > MAX_INPUT {
            screen.push(BELL);
            return;
        }
        self.line.push(c);
        if self.fits() {
            let mut buf = [0u8; 4];
            screen.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        } else {
            self.redraw(screen); // scrolls the line sideways
        }
    }

    fn erase(&mut self, screen: &mut Vec<u8>, how: impl FnOnce(&mut String)) {
        if self.line.is_empty() {
            return;
        }
        how(&mut self.line);
        self.redraw(screen);
    }

    fn enter(&mut self, screen: &mut Vec<u8>, send: &mut Vec<u8>) {
        // The whole line stays in the scrollback, not just the tail shown.
        if !self.fits() {
            screen.extend_from_slice(CLEAR_ROW);
            screen.extend_from_slice(self.line.as_bytes());
        }
        screen.extend_from_slice(NEWLINE);
        send.extend_from_slice(self.line.as_bytes());
        send.push(b'\n');
        self.line.clear();
    }

    /// One byte of a multi-byte character; an invalid sequence is dropped.
    fn utf8_byte(&mut self, b: u8, screen: &mut Vec<u8>) {
        if !is_continuation(b) {
            self.partial.clear(); // a new character: the one before was cut short
        }
        self.partial.push(b);
        let want = match self.partial[0] {
            0xc2..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf4 => 4,
            _ => 0, // a stray continuation byte, or never valid
        };
        if want == 0 {
            self.partial.clear();
            return;
        }
        if self.partial.len() < want {
            return;
        }
        let c = std::str::from_utf8(&self.partial)
            .ok()
            .and_then(|s| s.chars().next());
        self.partial.clear();
        if let Some(c) = c {
            self.insert(c, screen);
        }
    }
}

fn next_escape(state: Escape, b: u8) -> Escape {
    match (state, b) {
        (Escape::Esc, b'[') => Escape::Csi,
        (Escape::Esc, b'O') => Escape::Ss3,
        (Escape::Esc, 0x1b) => Escape::Esc,
        (Escape::Csi, 0x20..=0x3f) => Escape::Csi,
        _ => Escape::None, // Alt+key, a final byte, or SS3's one byte
    }
}

/// Ctrl-W: the spaces before the cursor, then the word before them.
fn erase_word(line: &mut String) {
    let kept = line.trim_end_matches(' ').len();
    line.truncate(kept);
    let start = line.rfind(' ').map_or(0, |i| i + 1);
    line.truncate(start);
}

/// One line from the server on its own row, `\r` before the `\n` dropped.
fn print_line(line: &[u8], screen: &mut Vec<u8>) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    screen.extend_from_slice(CLEAR_ROW);
    scrub(line, screen);
    screen.extend_from_slice(NEWLINE);
}

/// Appends `bytes` as text safe to show: controls but TAB as `?`, what is
/// not UTF-8 as U+FFFD.
pub fn scrub(bytes: &[u8], out: &mut Vec<u8>) {
    let mut buf = [0u8; 4];
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            let c = if c != '\t' && is_control(c) { '?' } else { c };
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
        if !chunk.invalid().is_empty() {
            out.extend_from_slice(char::REPLACEMENT_CHARACTER.encode_utf8(&mut buf).as_bytes());
        }
    }
}

/// C0, DEL and C1.
fn is_control(c: char) -> bool {
    matches!(c, '\0'..='\x1f' | '\x7f'..='\u{9f}')
}

/// Where to cut `bytes` (longer than `max`) at most `max` bytes in without
/// splitting a UTF-8 character (at `max` when the bytes there are not UTF-8
/// anyway).
fn char_boundary(bytes: &[u8], max: usize) -> usize {
    (max.saturating_sub(3)..=max)
        .rev()
        .find(|&i| i > 0 && bytes.get(i).is_some_and(|&b| !is_continuation(b)))
        .unwrap_or(max)
}

/// A UTF-8 byte that continues a character (`10xxxxxx`).
fn is_continuation(b: u8) -> bool {
    b & 0xc0 == 0x80
}

/// Columns a character takes on a terminal: 0 for combining marks and
/// zero-width characters, 2 for East Asian wide ones and most emoji, 1
/// for the rest. The common ranges only, which is all scrolling needs: a
/// character counted wrong shifts the shown tail by a column.
fn columns(c: char) -> usize {
    match c as u32 {
        0x0300..=0x036f
        | 0x1ab0..=0x1aff
        | 0x1dc0..=0x1dff
        | 0x200b..=0x200f
        | 0x20d0..=0x20ff
        | 0xfe00..=0xfe0f
        | 0xfe20..=0xfe2f => 0,
        0x1100..=0x115f
        | 0x2e80..=0x303e
        | 0x3041..=0x33ff
        | 0x3400..=0x4dbf
        | 0x4e00..=0x9fff
        | 0xa000..=0xa4cf
        | 0xac00..=0xd7a3
        | 0xf900..=0xfaff
        | 0xfe30..=0xfe4f
        | 0xff00..=0xff60
        | 0xffe0..=0xffe6
        | 0x1f300..=0x1f64f
        | 0x1f900..=0x1f9ff
        | 0x20000..=0x3fffd => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` as keys; returns (screen, sent, typed).
    fn keys(e: &mut Editor, input: &[u8]) -> (Vec<u8>, Vec<u8>, Typed) {
        let (mut screen, mut send) = (Vec::new(), Vec::new());
        let typed = e.keys(input, &mut screen, &mut send);
        (screen, send, typed)
    }

    fn incoming(e: &mut Editor, data: &[u8]) -> Vec<u8> {
        let mut screen = Vec::new();
        e.incoming(data, &mut screen);
        screen
    }

    fn typed(input: &[u8]) -> Editor {
        let mut e = Editor::new(80);
        keys(&mut e, input);
        e
    }

    mod typing {
        use super::*;

        #[test]
        fn printable_keys_are_added_and_echoed() {
            let mut e = Editor::new(80);
            assert_eq!(
                keys(&mut e, b"hi there"),
                (b"hi there".to_vec(), vec![], Typed::More)
            );
            assert_eq!(e.line, "hi there");
        }

        #[test]
        fn utf8_split_across_reads_is_one_character() {
            let mut e = Editor::new(80);
            let (screen, _, _) = keys(&mut e, b"\xc3");
            assert!(screen.is_empty());
            let (screen, _, _) = keys(&mut e, b"\xa9\xe2\x82");
            assert_eq!(screen, "é".as_bytes());
            let (screen, _, _) = keys(&mut e, b"\xac");
            assert_eq!(screen, "€".as_bytes());
            assert_eq!(e.line, "é€");
        }

        #[test]
        fn bytes_that_are_not_utf8_are_dropped() {
            // A stray continuation byte, a lead cut short by ASCII, by
            // another lead, and bytes never valid.
            let mut e = Editor::new(80);
            let (screen, _, _) = keys(&mut e, b"\x80a\xc3b\xe2\xc3\xa9\xff\xc0\xafc");
            assert_eq!(screen, "abéc".as_bytes());
            assert_eq!(e.line, "abéc");
        }

        #[test]
        fn control_keys_and_escape_sequences_are_swallowed() {
            // TAB, Ctrl-A, arrows (CSI and SS3), Ctrl-Right, F1, Alt+x,
            // Delete (CSI 3~), ESC ESC [ A, and a C1 character typed as UTF-8.
            let input = b"a\t\x01\x1b[A\x1bOB\x1b[1;5C\x1bOP\x1bxb\x1b[3~\x1b\x1b[Dc\xc2\x9bd";
            let mut e = Editor::new(80);
            let (screen, send, typed) = keys(&mut e, input);
            assert_eq!(
                (screen, send, typed),
                (b"abcd".to_vec(), vec![], Typed::More)
            );
        }

        #[test]
        fn a_key_past_max_input_rings_the_bell() {
            let mut e = Editor::new(80);
            keys(&mut e, &vec![b'x'; MAX_INPUT - 1]);
            let (screen, _, _) = keys(&mut e, "é".as_bytes()); // 2 bytes: 1 too many
            assert_eq!(screen, [BELL]);
            let (screen, _, _) = keys(&mut e, b"yz");
            assert!(screen.ends_with(b"y\x07"), "y fits, z rings");
            assert_eq!(e.line.len(), MAX_INPUT);
            assert!(e.line.ends_with("xxy"));
        }
    }

    mod editing {
        use super::*;

        #[test]
        fn backspace_and_ctrl_h_remove_the_last_character() {
            let mut e = typed("naïve".as_bytes());
            let (screen, _, _) = keys(&mut e, b"\x7f");
            assert_eq!(screen, "\r\x1b[Knaïv".as_bytes());
            assert_eq!(e.line, "naïv");
            keys(&mut e, b"\x08\x08");
            assert_eq!(e.line, "na");
        }

        #[test]
        fn backspace_on_an_empty_line_draws_nothing() {
            let mut e = Editor::new(80);
            assert_eq!(
                keys(&mut e, b"\x7f\x08\x15\x17"),
                (vec![], vec![], Typed::More)
            );
        }

        #[test]
        fn ctrl_u_clears_the_line() {
            let mut e = typed(b"/msg bob hi");
            let (screen, _, _) = keys(&mut e, b"\x15");
            assert_eq!(screen, b"\r\x1b[K");
            assert_eq!(e.line, "");
        }

        #[test]
        fn ctrl_w_removes_the_last_word_and_the_spaces_after_it() {
            let mut e = typed(b"/msg bob hi  ");
            let (screen, _, _) = keys(&mut e, b"\x17");
            assert_eq!(screen, b"\r\x1b[K/msg bob ");
            keys(&mut e, b"\x17\x17");
            assert_eq!(e.line, "");
        }
    }

    mod enter {
        use super::*;

        #[test]
        fn enter_sends_the_line_and_moves_to_a_new_row() {
            let mut e = typed(b"hello");
            assert_eq!(
                keys(&mut e, b"\r"),
                (b"\r\n".to_vec(), b"hello\n".to_vec(), Typed::More)
            );
            assert_eq!(e.line, "");
        }

        #[test]
        fn cr_lf_is_one_enter_and_lf_alone_is_one_too() {
            let mut e = Editor::new(80);
            let (_, send, _) = keys(&mut e, b"a\r\nb\nc\r\rd\n\n");
            assert_eq!(send, b"a\nb\nc\n\nd\n\n");
        }

        #[test]
        fn ctrl_d_on_an_empty_line_is_the_end_of_input() {
            let mut e = Editor::new(80);
            let (screen, send, typed) = keys(&mut e, b"last\r\x04after\r");
            assert_eq!(typed, Typed::Eof);
            assert_eq!(send, b"last\n", "keys after Ctrl-D are dropped");
            assert_eq!(screen, b"last\r\n");
        }

        #[test]
        fn ctrl_d_with_text_typed_is_ignored() {
            let mut e = Editor::new(80);
            assert_eq!(
                keys(&mut e, b"ab\x04"),
                (b"ab".to_vec(), vec![], Typed::More)
            );
        }
    }

    mod arriving {
        use super::*;

        #[test]
        fn a_line_prints_above_the_typed_line_which_is_drawn_again() {
            let mut e = typed(b"hel");
            let screen = incoming(&mut e, b"MSG bob hi\n");
            assert_eq!(screen, b"\r\x1b[KMSG bob hi\r\n\r\x1b[Khel");
        }

        #[test]
        fn lines_in_one_read_are_drawn_under_once() {
            let mut e = typed(b"x");
            let screen = incoming(&mut e, b"A\r\nB\n");
            assert_eq!(screen, b"\r\x1b[KA\r\n\r\x1b[KB\r\n\r\x1b[Kx");
        }

        #[test]
        fn with_nothing_typed_nothing_is_drawn_under() {
            let mut e = Editor::new(80);
            assert_eq!(
                incoming(&mut e, b"HELLO guest1 lobby\n"),
                b"\r\x1b[KHELLO guest1 lobby\r\n"
            );
        }

        #[test]
        fn a_line_without_its_newline_is_held_until_it_comes() {
            let mut e = typed(b"t");
            assert_eq!(incoming(&mut e, b"MSG a"), b"");
            assert_eq!(incoming(&mut e, b" b"), b"");
            let screen = incoming(&mut e, b"c\nMSG d");
            assert_eq!(screen, b"\r\x1b[KMSG a bc\r\n\r\x1b[Kt");
            let mut screen = Vec::new();
            e.leave(&mut screen);
            assert_eq!(screen, b"\r\x1b[KMSG d\r\n\r\x1b[Kt\r\n");
        }

        #[test]
        fn leaving_with_nothing_held_or_typed_draws_nothing() {
            let mut screen = Vec::new();
            Editor::new(80).leave(&mut screen);
            assert!(screen.is_empty());
        }

        #[test]
        fn a_line_longer_than_max_held_is_printed_in_pieces() {
            let mut e = Editor::new(80);
            let mut data = vec![b'a'; MAX_HELD - 1];
            data.extend_from_slice("é".as_bytes()); // straddles the cut
            data.extend_from_slice(b"tail");
            let screen = incoming(&mut e, &data);
            let mut want = b"\r\x1b[K".to_vec();
            want.extend(vec![b'a'; MAX_HELD - 1]);
            want.extend_from_slice(b"\r\n");
            assert!(screen == want, "the first piece, cut before the é");
            assert_eq!(e.held, "étail".as_bytes());
        }

        #[test]
        fn held_bytes_never_pass_max_held() {
            let mut e = Editor::new(80);
            for _ in 0..5 {
                incoming(&mut e, &vec![b'z'; MAX_HELD / 2 + 1]);
                assert!(e.held.len() <= MAX_HELD);
            }
        }
    }

    mod scrubbing {
        use super::*;

        fn shown(bytes: &[u8]) -> String {
            let mut out = Vec::new();
            scrub(bytes, &mut out);
            String::from_utf8(out).unwrap()
        }

        #[test]
        fn c0_del_and_c1_controls_become_question_marks() {
            assert_eq!(shown(b"\x1b[31mred\x07\x00\x7f"), "?[31mred???");
            assert_eq!(shown("\u{9b}2J\u{85}\u{80}".as_bytes()), "?2J??");
        }

        #[test]
        fn tab_and_text_are_kept() {
            assert_eq!(shown("a\tb — 日本 é".as_bytes()), "a\tb — 日本 é");
        }

        #[test]
        fn bytes_that_are_not_utf8_become_replacement_characters() {
            // A lone 0x9b is CSI to a terminal in an 8-bit mode.
            assert_eq!(shown(b"a\x9bb\xff\xc3"), "a\u{fffd}b\u{fffd}\u{fffd}");
        }

        #[test]
        fn a_line_from_the_server_is_scrubbed_and_its_cr_dropped() {
            let mut e = Editor::new(80);
            let screen = incoming(&mut e, b"\x1b]0;title\x07x\r\r\n");
            assert_eq!(screen, b"\r\x1b[K?]0;title?x?\r\n");
        }
    }

    mod scrolling {
        use super::*;

        #[test]
        fn a_line_wider_than_the_terminal_shows_its_tail() {
            let mut e = Editor::new(10);
            let (screen, _, _) = keys(&mut e, b"123456789");
            assert_eq!(screen, b"123456789", "9 columns and the cursor fit");
            let (screen, _, _) = keys(&mut e, b"a");
            assert_eq!(screen, b"\r\x1b[K23456789a");
            let (screen, _, _) = keys(&mut e, b"\x7f");
            assert_eq!(screen, b"\r\x1b[K123456789");
        }

        #[test]
        fn enter_leaves_the_whole_line_in_the_scrollback() {
            let mut e = Editor::new(10);
            keys(&mut e, b"0123456789abc");
            let (screen, send, _) = keys(&mut e, b"\r");
            assert_eq!(screen, b"\r\x1b[K0123456789abc\r\n");
            assert_eq!(send, b"0123456789abc\n");
        }

        #[test]
        fn wide_characters_take_two_columns() {
            let mut e = Editor::new(6);
            keys(&mut e, "日本語".as_bytes());
            assert_eq!(e.visible(), "本語", "6 columns do not fit with the cursor");
            let mut screen = Vec::new();
            e.set_columns(7);
            e.redraw(&mut screen);
            assert_eq!(screen, "\r\x1b[K日本語".as_bytes());
        }

        #[test]
        fn hide_then_redraw_brings_the_line_back() {
            let e = typed(b"draft");
            let mut screen = Vec::new();
            e.hide(&mut screen);
            e.redraw(&mut screen);
            assert_eq!(screen, b"\r\x1b[K\r\x1b[Kdraft");
        }

        #[test]
        fn an_unknown_width_counts_as_80() {
            let mut e = Editor::new(0);
            keys(&mut e, &[b'w'; 79]);
            let (screen, _, _) = keys(&mut e, b"v");
            assert!(screen.starts_with(b"\r\x1b[K"), "the 80th column scrolls");
            assert_eq!(e.visible().len(), 79);
        }
    }
}
