//! The table both directions read: per message, its fields with their protobuf type,
//! both JSON spellings, presence, packing, oneof and id-ness, as Python builds it from the
//! descriptors in use. Fields are kept sorted by number: that is the order upb writes
//! them in, and the order `MessageToDict` lists them in.

/// Protobuf scalar and message types, numbered as `FieldDescriptor.TYPE_*` numbers them.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Double = 1,
    Int64 = 3,
    Uint64 = 4,
    Int32 = 5,
    Fixed64 = 6,
    Fixed32 = 7,
    Bool = 8,
    String = 9,
    Message = 11,
    Bytes = 12,
    Uint32 = 13,
    Enum = 14,
    Sfixed32 = 15,
    Sfixed64 = 16,
    Sint32 = 17,
    Sint64 = 18,
}

impl Kind {
    /// FLOAT (2) and GROUP (10) are refused: no OTLP message has them, and float's JSON
    /// mapping (range checks, shortest float32 text) is not implemented.
    fn from_type(t: u8) -> Option<Kind> {
        use Kind::*;
        Some(match t {
            1 => Double,
            3 => Int64,
            4 => Uint64,
            5 => Int32,
            6 => Fixed64,
            7 => Fixed32,
            8 => Bool,
            9 => String,
            11 => Message,
            12 => Bytes,
            13 => Uint32,
            14 => Enum,
            15 => Sfixed32,
            16 => Sfixed64,
            17 => Sint32,
            18 => Sint64,
            _ => return None,
        })
    }

    /// The wire type an encoder writes for one value.
    pub fn wire(self) -> u8 {
        use Kind::*;
        match self {
            Double | Fixed64 | Sfixed64 => 1,
            Fixed32 | Sfixed32 => 5,
            String | Bytes | Message => 2,
            _ => 0,
        }
    }

    /// The inclusive range of an integer type (None: not an integer type).
    pub fn int_range(self) -> Option<(i128, i128)> {
        use Kind::*;
        Some(match self {
            Int32 | Sint32 | Sfixed32 | Enum => (i32::MIN.into(), i32::MAX.into()),
            Uint32 | Fixed32 => (0, u32::MAX.into()),
            Int64 | Sint64 | Sfixed64 => (i64::MIN.into(), i64::MAX.into()),
            Uint64 | Fixed64 => (0, u64::MAX.into()),
            _ => return None,
        })
    }

    /// A 64-bit integer: written as a quoted decimal by the JSON mapping.
    pub fn quoted(self) -> bool {
        use Kind::*;
        matches!(self, Int64 | Uint64 | Sint64 | Fixed64 | Sfixed64)
    }

    fn packable(self) -> bool {
        !matches!(self, Kind::String | Kind::Bytes | Kind::Message)
    }
}

/// Entry flags.
pub const REPEATED: u8 = 1;
pub const PRESENCE: u8 = 2; // explicit presence: written even when zero (oneof, optional, message)
pub const PACKED: u8 = 4; // a repeated number written as one length-delimited run
const FLAGS: u8 = REPEATED | PRESENCE | PACKED;

/// Highest field number the table takes (OTLP's are below 20): fields are found by
/// number through a dense index.
pub const MAX_FIELD: u32 = 4096;

/// Most oneofs in one message (a bit each).
pub const MAX_ONEOF: u8 = 8;

/// One field as Python gives it:
/// `(number, name, json_name, type, flags, target, id_length, oneof)`. `type` is the
/// descriptor's `TYPE_*` number; `target` the message (MESSAGE) or enum (ENUM) index;
/// `id_length` 0, or the byte length of a hex id (OTLP trace and span ids); `oneof` 0 or
/// 1-based within the message.
pub type FieldEntry = (u32, String, String, u8, u8, u32, u8, u8);

/// One message: its short name (for error messages) and its fields.
pub type MessageEntry = (String, Vec<FieldEntry>);

pub struct Field {
    pub number: u32,
    pub name: Box<str>,
    pub json_name: Box<str>,
    pub kind: Kind,
    pub repeated: bool,
    pub presence: bool,
    pub packed: bool,
    pub target: usize,
    pub id_len: usize,
    pub oneof: u8,
    /// The encoded tag for one value (packed runs: wire type 2), and its length.
    pub tag: [u8; 5],
    pub tag_len: u8,
    /// `"jsonName":` as the encoder writes it.
    pub json_key: Box<[u8]>,
}

pub struct Message {
    pub name: Box<str>,
    pub fields: Vec<Field>,
    /// number -> index into `fields` + 1 (0: unknown).
    by_number: Vec<u16>,
    /// (quick key, member name, field index), both spellings; a short list, searched
    /// linearly, comparing names only where the quick key (length, first and last byte)
    /// matches.
    by_member: Vec<(u32, Box<[u8]>, u16, u8)>,
    /// Root members that belong to another export request, with what to call it.
    pub foreign: Vec<(Box<[u8]>, Box<str>)>,
}

impl Message {
    #[inline]
    pub fn field_by_number(&self, number: u64) -> Option<usize> {
        let i = *self.by_number.get(usize::try_from(number).ok()?)?;
        (i != 0).then(|| usize::from(i) - 1)
    }

