//! String operands compiled once: `wildcard` globs and the case-insensitive
//! strings behind `equals-ignore-case` and its `prefix`/`suffix` forms.

/// A compiled `wildcard` operand.
///
/// The operand is cut at each unescaped `*` into literal pieces: the first
/// must begin the value, the last must end it and the ones between must
/// appear in order, without overlapping. With only `*` (no `?` or classes),
/// taking the leftmost occurrence of each middle piece is always optimal, so
/// matching is a few substring searches and never backtracks.
#[derive(Debug, Clone)]
pub(super) struct Wildcard {
    /// One more piece than there are wildcards; never empty.
    pieces: Box<[Box<str>]>,
}

impl Wildcard {
    /// Unescapes `\*` and `\\`, refusing what event-ruler refuses: `**` and a
    /// backslash before anything else. Positions in the messages are counted
    /// as event-ruler counts them (bytes, the operand's opening quote being 0).
    pub(super) fn parse(operand: &str) -> Result<Self, String> {
        let mut pieces = Vec::new();
        let mut piece = String::new();
        let mut chars = operand.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            match c {
                '*' => {
                    if matches!(chars.peek(), Some((_, '*'))) {
                        return Err(format!("Consecutive wildcard characters at pos {}", at + 1));
                    }
                    pieces.push(std::mem::take(&mut piece).into_boxed_str());
                }
                '\\' => match chars.next() {
                    Some((_, escaped @ ('*' | '\\'))) => piece.push(escaped),
                    _ => return Err(format!("Invalid escape character at pos {}", at + 1)),
                },
                _ => piece.push(c),
            }
        }
        pieces.push(piece.into_boxed_str());
        Ok(Self {
            pieces: pieces.into_boxed_slice(),
        })
    }

    /// The literal pieces between the wildcards, unescaped.
    pub(super) fn pieces(&self) -> &[Box<str>] {
        &self.pieces
    }

    pub(super) fn matches(&self, value: &str) -> bool {
        match &*self.pieces {
            [] => false,
            [literal] => value == &**literal,
            [first, middle @ .., last] => {
                if value.len() < first.len() + last.len()
                    || !value.starts_with(&**first)
                    || !value.ends_with(&**last)
                {
                    return false;
                }
                // Both ends fall on character boundaries (they end or start a
                // literal that matched), so `get` only fails on overlap.
                let Some(mut rest) = value.get(first.len()..value.len() - last.len()) else {
                    return false;
                };
                for piece in middle {
                    match rest.find(&**piece) {
                        Some(at) => rest = &rest[at + piece.len()..],
                        None => return false,
                    }
                }
                true
            }
        }
    }
}

/// A compiled case-insensitive string.
///
/// event-ruler lets each character of the operand match its lower-case or its
/// upper-case form (`ß` matches `ß` and `SS`), which no single case folding of
/// both sides reproduces, so non-ASCII operands keep, per character, the
/// spellings an event may use there. The character itself is always one of
/// them, so a title-case letter such as `ǅ` also matches itself.
#[derive(Debug, Clone)]
pub(super) enum IgnoreCase {
    /// An all-ASCII operand, compared with [`u8::eq_ignore_ascii_case`]:
    /// an ASCII letter's two forms are the only spellings, both one byte.
    Ascii(Box<str>),
    /// Any other operand: the spellings of each character, and the shortest
    /// and longest byte length a match can have.
    Unicode {
        spellings: Box<[Box<[Box<str>]>]>,
        min_len: usize,
        max_len: usize,
    },
}

