//! Asterisk Manager Interface framing: `Key: Value` lines ending in CRLF,
//! one blank line after each message. The parser is fed whatever a read
//! returned (half a line, three messages and a bit) and gives back only
//! whole messages; nothing it is fed can make it panic or grow without
//! bound, because AMI is a plain TCP stream and a misbehaving peer or a
//! truncated transcript must cost a log line, not the bridge.

/// A line longer than this is junk (AMI's longest fields are channel
/// variables of a few hundred bytes): it is dropped, so a peer that never
/// sends a newline cannot make the buffer grow forever.
pub const MAX_LINE: usize = 16 * 1024;
/// A message with more fields than this is cut off (the rest is dropped).
pub const MAX_FIELDS: usize = 256;

/// One AMI message: an event (`Event: …`) or a response (`Response: …`),
/// its fields in the order they came.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    pub fields: Vec<(String, String)>,
}

impl Message {
    /// The first field named `key` (AMI's keys are case-insensitive).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    /// The event name, when this is an event.
    pub fn event(&self) -> Option<&str> {
        self.get("Event")
    }

    /// Builds a message from `(key, value)` pairs (tests, the Login action).
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Message {
        Message {
            fields: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// The wire form: `Key: Value\r\n` lines and the blank line.
    pub fn to_wire(&self) -> String {
        let mut out = String::new();
        for (k, v) in &self.fields {
            out.push_str(k);
            out.push_str(": ");
            out.push_str(v);
            out.push_str("\r\n");
        }
        out.push_str("\r\n");
        out
    }
}

/// Incremental parser of an AMI byte stream.
#[derive(Debug, Default)]
pub struct Parser {
    /// Bytes of a line not yet ended.
    partial: Vec<u8>,
    /// True while the rest of an over-long line is being thrown away.
    discarding: bool,
    current: Message,
    /// The banner (`Asterisk Call Manager/9.0.0`), once seen.
    pub greeting: Option<String>,
    /// Lines that were not `Key: Value` (counted, logged by the caller).
    pub malformed: u64,
}

impl Parser {
    pub fn new() -> Parser {
        Parser::default()
    }

    /// Feeds bytes; returns the messages they completed.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Message> {
        let mut out = Vec::new();
        let mut rest = bytes;
        while let Some(at) = rest.iter().position(|&b| b == b'\n') {
            let (line, tail) = rest.split_at(at);
            rest = &tail[1..];
            if self.discarding {
                // The end of an over-long line: drop it, start afresh.
                self.discarding = false;
                self.partial.clear();
                continue;
            }
            if self.partial.len() + line.len() > MAX_LINE {
                self.partial.clear();
                self.malformed += 1;
                continue;
            }
            self.partial.extend_from_slice(line);
            let whole = std::mem::take(&mut self.partial);
            self.line(&whole, &mut out);
        }
        if !self.discarding {
            if self.partial.len() + rest.len() > MAX_LINE {
                self.partial.clear();
                self.discarding = true;
                self.malformed += 1;
            } else {
                self.partial.extend_from_slice(rest);
            }
        }
        out
    }

    /// The message under way when the stream ended (a transcript whose last
    /// blank line is missing), if it has fields.
    pub fn finish(&mut self) -> Option<Message> {
        let mut out = Vec::new();
        if !self.partial.is_empty() && !self.discarding {
            let whole = std::mem::take(&mut self.partial);
            self.line(&whole, &mut out);
        }
        self.discarding = false;
        let last = std::mem::take(&mut self.current);
        out.into_iter()
            .next()
            .or((!last.fields.is_empty()).then_some(last))
    }

    fn line(&mut self, raw: &[u8], out: &mut Vec<Message>) {
        // Asterisk speaks UTF-8 (caller names may not be): a bad byte costs
        // that character, not the message.
        let text = String::from_utf8_lossy(raw);
        let text = text.strip_suffix('\r').unwrap_or(&text);
        if text.trim().is_empty() {
            if !self.current.fields.is_empty() {
                out.push(std::mem::take(&mut self.current));
            }
            return;
        }
        match text.split_once(':') {
            Some((key, value)) if !key.trim().is_empty() && !key.contains(' ') => {
                if self.current.fields.len() < MAX_FIELDS {
                    let value = value.strip_prefix(' ').unwrap_or(value);
                    self.current
                        .fields
                        .push((key.trim().to_string(), value.trim_end().to_string()));
                }
            }
            _ if self.current.fields.is_empty()
                && self.greeting.is_none()
                && text.starts_with("Asterisk Call Manager") =>
            {
                self.greeting = Some(text.to_string());
            }
            _ => self.malformed += 1,
        }
    }
}

/// A number of seconds in an AMI field (`HoldTime: 12`, `Timestamp:
/// 1733472000.123456`); `None` when absent or not a finite number.
pub fn seconds(m: &Message, key: &str) -> Option<f64> {
    m.get(key)
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_split_anywhere_come_out_whole() {
        let wire = "Asterisk Call Manager/9.0.0\r\nEvent: A\r\nX: 1\r\n\r\nEvent: B\r\n\r\n";
        for cut in 0..wire.len() {
            let mut p = Parser::new();
            let mut got = p.push(&wire.as_bytes()[..cut]);
            got.extend(p.push(&wire.as_bytes()[cut..]));
            assert_eq!(got.len(), 2, "cut at {cut}");
            assert_eq!(got[0].get("x"), Some("1"));
            assert_eq!(p.greeting.as_deref(), Some("Asterisk Call Manager/9.0.0"));
        }
    }
}
