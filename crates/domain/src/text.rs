//! What a client's text field may contain. Control characters (C0, DEL and
//! C1: `char::is_control`) are refused in every field before anything else
//! looks at it: PostgreSQL refuses NUL outright, and the others corrupt logs
//! and displays. Only free text (a concert's description) keeps tab and
//! line breaks.

/// Which control characters a field keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    /// One line: no control character at all (tab and newline included).
    Line,
    /// Free text: tab, line feed and carriage return, nothing else.
    Paragraphs,
}

impl TextKind {
    fn allows(self, c: char) -> bool {
        match self {
            TextKind::Line => false,
            TextKind::Paragraphs => matches!(c, '\t' | '\n' | '\r'),
        }
    }
}

/// A control character in a client's text field: names the field (as the
/// client spelled it), the character and where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} must not contain control characters{}: found U+{:04X} at character {}", allowed(*.kind), u32::from(*.found), .position + 1)]
pub struct ControlCharacter {
    pub field: String,
    pub kind: TextKind,
    pub found: char,
    /// 0-based, in characters.
    pub position: usize,
}

fn allowed(kind: TextKind) -> &'static str {
    match kind {
        TextKind::Line => "",
        TextKind::Paragraphs => " other than tab and line breaks",
    }
}

/// `Ok(())` when `value` has no control character that `kind` refuses.
pub fn refuse_control_characters(
    field: impl Into<String>,
    value: &str,
    kind: TextKind,
) -> Result<(), ControlCharacter> {
    match value
        .chars()
        .enumerate()
        .find(|(_, c)| c.is_control() && !kind.allows(*c))
    {
        None => Ok(()),
        Some((position, found)) => Err(ControlCharacter {
            field: field.into(),
            kind,
            found,
            position,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_c0_c1_and_del_is_refused_in_a_line() {
        let controls = (0u32..0x20).chain(0x7f..0xa0).filter_map(char::from_u32);
        for c in controls {
            let e =
                refuse_control_characters("title", &format!("a{c}b"), TextKind::Line).unwrap_err();
            assert_eq!((e.found, e.position), (c, 1));
            assert!(e.to_string().starts_with("title must not contain"), "{e}");
        }
        assert!(refuse_control_characters("title", "Zoë – live ✓", TextKind::Line).is_ok());
    }

    #[test]
    fn paragraphs_keep_tab_and_line_breaks_only() {
        assert!(refuse_control_characters("d", "a\tb\r\nc", TextKind::Paragraphs).is_ok());
        let e = refuse_control_characters("d", "a\nb\0", TextKind::Paragraphs).unwrap_err();
        assert_eq!(
            e.to_string(),
            "d must not contain control characters other than tab and line breaks: found U+0000 at character 4"
        );
    }
}