impl IgnoreCase {
    pub(super) fn new(operand: &str) -> Self {
        if operand.is_ascii() {
            return Self::Ascii(operand.into());
        }
        let spellings: Box<[Box<[Box<str>]>]> = operand
            .chars()
            .map(|c| {
                let mut forms: Vec<Box<str>> = vec![c.to_string().into()];
                for form in [
                    c.to_lowercase().collect::<String>(),
                    c.to_uppercase().collect::<String>(),
                ] {
                    if !forms.iter().any(|known| **known == *form) {
                        forms.push(form.into());
                    }
                }
                forms.into_boxed_slice()
            })
            .collect();
        let bound = |pick: fn(usize, usize) -> usize| {
            spellings
                .iter()
                .map(|forms| forms.iter().map(|f| f.len()).reduce(pick).unwrap_or(0))
                .sum()
        };
        let (min_len, max_len) = (bound(usize::min), bound(usize::max));
        Self::Unicode {
            spellings,
            min_len,
            max_len,
        }
    }

    /// The whole value matches.
    pub(super) fn equals(&self, value: &str) -> bool {
        match self {
            Self::Ascii(operand) => value.as_bytes().eq_ignore_ascii_case(operand.as_bytes()),
            Self::Unicode { .. } => self.ends_from(value, 0, |end| end == value.len()),
        }
    }

    /// The value begins with a match.
    pub(super) fn is_prefix_of(&self, value: &str) -> bool {
        match self {
            Self::Ascii(operand) => value
                .as_bytes()
                .get(..operand.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(operand.as_bytes())),
            Self::Unicode { .. } => self.ends_from(value, 0, |_| true),
        }
    }

    /// The value ends with a match.
    pub(super) fn is_suffix_of(&self, value: &str) -> bool {
        match self {
            Self::Ascii(operand) => value
                .len()
                .checked_sub(operand.len())
                .and_then(|start| value.as_bytes().get(start..))
                .is_some_and(|tail| tail.eq_ignore_ascii_case(operand.as_bytes())),
            Self::Unicode {
                min_len, max_len, ..
            } => {
                // A match is between min_len and max_len bytes long, so only
                // the character boundaries in that window can start one.
                let earliest = value.len().saturating_sub(*max_len);
                let Some(latest) = value.len().checked_sub(*min_len) else {
                    return false;
                };
                (earliest..=latest)
                    .filter(|&start| value.is_char_boundary(start))
                    .any(|start| self.ends_from(value, start, |end| end == value.len()))
            }
        }
    }

