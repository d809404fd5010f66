//! MLLP framing (0x0B … 0x1C 0x0D). Pure: bytes in, frames out, with a size limit.

pub const START: u8 = 0x0B;
pub const END: [u8; 2] = [0x1C, 0x0D];

/// What the decoder found in the bytes received so far.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    Frame(Vec<u8>),
    /// Bytes outside a frame (missing start block): the connection should be closed.
    Garbage,
    /// A frame grew past the size limit: the connection should be closed.
    TooLarge,
}

/// Incremental decoder: feed bytes as they arrive (a frame split over many reads, or several
/// frames in one read), take complete frames out.
pub struct Decoder {
    buf: Vec<u8>,
    max: usize,
}

impl Decoder {
    pub fn new(max_frame: usize) -> Decoder {
        Decoder {
            buf: Vec::new(),
            max: max_frame,
        }
    }

    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Event> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        loop {
            // Whitespace between frames is tolerated; anything else before a start block is not.
            let skip = self.buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
            self.buf.drain(..skip);
            match self.buf.first() {
                None => break,
                Some(&START) => {}
                Some(_) => {
                    self.buf.clear();
                    out.push(Event::Garbage);
                    break;
                }
            }
            match self.buf.windows(2).position(|w| w == END) {
                Some(end) => {
                    let frame = self.buf.get(1..end).map(<[u8]>::to_vec).unwrap_or_default();
                    self.buf.drain(..end + 2);
                    out.push(Event::Frame(frame));
                }
                None => {
                    if self.buf.len() > self.max + 3 {
                        self.buf.clear();
                        out.push(Event::TooLarge);
                    }
                    break;
                }
            }
        }
        out
    }
}

pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 3);
    out.push(START);
    out.extend_from_slice(payload);
    out.extend_from_slice(&END);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_byte_by_byte_or_coalesced_come_out_whole_and_in_order() {
        let mut d = Decoder::new(1024);
        let two = [frame(b"MSH|one"), frame(b"MSH|two")].concat();
        let mut got = Vec::new();
        for b in &two {
            got.extend(d.feed(std::slice::from_ref(b)));
        }
        assert_eq!(
            got,
            vec![Event::Frame(b"MSH|one".to_vec()), Event::Frame(b"MSH|two".to_vec())]
        );
        let mut d = Decoder::new(1024);
        assert_eq!(d.feed(&two).len(), 2);
    }

    #[test]
    fn garbage_and_oversized_frames_are_reported() {
        assert_eq!(Decoder::new(10).feed(b"hello"), vec![Event::Garbage]);
        assert_eq!(
            Decoder::new(10).feed(&[&[START][..], &[b'x'; 20]].concat()),
            vec![Event::TooLarge]
        );
        assert_eq!(Decoder::new(10).feed(&frame(b"")), vec![Event::Frame(Vec::new())]);
        assert_eq!(Decoder::new(10).feed(b"\r\n"), vec![]);
    }
}
