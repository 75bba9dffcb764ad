//! The canonical binary encoding of everything that is hashed, signed or sent.
//!
//! Rules (specified in `docs/PROTOCOL.md`): integers are fixed-width little-endian; `bool` is one
//! byte, 0 or 1; fixed-size byte arrays are written as they are; variable-length byte strings and
//! UTF-8 strings are a `u32` length then the bytes; sequences are a `u32` count then the items;
//! an `Option` is a tag byte (0 = none, 1 = some) then the value; enums are a `u8` tag. Every
//! variable length has a maximum, checked before anything is allocated. Decoding is strict: any
//! other byte string (wrong tag, bad bool, over-long length, trailing bytes) is an error, so every
//! value has exactly one encoding and `decode(encode(v)) == v`.

use super::hash::{Hash, HASH_LEN};

/// Why bytes are not the canonical encoding of a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("unexpected end of input: needed {needed} more bytes, {remaining} left")]
    UnexpectedEnd { needed: usize, remaining: usize },
    #[error("{0} trailing bytes after the value")]
    TrailingBytes(usize),
    #[error("{what}: length {len} exceeds the maximum {max}")]
    TooLong {
        what: &'static str,
        len: u64,
        max: u64,
    },
    #[error("{what}: invalid tag {tag}")]
    InvalidTag { what: &'static str, tag: u8 },
    #[error("invalid bool byte {0} (must be 0 or 1)")]
    InvalidBool(u8),
    #[error("{what}: not valid UTF-8")]
    InvalidUtf8 { what: &'static str },
    #[error("{what}: {reason}")]
    Invalid { what: &'static str, reason: String },
}

/// A value with a canonical encoding.
pub trait Encode {
    fn encode_to(&self, w: &mut Writer);

    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.encode_to(&mut w);
        w.into_bytes()
    }

    /// The length of [`Encode::encode`]'s output, counted without building it (sync accounts
    /// for every downloaded block's size; encoding a 100-signature block only to measure it
    /// cost an allocation and a copy per block, several times over).
    fn encoded_len(&self) -> usize {
        let mut w = Writer::counter();
        self.encode_to(&mut w);
        w.counted
    }
}

/// A value decodable from its canonical encoding.
pub trait Decode: Sized {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// Decodes a value that must use all of `bytes`.
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let v = Self::decode_from(&mut r)?;
        r.finish()?;
        Ok(v)
    }
}

/// Appends canonical encodings to a byte buffer.
#[derive(Default, Debug)]
pub struct Writer {
    buf: Vec<u8>,
    /// Only counting ([`Encode::encoded_len`]): nothing is kept in `buf`.
    counting: bool,
    counted: usize,
}

impl Writer {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_capacity(n: usize) -> Self {
        Writer {
            buf: Vec::with_capacity(n),
            ..Self::default()
        }
    }

    /// A writer that only counts the bytes written to it.
    fn counter() -> Self {
        Writer {
            counting: true,
            ..Self::default()
        }
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// Empties the buffer, keeping its allocation, to encode the next value.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.counted = 0;
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    pub fn u8(&mut self, v: u8) -> &mut Self {
        if self.counting {
            self.counted += 1;
        } else {
            self.buf.push(v);
        }
        self
    }

    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.u8(u8::from(v))
    }

    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.raw(&v.to_le_bytes())
    }

    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.raw(&v.to_le_bytes())
    }

    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.raw(&v.to_le_bytes())
    }

    /// Fixed-size bytes, written without a length.
    pub fn raw(&mut self, v: &[u8]) -> &mut Self {
        if self.counting {
            self.counted += v.len();
        } else {
            self.buf.extend_from_slice(v);
        }
        self
    }

    pub fn hash(&mut self, h: &Hash) -> &mut Self {
        self.raw(&h.0)
    }

    /// Variable-length bytes: `u32` length, then the bytes. Callers keep lengths under their
    /// declared maximum (always far below `u32::MAX`), so the cast cannot truncate.
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.len(v.len()).raw(v)
    }

    pub fn str(&mut self, v: &str) -> &mut Self {
        self.bytes(v.as_bytes())
    }

    /// A sequence length or count.
    pub fn len(&mut self, n: usize) -> &mut Self {
        debug_assert!(n <= u32::MAX as usize);
        self.u32(n as u32)
    }

    pub fn seq<T: Encode>(&mut self, items: &[T]) -> &mut Self {
        self.len(items.len());
        for item in items {
            item.encode_to(self);
        }
        self
    }

    pub fn option<T: Encode>(&mut self, v: Option<&T>) -> &mut Self {
        match v {
            None => self.u8(0),
            Some(v) => {
                self.u8(1);
                v.encode_to(self);
                self
            }
        }
    }

    pub fn value<T: Encode + ?Sized>(&mut self, v: &T) -> &mut Self {
        v.encode_to(self);
        self
    }
}

