//! Parsing one client line into a [`Command`]. Pure; see PROTOCOL.md §2.

/// What a client line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Command<'a> {
    /// Text for the room (a leading `//` already reduced to `/`).
    Say(&'a str),
    Nick(&'a str),
    Msg(&'a str, &'a str),
    Join(&'a str),
    Who,
    Rooms,
    Ping(Option<&'a str>),
    Pong,
    Stats,
    Help,
    Quit(Option<&'a str>),
    /// A known command with the wrong arguments.
    BadArgs,
    /// `/something` that is not a command: the command as sent, slash
    /// included.
    Unknown(&'a str),
}

/// Parses a non-empty line. Command names are case-insensitive; arguments
/// are separated by spaces; the text of `/msg` and `/quit` is everything
/// after the separating space, kept as sent.
pub fn parse(line: &str) -> Command<'_> {
    let Some(body) = line.strip_prefix('/') else {
        return Command::Say(line);
    };
    if body.starts_with('/') {
        return Command::Say(body);
    }
    let (name, rest) = match body.split_once(' ') {
        Some((n, r)) => (n, r),
        None => (body, ""),
    };
    let args: Vec<&str> = rest.split(' ').filter(|a| !a.is_empty()).collect();
    let one = || if args.len() == 1 { Some(args[0]) } else { None };
    let lower = name.to_ascii_lowercase();
    match lower.as_str() {
        "nick" => one().map_or(Command::BadArgs, Command::Nick),
        "join" => one().map_or(Command::BadArgs, Command::Join),
        "msg" => match rest.trim_start_matches(' ').split_once(' ') {
            Some((to, text)) if !to.is_empty() && !text.is_empty() => Command::Msg(to, text),
            _ => Command::BadArgs,
        },
        "who" if args.is_empty() => Command::Who,
        "rooms" if args.is_empty() => Command::Rooms,
        "stats" if args.is_empty() => Command::Stats,
        "help" => Command::Help,
        "ping" if args.len() <= 1 => Command::Ping(args.first().copied()),
        "pong" => Command::Pong,
        "quit" => Command::Quit(Some(rest).filter(|r| !r.is_empty())),
        "who" | "rooms" | "stats" | "ping" => Command::BadArgs,
        _ => Command::Unknown(&line[..=name.len()]),
    }
}

/// True for a valid nick or room name: 1 to 32 of `A-Z a-z 0-9 _ -`.
pub fn valid_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_escape() {
        assert_eq!(parse("hello world"), Command::Say("hello world"));
        assert_eq!(parse("//slash"), Command::Say("/slash"));
        assert_eq!(parse("// "), Command::Say("/ "));
    }

    #[test]
    fn commands_are_case_insensitive() {
        assert_eq!(parse("/NICK bob"), Command::Nick("bob"));
        assert_eq!(parse("/Who"), Command::Who);
        assert_eq!(parse("/JOIN x"), Command::Join("x"));
    }

    #[test]
    fn arguments() {
        assert_eq!(parse("/nick"), Command::BadArgs);
        assert_eq!(parse("/nick a b"), Command::BadArgs);
        assert_eq!(
            parse("/msg bob hi  there"),
            Command::Msg("bob", "hi  there")
        );
        assert_eq!(parse("/msg bob"), Command::BadArgs);
        assert_eq!(parse("/msg bob "), Command::BadArgs);
        assert_eq!(parse("/ping"), Command::Ping(None));
        assert_eq!(parse("/ping t1"), Command::Ping(Some("t1")));
        assert_eq!(parse("/ping a b"), Command::BadArgs);
        assert_eq!(parse("/quit"), Command::Quit(None));
        assert_eq!(parse("/quit gone home"), Command::Quit(Some("gone home")));
        assert_eq!(parse("/who x"), Command::BadArgs);
        assert_eq!(parse("/frobnicate x"), Command::Unknown("/frobnicate"));
        assert_eq!(parse("/"), Command::Unknown("/"));
    }

    #[test]
    fn names() {
        assert!(valid_name("a"));
        assert!(valid_name("Guest_1-x"));
        assert!(valid_name(&"x".repeat(32)));
        assert!(!valid_name(&"x".repeat(33)));
        assert!(!valid_name(""));
        assert!(!valid_name("a b"));
        assert!(!valid_name("é"));
        assert!(!valid_name("a.b"));
    }
}
