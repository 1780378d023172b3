//! The bytes the simulated clients send: a header naming the message, then
//! a filler derived from the message id, so that every delivery can be
//! traced back to its send and checked byte for byte (fragmentation and
//! reassembly must give back exactly what was sent).

use vigil_membership::{ClientId, NodeId};

/// A message's identity in the simulation (unique over a whole run).
pub type MsgId = u64;

const MAGIC: [u8; 4] = *b"VSIM";

/// Header: magic, message id, sending node, sending client, total length.
pub const HEADER: usize = 4 + 8 + 4 + 8 + 4;

/// What the header of a delivered payload says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub msg: MsgId,
    pub node: NodeId,
    pub client: ClientId,
    pub len: usize,
}

/// The payload of message `msg`, `len` bytes long (at least [`HEADER`]).
pub fn make(msg: MsgId, node: NodeId, client: ClientId, len: usize) -> Vec<u8> {
    let len = len.max(HEADER);
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&msg.to_le_bytes());
    out.extend_from_slice(&node.to_le_bytes());
    out.extend_from_slice(&client.to_le_bytes());
    out.extend_from_slice(&(len as u32).to_le_bytes());
    let mut filler = Filler::new(msg);
    out.extend((HEADER..len).map(|_| filler.next_byte()));
    out
}

/// Reads the header and checks the length it announces.
pub fn parse(bytes: &[u8]) -> Result<Header, String> {
    if bytes.len() < HEADER || bytes[..4] != MAGIC {
        return Err(format!(
            "payload of {} bytes does not start with a simulation header (first bytes {:02x?})",
            bytes.len(),
            &bytes[..bytes.len().min(16)]
        ));
    }
    let u64_at = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
    let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().expect("4 bytes"));
    let header = Header {
        msg: u64_at(4),
        node: u32_at(12),
        client: u64_at(16),
        len: u32_at(24) as usize,
    };
    if header.len != bytes.len() {
        return Err(format!(
            "message {} was sent with {} bytes but delivered with {}",
            header.msg,
            header.len,
            bytes.len()
        ));
    }
    Ok(header)
}

/// Checks every filler byte; returns the offset of the first wrong one.
pub fn verify_body(msg: MsgId, bytes: &[u8]) -> Result<(), String> {
    let mut filler = Filler::new(msg);
    for (i, b) in bytes.iter().enumerate().skip(HEADER) {
        let want = filler.next_byte();
        if *b != want {
            return Err(format!(
                "message {msg}: byte {i} of {} is {b:#04x}, sent as {want:#04x} \
                 (fragment boundary at {}-byte fragments?)",
                bytes.len(),
                i - HEADER
            ));
        }
    }
    Ok(())
}

/// xorshift64* stream seeded by the message id.
struct Filler {
    state: u64,
    word: u64,
    left: u32,
}

impl Filler {
    fn new(msg: MsgId) -> Filler {
        Filler {
            state: msg.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            word: 0,
            left: 0,
        }
    }

    fn next_byte(&mut self) -> u8 {
        if self.left == 0 {
            self.state ^= self.state >> 12;
            self.state ^= self.state << 25;
            self.state ^= self.state >> 27;
            self.word = self.state.wrapping_mul(0x2545_F491_4F6C_DD1D);
            self.left = 8;
        }
        self.left -= 1;
        let b = self.word as u8;
        self.word >>= 8;
        b
    }
}
