//! Protobuf wire reading and writing, just what the engine needs: a field iterator that
//! gives each field's number, wire type, payload and whole byte range (so unchanged
//! fields are copied as they are), and writers for the fields the engine re-encodes.

use crate::walk::varint;

pub const VARINT: u8 = 0;
pub const FIXED64: u8 = 1;
pub const LEN: u8 = 2;
pub const FIXED32: u8 = 5;

/// One field occurrence: `start..end` is the whole field (tag included), `payload` the
/// length-delimited contents (LEN) or the number's bytes.
pub struct Field<'a> {
    pub number: u32,
    pub wire: u8,
    pub start: usize,
    pub end: usize,
    pub payload: &'a [u8],
    pub value: u64, // VARINT: the value; fixed: the little-endian bits
}

pub struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
}

pub fn fields(buf: &[u8]) -> Fields<'_> {
    Fields { buf, pos: 0 }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<Field<'a>, &'static str>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.buf.len() {
            return None;
        }
        Some(self.read())
    }
}

impl<'a> Fields<'a> {
    fn read(&mut self) -> Result<Field<'a>, &'static str> {
        let buf = self.buf;
        let start = self.pos;
        let mut pos = start;
        let tag = varint(buf, &mut pos).ok_or("bad tag")?;
        let number = u32::try_from(tag >> 3).map_err(|_| "bad field number")?;
        let wire = (tag & 7) as u8;
        let (payload, value) = match wire {
            VARINT => {
                let p = pos;
                let v = varint(buf, &mut pos).ok_or("bad varint")?;
                (&buf[p..pos], v)
            }
            FIXED64 | FIXED32 => {
                let n = if wire == FIXED64 { 8 } else { 4 };
                let bytes = buf.get(pos..pos + n).ok_or("truncated number")?;
                pos += n;
                let mut v = 0u64;
                for (i, b) in bytes.iter().enumerate() {
                    v |= u64::from(*b) << (8 * i);
                }
                (bytes, v)
            }
            LEN => {
                let n = varint(buf, &mut pos).ok_or("bad length")?;
                let n = usize::try_from(n).map_err(|_| "bad length")?;
                let end = pos.checked_add(n).filter(|e| *e <= buf.len()).ok_or("length past the end")?;
                let p = pos;
                pos = end;
                (&buf[p..end], 0)
            }
            _ => return Err("unsupported wire type"),
        };
        if number == 0 {
            return Err("field number 0");
        }
        self.pos = pos;
        Ok(Field { number, wire, start, end: pos, payload, value })
    }
}

pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A length-delimited field: tag, length, payload.
pub fn put_len(out: &mut Vec<u8>, number: u32, payload: &[u8]) {
    put_varint(out, (u64::from(number) << 3) | u64::from(LEN));
    put_varint(out, payload.len() as u64);
    out.extend_from_slice(payload);
}

pub fn len_field(number: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 6);
    put_len(&mut out, number, payload);
    out
}

/// The UTF-8 text of a string payload.
pub fn text(payload: &[u8]) -> Result<&str, &'static str> {
    std::str::from_utf8(payload).map_err(|_| "invalid UTF-8 in a string")
}
