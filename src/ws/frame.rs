//! RFC 6455 frames as the hub meets them: parsing a client's frame header
//! (every client frame is masked) and writing the hub's own (never masked).
//! Pure: bytes in, bytes out, no I/O.

/// A frame's opcode (RFC 6455 §5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opcode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl Opcode {
    fn from_bits(bits: u8) -> Option<Opcode> {
        Some(match bits {
            0x0 => Opcode::Continuation,
            0x1 => Opcode::Text,
            0x2 => Opcode::Binary,
            0x8 => Opcode::Close,
            0x9 => Opcode::Ping,
            0xA => Opcode::Pong,
            _ => return None,
        })
    }

    fn bits(self) -> u8 {
        match self {
            Opcode::Continuation => 0x0,
            Opcode::Text => 0x1,
            Opcode::Binary => 0x2,
            Opcode::Close => 0x8,
            Opcode::Ping => 0x9,
            Opcode::Pong => 0xA,
        }
    }

    /// Close, ping and pong: never fragmented, at most 125 bytes.
    pub fn is_control(self) -> bool {
        matches!(self, Opcode::Close | Opcode::Ping | Opcode::Pong)
    }
}

/// The longest header: 2 bytes, a 64-bit length, a 4-byte mask.
pub const MAX_HEADER: usize = 14;

/// A client frame's header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub fin: bool,
    pub opcode: Opcode,
    pub mask: [u8; 4],
    /// The payload's length, as announced.
    pub len: u64,
    /// How many bytes the header took.
    pub size: usize,
}

/// A frame that breaks RFC 6455 (answered with close 1002).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

/// Parses a client frame's header from the start of `buf`: `Ok(None)`
/// until the whole header is there.
pub fn parse_header(buf: &[u8]) -> Result<Option<Header>, Malformed> {
    let [b0, b1, ..] = *buf else {
        return Ok(None);
    };
    if b0 & 0x70 != 0 {
        // No extension is negotiated, so no reserved bit may be set.
        return Err(Malformed("reserved bits set"));
    }
    let opcode = Opcode::from_bits(b0 & 0x0F).ok_or(Malformed("unknown opcode"))?;
    let fin = b0 & 0x80 != 0;
    if b1 & 0x80 == 0 {
        return Err(Malformed("client frames must be masked"));
    }
    let (len, at) = match b1 & 0x7F {
        126 => {
            let Some(b) = buf.get(2..4) else {
                return Ok(None);
            };
            (u64::from(u16::from_be_bytes([b[0], b[1]])), 4)
        }
        127 => {
            let Some(b) = buf.get(2..10) else {
                return Ok(None);
            };
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(b);
            let len = u64::from_be_bytes(bytes);
            if len >> 63 != 0 {
                return Err(Malformed("payload length out of range"));
            }
            (len, 10)
        }
        short => (u64::from(short), 2),
    };
    if opcode.is_control() && (!fin || len > 125) {
        return Err(Malformed(
            "control frames are unfragmented and at most 125 bytes",
        ));
    }
    let Some(m) = buf.get(at..at + 4) else {
        return Ok(None);
    };
    Ok(Some(Header {
        fin,
        opcode,
        mask: [m[0], m[1], m[2], m[3]],
        len,
        size: at + 4,
    }))
}

/// Unmasks a payload in place (the mask restarts with each frame).
pub fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    for (i, byte) in payload.iter_mut().enumerate() {
        *byte ^= mask[i & 3];
    }
}

/// Appends one unmasked, final frame (the hub never fragments) to `out`.
pub fn write(out: &mut Vec<u8>, opcode: Opcode, payload: &[u8]) {
    let len = payload.len();
    out.reserve(len + 10);
    out.push(0x80 | opcode.bits());
    if len < 126 {
        out.push(len as u8);
    } else if let Ok(short) = u16::try_from(len) {
        out.push(126);
        out.extend_from_slice(&short.to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(payload);
}

/// Close codes a peer may send (RFC 6455 §7.4 and IANA's registry): the
/// defined ones not reserved for reporting (1005, 1006, 1015), and the
/// ranges for libraries and applications.
pub fn close_code_allowed(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1013 | 3000..=4999)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(b0: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
        let mut out = Vec::new();
        write(&mut out, Opcode::Text, payload);
        out[0] = b0;
        out[1] |= 0x80;
        let at = out.len() - payload.len();
        let mut body = out.split_off(at);
        unmask(&mut body, mask);
        out.extend_from_slice(&mask);
        out.extend_from_slice(&body);
        out
    }

    #[test]
    fn a_masked_text_frame_parses_and_unmasks() {
        let mask = [1, 2, 3, 4];
        let bytes = masked(0x81, b"hello", mask);
        let h = parse_header(&bytes).unwrap().unwrap();
        assert_eq!((h.fin, h.opcode, h.len, h.size), (true, Opcode::Text, 5, 6));
        let mut payload = bytes[h.size..].to_vec();
        unmask(&mut payload, h.mask);
        assert_eq!(payload, b"hello");
    }

    #[test]
    fn every_length_form_round_trips_and_partial_headers_wait() {
        for len in [0usize, 125, 126, 65535, 65536, 70000] {
            let payload = vec![b'x'; len];
            let bytes = masked(0x82, &payload, [9, 8, 7, 6]);
            let h = parse_header(&bytes).unwrap().unwrap();
            assert_eq!(h.len as usize, len);
            assert_eq!(bytes.len(), h.size + len);
            for cut in 0..h.size {
                assert_eq!(parse_header(&bytes[..cut]), Ok(None), "len {len} cut {cut}");
            }
        }
    }

    #[test]
    fn frames_that_break_the_rfc_are_malformed() {
        let ok = masked(0x81, b"x", [0; 4]);
        let mut unmasked = ok.clone();
        unmasked[1] &= 0x7F;
        assert!(parse_header(&unmasked).is_err());
        assert!(parse_header(&masked(0xC1, b"x", [0; 4])).is_err(), "RSV1");
        assert!(
            parse_header(&masked(0x83, b"x", [0; 4])).is_err(),
            "opcode 3"
        );
        assert!(
            parse_header(&masked(0x09, b"x", [0; 4])).is_err(),
            "fragmented ping"
        );
        assert!(
            parse_header(&masked(0x89, &[0; 126], [0; 4])).is_err(),
            "long ping"
        );
        let mut huge = vec![0x82, 0xFF];
        huge.extend_from_slice(&[0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]);
        assert!(
            parse_header(&huge).is_err(),
            "64-bit length with its top bit set"
        );
    }

    #[test]
    fn the_hubs_frames_are_final_and_unmasked() {
        let mut out = Vec::new();
        write(&mut out, Opcode::Text, &[b'a'; 300]);
        assert_eq!(&out[..4], &[0x81, 126, 1, 44]);
        assert_eq!(out.len(), 304);
        let mut out = Vec::new();
        write(&mut out, Opcode::Ping, b"");
        assert_eq!(out, [0x89, 0]);
    }

    #[test]
    fn reserved_close_codes_are_not_allowed() {
        for code in [1000, 1001, 1008, 1012, 1013, 3000, 4999] {
            assert!(close_code_allowed(code), "{code}");
        }
        for code in [0, 999, 1004, 1005, 1006, 1014, 1015, 2999, 5000] {
            assert!(!close_code_allowed(code), "{code}");
        }
    }
}