    /// The field a member names, and which spelling it uses (0 json_name, 1 name).
    #[inline]
    pub fn field_by_member(&self, member: &[u8]) -> Option<(usize, u8)> {
        let key = quick_key(member);
        let &(_, _, i, spelling) = self.by_member.iter().find(|(k, name, _, _)| *k == key && **name == *member)?;
        Some((usize::from(i), spelling))
    }
}

/// The OTLP-JSON table: messages (index 0.. as Python lists them) and enums.
pub struct JsonSchema {
    pub messages: Vec<Message>,
    /// Per enum: (name, number).
    pub enums: Vec<Vec<(Box<[u8]>, i32)>>,
}

#[inline]
fn quick_key(name: &[u8]) -> u32 {
    match name {
        [] => 0,
        [first, .., last] => (name.len() as u32) << 16 | u32::from(*first) << 8 | u32::from(*last),
        [one] => 1 << 16 | u32::from(*one) << 8 | u32::from(*one),
    }
}

fn put_varint(out: &mut [u8; 5], mut n: u32) -> u8 {
    let mut i = 0;
    while n >= 0x80 {
        out[i] = n as u8 | 0x80;
        n >>= 7;
        i += 1;
    }
    out[i] = n as u8;
    i as u8 + 1
}

impl JsonSchema {
    /// Refuses a table the codec could misread: an unsupported type, a target out of
    /// range, a field number or member name listed twice, a member name equal to another
    /// field's, an id that is not singular bytes, packing on what cannot be packed, a
    /// repeated enum (its JSON mapping differs and no OTLP message has one).
    /// `foreign`: (root message, member name, what that member's request is called).
    pub fn new(
        messages: Vec<MessageEntry>,
        enums: Vec<Vec<(String, i32)>>,
        foreign: Vec<(u32, String, String)>,
    ) -> Result<JsonSchema, String> {
        let count = messages.len();
        if count == 0 {
            return Err("a schema needs at least one message".into());
        }
        let mut out = Vec::with_capacity(count);
        for (mname, entries) in messages {
            let mut fields = Vec::with_capacity(entries.len());
            for (number, name, json_name, ftype, flags, target, id_len, oneof) in entries {
                let kind = Kind::from_type(ftype).ok_or_else(|| format!("{mname}.{name}: unsupported type {ftype}"))?;
                let repeated = flags & REPEATED != 0;
                let packed = flags & PACKED != 0;
                let target = target as usize;
                let bad = number == 0
                    || number > MAX_FIELD
                    || flags & !FLAGS != 0
                    || (kind == Kind::Message && target >= count)
                    || (kind == Kind::Enum && (target >= enums.len() || repeated))
                    || (id_len != 0 && (kind != Kind::Bytes || repeated))
                    || (packed && (!repeated || !kind.packable()))
                    || oneof > MAX_ONEOF
                    || (oneof != 0 && repeated);
                if bad {
                    return Err(format!("{mname}.{name}: bad entry"));
                }
                let wire = if packed { 2 } else { kind.wire() };
                let mut tag = [0u8; 5];
                let tag_len = put_varint(&mut tag, number << 3 | u32::from(wire));
                let json_key = format!("\"{json_name}\":").into_bytes().into_boxed_slice();
                fields.push(Field {
                    number,
                    name: name.into(),
                    json_name: json_name.into(),
                    kind,
                    repeated,
                    presence: flags & PRESENCE != 0,
                    packed,
                    target,
                    id_len: usize::from(id_len),
                    oneof,
                    tag,
                    tag_len,
                    json_key,
                });
            }
            fields.sort_by_key(|f| f.number);
            let top = fields.last().map_or(0, |f| f.number as usize);
            let mut by_number = vec![0u16; top + 1];
            let mut by_member: Vec<(u32, Box<[u8]>, u16, u8)> = Vec::new();
            for (i, f) in fields.iter().enumerate() {
                if by_number[f.number as usize] != 0 {
                    return Err(format!("{mname}: field number {} listed twice", f.number));
                }
                by_number[f.number as usize] = i as u16 + 1;
                for (spelling, member) in [&*f.json_name, &*f.name].into_iter().enumerate() {
                    match by_member.iter().find(|(_, m, _, _)| **m == *member.as_bytes()) {
                        Some(&(_, _, j, _)) if usize::from(j) == i => {}
                        Some(_) => return Err(format!("{mname}: member name {member} names two fields")),
                        None => by_member.push((quick_key(member.as_bytes()), member.as_bytes().into(), i as u16, spelling as u8)),
                    }
                }
            }
            out.push(Message { name: mname.into(), fields, by_number, by_member, foreign: Vec::new() });
        }
        for (root, member, label) in foreign {
            let msg = out.get_mut(root as usize).ok_or("foreign member for a message out of range")?;
            if msg.field_by_member(member.as_bytes()).is_some() {
                return Err(format!("{}: foreign member {member} is one of its own", msg.name));
            }
            msg.foreign.push((member.into_bytes().into(), label.into()));
        }
        let enums = enums
            .into_iter()
            .map(|values| values.into_iter().map(|(n, v)| (n.into_bytes().into_boxed_slice(), v)).collect())
            .collect();
        Ok(JsonSchema { messages: out, enums })
    }

    pub(crate) fn check_root(&self, root: usize) -> Result<&Message, super::JsonError> {
        self.messages.get(root).ok_or_else(|| super::JsonError::new("no such root message in the OTLP-JSON schema"))
    }
}