    /// Walks the operand's characters from byte `start` of `value`, keeping
    /// every offset some choice of spellings reaches, and asks `accept`
    /// about the offsets where a whole match can end.
    fn ends_from(&self, value: &str, start: usize, accept: impl Fn(usize) -> bool) -> bool {
        let Self::Unicode { spellings, .. } = self else {
            return false;
        };
        let value = value.as_bytes();
        let mut offsets = vec![start];
        let mut next = Vec::new();
        for forms in spellings.iter() {
            next.clear();
            for &offset in &offsets {
                let Some(rest) = value.get(offset..) else {
                    continue;
                };
                for form in forms.iter() {
                    let end = offset + form.len();
                    if rest.starts_with(form.as_bytes()) && !next.contains(&end) {
                        next.push(end);
                    }
                }
            }
            if next.is_empty() {
                return false;
            }
            std::mem::swap(&mut offsets, &mut next);
        }
        offsets.into_iter().any(accept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wildcard(operand: &str) -> Wildcard {
        Wildcard::parse(operand).unwrap()
    }

    #[test]
    fn wildcard_pieces_must_not_overlap() {
        assert!(wildcard("a*a").matches("aa"));
        assert!(wildcard("a*a").matches("aXa"));
        assert!(!wildcard("a*a").matches("a"));
        assert!(!wildcard("ab*ba").matches("aba"));
    }

    #[test]
    fn wildcard_middle_pieces_are_found_in_order() {
        let w = wildcard("*/lib/*.jar");
        assert!(w.matches("/opt/lib/x.jar"));
        assert!(w.matches("a/lib/b/lib/c.jar"));
        assert!(!w.matches("/lib.jar"));
        assert!(wildcard("*a*b*").matches("xxaxxbxx"));
        assert!(!wildcard("*a*b*").matches("xxbxxaxx"));
    }

    #[test]
    fn wildcard_without_star_is_exact_and_empty_matches_only_empty() {
        assert!(wildcard("abc").matches("abc"));
        assert!(!wildcard("abc").matches("abcd"));
        assert!(wildcard("").matches(""));
        assert!(!wildcard("").matches("x"));
        assert!(wildcard("*").matches(""));
    }

    #[test]
    fn wildcard_escapes_are_literal() {
        assert!(wildcard(r"a\*b").matches("a*b"));
        assert!(!wildcard(r"a\*b").matches("axb"));
        assert!(wildcard(r"a\\*").matches(r"a\anything"));
        assert!(wildcard(r"\**").matches("*x"));
        assert!(!wildcard(r"\**").matches("x*"));
    }

    #[test]
    fn wildcard_refusals_report_event_ruler_positions() {
        let err = Wildcard::parse("arn:aws:events:us-east-1:**:event-bus/*").unwrap_err();
        assert_eq!(err, "Consecutive wildcard characters at pos 26");
        assert_eq!(
            Wildcard::parse(r"a\b").unwrap_err(),
            "Invalid escape character at pos 2"
        );
        assert_eq!(
            Wildcard::parse("ab\\").unwrap_err(),
            "Invalid escape character at pos 3"
        );
        // An escaped star followed by a wildcard is not two wildcards.
        assert!(Wildcard::parse(r"\**").is_ok());
        assert!(Wildcard::parse(r"\\**").is_err());
    }

    #[test]
    fn wildcard_handles_multibyte_text() {
        assert!(wildcard("é*ü").matches("éßü"));
        assert!(wildcard("*🚀").matches("go 🚀"));
        assert!(!wildcard("é*é").matches("é"));
    }

    #[test]
    fn ascii_ignore_case() {
        let e = IgnoreCase::new("EventB");
        assert!(matches!(e, IgnoreCase::Ascii(_)));
        assert!(e.equals("eventb"));
        assert!(!e.equals("eventbr"));
        assert!(e.is_prefix_of("EVENTBRIDGE"));
        assert!(!e.is_prefix_of("Event"));
        assert!(IgnoreCase::new(".png").is_suffix_of("IMAGE.PNG"));
        assert!(!IgnoreCase::new(".png").is_suffix_of("png"));
        // A non-ASCII byte never equals an ASCII operand byte.
        assert!(!IgnoreCase::new("k").equals("\u{212a}"));
    }

    #[test]
    fn unicode_ignore_case_uses_each_characters_spellings() {
        let sharp = IgnoreCase::new("straße");
        assert!(sharp.equals("STRASSE"));
        assert!(sharp.equals("Straße"));
        assert!(!sharp.equals("STRASE"));
        let e = IgnoreCase::new("été");
        assert!(e.equals("ÉTÉ"));
        assert!(e.is_prefix_of("ÉTÉS"));
        assert!(e.is_suffix_of("un ÉtÉ"));
        assert!(!e.is_suffix_of("ÉTÉS"));
        // Title case matches itself as well as its two forms.
        let title = IgnoreCase::new("\u{1c5}");
        assert!(title.equals("\u{1c5}") && title.equals("\u{1c6}") && title.equals("\u{1c4}"));
    }

    #[test]
    fn unicode_ignore_case_with_length_changing_forms() {
        // Lower and upper forms of these differ in UTF-8 length.
        let e = IgnoreCase::new("\u{2c65}x");
        assert!(e.equals("\u{23a}x") && e.equals("\u{2c65}X"));
        assert!(e.is_suffix_of("a\u{23a}X"));
        assert!(!e.is_suffix_of("X"));
        assert!(IgnoreCase::new("\u{3b0}").equals("\u{3a5}\u{308}\u{301}"));
    }
}
