//! An incremental reader of `text/event-stream` bytes: feed it chunks as
//! they arrive, get back whole events and comments. What an event means is
//! up to the mode reading it: `Received` here for the streams mode,
//! `crate::sale::events` for the sale.

use serde::Deserialize;

/// A line longer than this is not an event this server sends: give up on
/// the stream rather than buffer without bound.
const MAX_LINE_BYTES: usize = 64 * 1024;

/// One whole thing read from the stream, not yet interpreted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseItem {
    /// An event: its name (`message` when it had none) and its data lines.
    Event { name: String, data: String },
    /// A comment line (`: heartbeat`), trimmed.
    Comment(String),
}

/// One thing read from the stream, as the streams mode sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// `event: position` with its parsed data.
    Position { position: u64, waiting: u64 },
    /// `event: admitted`; `with_token` when the data carried a non-empty token.
    Admitted { with_token: bool },
    /// `event: left`: the user is neither waiting nor admitted any more.
    Left,
    /// An event this tool does not know, or one whose data did not parse.
    Other(String),
    /// A comment line (`: heartbeat`).
    Comment(String),
}

#[derive(Debug, Deserialize)]
struct PositionData {
    position: u64,
    waiting: u64,
}

#[derive(Debug, Deserialize)]
struct AdmittedData {
    token: String,
}

/// Lines are split on `\n` (a trailing `\r` is dropped); a blank line ends
/// an event, as the SSE specification says.
#[derive(Debug, Default)]
pub struct FrameReader {
    partial: Vec<u8>,
    event: Option<String>,
    data: Option<String>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct LineTooLong;

impl FrameReader {
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<SseItem>) -> Result<(), LineTooLong> {
        let mut rest = chunk;
        while let Some(newline) = rest.iter().position(|&b| b == b'\n') {
            let (head, tail) = rest.split_at(newline);
            rest = &tail[1..];
            let line = if self.partial.is_empty() {
                head.to_vec()
            } else {
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(head);
                line
            };
            self.line(&line, out);
        }
        self.partial.extend_from_slice(rest);
        if self.partial.len() > MAX_LINE_BYTES {
            return Err(LineTooLong);
        }
        Ok(())
    }

    fn line(&mut self, raw: &[u8], out: &mut Vec<SseItem>) {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let line = String::from_utf8_lossy(raw);
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if let Some(comment) = line.strip_prefix(':') {
            out.push(SseItem::Comment(comment.trim().to_owned()));
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_ref(), ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            _ => {} // id, retry: not used by this server
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseItem>) {
        let event = self.event.take();
        let data = self.data.take();
        if event.is_none() && data.is_none() {
            return;
        }
        out.push(SseItem::Event {
            name: event.unwrap_or_else(|| "message".to_owned()),
            data: data.unwrap_or_default(),
        });
    }
}

impl From<SseItem> for Received {
    fn from(item: SseItem) -> Self {
        let (name, data) = match item {
            SseItem::Comment(text) => return Received::Comment(text),
            SseItem::Event { name, data } => (name, data),
        };
        match name.as_str() {
            "position" => match serde_json::from_str::<PositionData>(&data) {
                Ok(p) => Received::Position {
                    position: p.position,
                    waiting: p.waiting,
                },
                Err(_) => Received::Other(name),
            },
            "admitted" => Received::Admitted {
                with_token: serde_json::from_str::<AdmittedData>(&data)
                    .is_ok_and(|a| !a.token.is_empty()),
            },
            "left" => Received::Left,
            _ => Received::Other(name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(chunks: &[&[u8]]) -> Vec<Received> {
        let mut reader = FrameReader::default();
        let mut out = Vec::new();
        for chunk in chunks {
            reader.feed(chunk, &mut out).unwrap();
        }
        out.into_iter().map(Received::from).collect()
    }

    #[test]
    fn events_split_across_chunks_are_read_whole() {
        let stream: &[u8] = b"event: position\ndata: {\"position\":3,\"waiting\":9,\"estimatedWaitSecs\":60}\n\n: heartbeat\n\nevent: admitted\ndata: {\"token\":\"ab\",\"expiresAt\":\"2025-01-01T00:00:00Z\"}\n\n";
        let whole = read_all(&[stream]);
        assert_eq!(
            whole,
            vec![
                Received::Position {
                    position: 3,
                    waiting: 9
                },
                Received::Comment("heartbeat".into()),
                Received::Admitted { with_token: true },
            ]
        );
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(read_all(&bytes), whole);
        let (a, b) = stream.split_at(17);
        assert_eq!(read_all(&[a, b]), whole);
    }

    #[test]
    fn crlf_lines_and_unknown_events_are_tolerated() {
        let out = read_all(&[b"event: left\r\ndata: {}\r\n\r\nevent: other\ndata: x\n\n"]);
        assert_eq!(out, vec![Received::Left, Received::Other("other".into())]);
    }

    #[test]
    fn an_admitted_event_without_a_token_is_marked() {
        let out = read_all(&[b"event: admitted\ndata: {}\n\n"]);
        assert_eq!(out, vec![Received::Admitted { with_token: false }]);
    }

    #[test]
    fn an_endless_line_is_refused() {
        let mut reader = FrameReader::default();
        let mut out = Vec::new();
        let junk = vec![b'x'; MAX_LINE_BYTES + 1];
        assert_eq!(reader.feed(&junk, &mut out), Err(LineTooLong));
    }
}