/// Reads canonical encodings from a byte slice, never panicking and never allocating more
/// than the input could justify.
#[derive(Debug)]
pub struct Reader<'a> {
    input: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(input: &'a [u8]) -> Self {
        Reader { input }
    }

    pub fn remaining(&self) -> usize {
        self.input.len()
    }

    /// Succeeds only if every byte was consumed.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.input.len() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }

    pub fn raw(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.input.len() < n {
            return Err(DecodeError::UnexpectedEnd {
                needed: n,
                remaining: self.input.len(),
            });
        }
        let (head, tail) = self.input.split_at(n);
        self.input = tail;
        Ok(head)
    }

    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.raw(N)?);
        Ok(out)
    }

    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(DecodeError::InvalidBool(b)),
        }
    }

    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    pub fn hash(&mut self) -> Result<Hash, DecodeError> {
        Ok(Hash(self.array::<HASH_LEN>()?))
    }

    /// A `u32` length or count, checked against `max`.
    pub fn len(&mut self, what: &'static str, max: usize) -> Result<usize, DecodeError> {
        let n = self.u32()?;
        if u64::from(n) > max as u64 {
            return Err(DecodeError::TooLong {
                what,
                len: n.into(),
                max: max as u64,
            });
        }
        Ok(n as usize)
    }

    pub fn bytes(&mut self, what: &'static str, max: usize) -> Result<&'a [u8], DecodeError> {
        let n = self.len(what, max)?;
        self.raw(n)
    }

    pub fn str(&mut self, what: &'static str, max: usize) -> Result<&'a str, DecodeError> {
        let b = self.bytes(what, max)?;
        std::str::from_utf8(b).map_err(|_| DecodeError::InvalidUtf8 { what })
    }

    /// A sequence of at most `max` items. Pre-allocation is bounded by the bytes left, so a
    /// forged count cannot make us reserve memory the input does not back.
    pub fn seq<T: Decode>(
        &mut self,
        what: &'static str,
        max: usize,
    ) -> Result<Vec<T>, DecodeError> {
        let n = self.len(what, max)?;
        let mut out = Vec::with_capacity(n.min(self.input.len()));
        for _ in 0..n {
            out.push(T::decode_from(self)?);
        }
        Ok(out)
    }

    pub fn option<T: Decode>(&mut self, what: &'static str) -> Result<Option<T>, DecodeError> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(T::decode_from(self)?)),
            tag => Err(DecodeError::InvalidTag { what, tag }),
        }
    }
}

impl Encode for Hash {
    fn encode_to(&self, w: &mut Writer) {
        w.hash(self);
    }
}

impl Decode for Hash {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.hash()
    }
}

impl Encode for u64 {
    fn encode_to(&self, w: &mut Writer) {
        w.u64(*self);
    }
}

impl Decode for u64 {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.u64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn integers_are_little_endian() {
        let mut w = Writer::new();
        w.u16(0x0102).u32(0x0304_0506).u64(0x0708_090a_0b0c_0d0e);
        assert_eq!(
            w.as_bytes(),
            [2, 1, 6, 5, 4, 3, 0x0e, 0x0d, 0x0c, 0x0b, 0x0a, 9, 8, 7]
        );
    }

    #[test]
    fn rejects_trailing_bytes() {
        assert_eq!(u64::decode(&[0; 9]), Err(DecodeError::TrailingBytes(1)));
    }

    #[test]
    fn rejects_truncated_input() {
        assert_eq!(
            u64::decode(&[0; 7]),
            Err(DecodeError::UnexpectedEnd {
                needed: 8,
                remaining: 7
            })
        );
    }

    #[test]
    fn rejects_non_canonical_bool() {
        assert_eq!(Reader::new(&[2]).bool(), Err(DecodeError::InvalidBool(2)));
    }

    #[test]
    fn rejects_over_long_length_before_reading() {
        let mut w = Writer::new();
        w.u32(11);
        let bytes = w.into_bytes();
        assert_eq!(
            Reader::new(&bytes).bytes("blob", 10),
            Err(DecodeError::TooLong {
                what: "blob",
                len: 11,
                max: 10
            })
        );
    }

    #[test]
    fn forged_count_does_not_allocate_beyond_input() {
        let mut w = Writer::new();
        w.u32(1_000_000);
        let bytes = w.into_bytes();
        let err = Reader::new(&bytes)
            .seq::<Hash>("hashes", 2_000_000)
            .unwrap_err();
        assert!(matches!(err, DecodeError::UnexpectedEnd { .. }));
    }

    #[test]
    fn rejects_invalid_utf8_and_option_tag() {
        let mut w = Writer::new();
        w.bytes(&[0xff]);
        assert_eq!(
            Reader::new(w.as_bytes()).str("name", 8),
            Err(DecodeError::InvalidUtf8 { what: "name" })
        );
        assert_eq!(
            Reader::new(&[7]).option::<u64>("maybe"),
            Err(DecodeError::InvalidTag {
                what: "maybe",
                tag: 7
            })
        );
    }
}
