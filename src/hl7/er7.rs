//! HL7 v2 ER7 ("pipe and hat") parsing and encoding. Pure and panic-free on any input.
//!
//! * Delimiters come from each message's own MSH-1/MSH-2 (any characters, 4 or 5 encoding
//!   characters — v2.7 adds the truncation character).
//! * A message is split into segments, fields, repetitions, components and subcomponents;
//!   [`Message::encode`] joins that tree back with the same delimiters, so parse → encode gives
//!   the same text. Values are unescaped only when read ([`Message::get`]) and escaped when built
//!   ([`escape`]); formatting escapes (`\.br\`, `\H\`, `\N\`, `\Cxxyy\`, `\Mxxyyzz\`, `\Zxx\` …)
//!   pass through unchanged.
//! * Normalisation on input (documented in hl7/README.md): a UTF-8 byte-order mark is removed,
//!   segment terminators CR, LF and CRLF all become CR, blank lines are dropped, and the encoded
//!   message ends every segment with CR.
//! * Character sets (MSH-18): UTF-8 (`UNICODE UTF-8`, or empty, the default) and GB 18030
//!   (`GB 18030-2000`); text that is not valid in its declared set is refused, never stored as
//!   mojibake.

use std::fmt;

/// The five delimiters of a message (the truncation character only from v2.7 on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delimiters {
    pub field: char,
    pub component: char,
    pub repetition: char,
    pub escape: char,
    pub subcomponent: char,
    pub truncation: Option<char>,
}

impl Default for Delimiters {
    fn default() -> Self {
        Delimiters {
            field: '|',
            component: '^',
            repetition: '~',
            escape: '\\',
            subcomponent: '&',
            truncation: None,
        }
    }
}

impl Delimiters {
    /// MSH-2 as written.
    pub fn encoding_characters(&self) -> String {
        let mut s = String::from_iter([self.component, self.repetition, self.escape, self.subcomponent]);
        if let Some(t) = self.truncation {
            s.push(t);
        }
        s
    }
}

/// Why a message could not be read. The text never contains message content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    Empty,
    NoMsh,
    BadEncodingCharacters,
    UnsupportedCharset(String),
    InvalidText(&'static str),
    BadSegmentId { line: usize },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Empty => write!(f, "empty message"),
            ParseError::NoMsh => write!(f, "the message does not start with an MSH segment"),
            ParseError::BadEncodingCharacters => write!(f, "MSH-1/MSH-2 do not hold five distinct delimiters"),
            ParseError::UnsupportedCharset(c) => write!(f, "unsupported character set in MSH-18: {c}"),
            ParseError::InvalidText(cs) => write!(f, "the text is not valid {cs}"),
            ParseError::BadSegmentId { line } => {
                write!(f, "segment {line} does not start with a 3-character segment id")
            }
        }
    }
}

impl std::error::Error for ParseError {}

/// Character sets this service reads (MSH-18).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    Utf8,
    Gb18030,
}

impl Charset {
    /// From an MSH-18 value; empty means the sender's default.
    pub fn from_msh18(value: &str, default: Charset) -> Result<Charset, ParseError> {
        let v = value.trim().to_ascii_uppercase().replace(['-', '_'], " ");
        match v.as_str() {
            "" => Ok(default),
            "UNICODE UTF 8" | "UTF 8" | "UTF8" | "ASCII" => Ok(Charset::Utf8),
            "GB 18030 2000" | "GB18030" | "GB 18030" | "GB18030 2000" => Ok(Charset::Gb18030),
            _ => Err(ParseError::UnsupportedCharset(value.trim().chars().take(40).collect())),
        }
    }
}

/// A parsed message: normalised text plus the byte ranges of its segments.
#[derive(Debug, Clone)]
pub struct Message {
    text: String,
    segments: Vec<(usize, usize)>,
    pub delimiters: Delimiters,
    pub charset: Charset,
    /// Whether the input started with a UTF-8 byte-order mark (removed).
    pub had_bom: bool,
}

fn decode(bytes: &[u8], charset: Charset) -> Result<String, ParseError> {
    match charset {
        Charset::Utf8 => String::from_utf8(bytes.to_vec()).map_err(|_| ParseError::InvalidText("UTF-8")),
        // GB 18030 decodes almost any bytes, so UTF-8 Chinese sent under a GB 18030 label would
        // come out as mojibake without an error. Non-ASCII text that is valid UTF-8 is practically
        // never GB 18030 Chinese: refuse it.
        Charset::Gb18030 if !bytes.is_ascii() && std::str::from_utf8(bytes).is_ok() => {
            Err(ParseError::InvalidText("GB 18030 (the bytes are UTF-8)"))
        }
        Charset::Gb18030 => encoding_rs::GB18030
            .decode_without_bom_handling_and_without_replacement(bytes)
            .map(|c| c.into_owned())
            .ok_or(ParseError::InvalidText("GB 18030")),
    }
}

/// The raw MSH-18 of a message, read from bytes before decoding (MSH is ASCII in every charset).
fn msh18(bytes: &[u8]) -> Option<String> {
    let end = bytes
        .iter()
        .position(|b| *b == b'\r' || *b == b'\n')
        .unwrap_or(bytes.len());
    let msh = bytes.get(..end)?;
    let sep = *msh.get(3)?;
    let field = msh.split(|b| *b == sep).nth(17)?;
    Some(String::from_utf8_lossy(field).into_owned())
}

impl Message {
    /// Parse bytes as received. `default_charset` applies when MSH-18 is empty (per sender).
    pub fn parse(input: &[u8], default_charset: Charset) -> Result<Message, ParseError> {
        let (bytes, had_bom) = match input.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
            Some(rest) => (rest, true),
            None => (input, false),
        };
        let start = bytes
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(bytes.len());
        let bytes = bytes.get(start..).unwrap_or_default();
        if bytes.is_empty() {
            return Err(ParseError::Empty);
        }
        if !bytes.starts_with(b"MSH") {
            return Err(ParseError::NoMsh);
        }
        let charset = Charset::from_msh18(&msh18(bytes).unwrap_or_default(), default_charset)?;
        let decoded = decode(bytes, charset)?;
        let delimiters = Self::delimiters(&decoded)?;
        let mut text = String::with_capacity(decoded.len() + 1);
        let mut segments = Vec::new();
        for (n, line) in decoded.split(['\r', '\n']).filter(|l| !l.is_empty()).enumerate() {
            // A 3-character id, then the end of the segment or the field separator (anything
            // else after the id would belong to no field and be lost on encoding).
            let id_ok = line.len() >= 3
                && line.is_char_boundary(3)
                && line[..3].chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
                && (line.len() == 3 || line[3..].starts_with(delimiters.field));
            if !id_ok {
                return Err(ParseError::BadSegmentId { line: n + 1 });
            }
            let s = text.len();
            text.push_str(line);
            segments.push((s, text.len()));
            text.push('\r');
        }
        Ok(Message {
            text,
            segments,
            delimiters,
            charset,
            had_bom,
        })
    }

    fn delimiters(text: &str) -> Result<Delimiters, ParseError> {
        let mut chars = text.chars().skip(3);
        let field = chars.next().ok_or(ParseError::BadEncodingCharacters)?;
        let enc: Vec<char> = chars.take_while(|c| *c != field && *c != '\r' && *c != '\n').collect();
        if !(4..=5).contains(&enc.len()) {
            return Err(ParseError::BadEncodingCharacters);
        }
        let mut all = vec![field];
        all.extend(&enc);
        let distinct = all.iter().enumerate().all(|(i, c)| !all[..i].contains(c));
        if !distinct || all.iter().any(|c| c.is_alphanumeric() || c.is_whitespace()) {
            return Err(ParseError::BadEncodingCharacters);
        }
        Ok(Delimiters {
            field,
            component: enc[0],
            repetition: enc[1],
            escape: enc[2],
            subcomponent: enc[3],
            truncation: enc.get(4).copied(),
        })
    }

    /// The normalised text (segments ended by CR).
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn segments(&self) -> impl Iterator<Item = Segment<'_>> {
        self.segments
            .iter()
            .filter_map(move |(s, e)| self.text.get(*s..*e))
            .map(move |raw| Segment {
                raw,
                d: self.delimiters,
            })
    }

    /// The `n`-th (1-based) segment with this id.
    pub fn segment(&self, id: &str, n: usize) -> Option<Segment<'_>> {
        self.segments().filter(|s| s.id() == id).nth(n.checked_sub(1)?)
    }

    /// The raw (still escaped) value at a path such as `PID-3[2].1`, `OBX[2]-5`, `MSH-9.2`.
    pub fn raw(&self, path: &str) -> Result<Option<&str>, PathError> {
        let p = Path::parse(path)?;
        Ok(self.segment(&p.segment, p.segment_rep).and_then(|s| s.at(&p)))
    }

    /// The value at a path with escape sequences resolved.
    pub fn get(&self, path: &str) -> Result<Option<String>, PathError> {
        Ok(self.raw(path)?.map(|v| unescape(v, &self.delimiters)))
    }

    /// Rebuild the text from the parsed tree (segments, fields, repetitions, components,
    /// subcomponents) with the message's delimiters.
    pub fn encode(&self) -> String {
        let d = self.delimiters;
        let mut out = String::with_capacity(self.text.len());
        for seg in self.segments() {
            let tree = seg.tree();
            out.push_str(seg.id());
            // MSH-2 is in the tree as written (never split), so a later MSH keeps its own.
            for field in &tree {
                out.push(d.field);
                join(&mut out, field, &[d.repetition, d.component, d.subcomponent]);
            }
            out.push('\r');
        }
        out
    }

    /// Encode into bytes of the message's own character set.
    pub fn encode_bytes(&self) -> Vec<u8> {
        self.bytes_of(self.encode())
    }

    fn bytes_of(&self, text: String) -> Vec<u8> {
        match self.charset {
            Charset::Utf8 => text.into_bytes(),
            Charset::Gb18030 => encoding_rs::GB18030.encode(&text).0.into_owned(),
        }
    }

    /// The message (normalised, in its own character set) with some fields replaced by `value`
    /// (escaped): `targets` are (segment position in the message, 0-based; field number). MSH
    /// fields are never replaced. Used to keep a message without a value that must not be stored.
    pub fn with_fields_replaced(&self, targets: &[(usize, usize)], value: &str) -> Vec<u8> {
        let d = self.delimiters;
        let value = escape(value, &d);
        let mut out = String::with_capacity(self.text.len());
        for (i, seg) in self.segments().enumerate() {
            let mut parts: Vec<&str> = seg.raw().split(d.field).collect();
            if seg.id() != "MSH" {
                for (_, f) in targets.iter().filter(|(s, _)| *s == i) {
                    if let Some(slot) = parts.get_mut(*f) {
                        *slot = value.as_str();
                    }
                }
            }
            out.push_str(&parts.join(&d.field.to_string()));
            out.push('\r');
        }
        self.bytes_of(out)
    }

    /// Every non-empty value of the message with its path (`PID-3[2].1`, `OBX[2]-5`, `MSH-9.2`),
    /// unescaped, in message order: the parsed tree as the message log shows it.
    pub fn leaves(&self) -> Vec<(String, String)> {
        let d = self.delimiters;
        let mut out = Vec::new();
        let mut seen: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        let counts = self.segments().fold(std::collections::HashMap::new(), |mut m, s| {
            *m.entry(s.id()).or_insert(0usize) += 1;
            m
        });
        for seg in self.segments() {
            let n = seen.entry(seg.id()).or_insert(0);
            *n += 1;
            let name = if counts.get(seg.id()).copied().unwrap_or(0) > 1 {
                format!("{}[{n}]", seg.id())
            } else {
                seg.id().to_string()
            };
            let msh = seg.id() == "MSH";
            if msh {
                out.push((format!("{name}-1"), d.field.to_string()));
                out.push((format!("{name}-2"), d.encoding_characters()));
            }
            for (i, field) in seg.tree().iter().enumerate().skip(usize::from(msh)) {
                let f = i + 1 + usize::from(msh);
                for (r, rep) in field.iter().enumerate() {
                    let rp = if field.len() > 1 {
                        format!("[{}]", r + 1)
                    } else {
                        String::new()
                    };
                    for (c, comp) in rep.iter().enumerate() {
                        let cp = if rep.len() > 1 {
                            format!(".{}", c + 1)
                        } else {
                            String::new()
                        };
                        for (k, sub) in comp.iter().enumerate() {
                            if sub.is_empty() {
                                continue;
                            }
                            let sp = if comp.len() > 1 {
                                format!(".{}", k + 1)
                            } else {
                                String::new()
                            };
                            let cp = if comp.len() > 1 && cp.is_empty() {
                                ".1".to_string()
                            } else {
                                cp.clone()
                            };
                            out.push((format!("{name}-{f}{rp}{cp}{sp}"), unescape(sub, &d)));
                        }
                    }
                }
            }
        }
        out
    }
}

/// Nested parts: field → repetitions → components → subcomponents.
type Tree<'a> = Vec<Vec<Vec<Vec<&'a str>>>>;

fn join(out: &mut String, reps: &[Vec<Vec<&str>>], seps: &[char; 3]) {
    for (i, rep) in reps.iter().enumerate() {
        if i > 0 {
            out.push(seps[0]);
        }
        for (j, comp) in rep.iter().enumerate() {
            if j > 0 {
                out.push(seps[1]);
            }
            for (k, sub) in comp.iter().enumerate() {
                if k > 0 {
                    out.push(seps[2]);
                }
                out.push_str(sub);
            }
        }
    }
}

/// One segment of a message.
#[derive(Debug, Clone, Copy)]
pub struct Segment<'a> {
    raw: &'a str,
    d: Delimiters,
}

impl<'a> Segment<'a> {
    pub fn id(&self) -> &'a str {
        self.raw.get(..3).unwrap_or("")
    }

    pub fn raw(&self) -> &'a str {
        self.raw
    }

    /// The raw fields after the segment id. For MSH the first is MSH-2 (the encoding
    /// characters); MSH-1, the field separator itself, is not in the list.
    fn parts(&self) -> Vec<&'a str> {
        self.raw.get(3..).unwrap_or("").split(self.d.field).skip(1).collect()
    }

    /// Field `n` (1-based, HL7 numbering, so MSH-3 is the sending application).
    pub fn field(&self, n: usize) -> Option<&'a str> {
        if self.id() == "MSH" {
            match n {
                0 => None,
                1 => self.raw.get(3..3 + self.d.field.len_utf8()),
                _ => self.parts().get(n - 2).copied(),
            }
        } else {
            self.parts().get(n.checked_sub(1)?).copied()
        }
    }

    /// Number of fields present (HL7 numbering).
    pub fn field_count(&self) -> usize {
        self.parts().len() + usize::from(self.id() == "MSH")
    }

    fn tree(&self) -> Tree<'a> {
        let d = self.d;
        self.parts()
            .into_iter()
            .enumerate()
            .map(|(i, f)| {
                // MSH-2 holds the delimiters themselves: never split it.
                if self.id() == "MSH" && i == 0 {
                    return vec![vec![vec![f]]];
                }
                f.split(d.repetition)
                    .map(|r| {
                        r.split(d.component)
                            .map(|c| c.split(d.subcomponent).collect())
                            .collect()
                    })
                    .collect()
            })
            .collect()
    }

    fn at(&self, p: &Path) -> Option<&'a str> {
        let field = self.field(p.field)?;
        if self.id() == "MSH" && p.field <= 2 {
            return Some(field);
        }
        let d = self.d;
        let rep = field.split(d.repetition).nth(p.repetition - 1)?;
        let Some(c) = p.component else { return Some(rep) };
        let comp = rep.split(d.component).nth(c - 1)?;
        let Some(s) = p.subcomponent else { return Some(comp) };
        comp.split(d.subcomponent).nth(s - 1)
    }
}

/// A position in a message: `SEG[segment repetition]-field[field repetition].component.subcomponent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    pub segment: String,
    pub segment_rep: usize,
    pub field: usize,
    pub repetition: usize,
    pub component: Option<usize>,
    pub subcomponent: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathError(pub String);

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad HL7 path: {}", self.0)
    }
}

fn index_suffix(s: &str) -> Result<(&str, usize), PathError> {
    match s.split_once('[') {
        Some((name, rest)) => {
            let n = rest
                .strip_suffix(']')
                .and_then(|n| n.parse::<usize>().ok())
                .filter(|n| *n >= 1);
            n.map(|n| (name, n)).ok_or_else(|| PathError(s.to_string()))
        }
        None => Ok((s, 1)),
    }
}

impl Path {
    pub fn parse(s: &str) -> Result<Path, PathError> {
        let err = || PathError(s.to_string());
        let (seg, rest) = s.split_once('-').ok_or_else(err)?;
        let (segment, segment_rep) = index_suffix(seg)?;
        if segment.len() != 3 || !segment.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()) {
            return Err(err());
        }
        let mut parts = rest.split('.');
        let (field, repetition) = index_suffix(parts.next().ok_or_else(err)?)?;
        let field: usize = field.parse().ok().filter(|n| *n >= 1).ok_or_else(err)?;
        let num = |p: Option<&str>| -> Result<Option<usize>, PathError> {
            p.map(|x| x.parse::<usize>().ok().filter(|n| *n >= 1).ok_or_else(err))
                .transpose()
        };
        let component = num(parts.next())?;
        let subcomponent = num(parts.next())?;
        if parts.next().is_some() {
            return Err(err());
        }
        Ok(Path {
            segment: segment.to_string(),
            segment_rep,
            field,
            repetition,
            component,
            subcomponent,
        })
    }
}

/// Resolve escape sequences (HL7 v2 chapter 2): delimiters, `\Xhh…\` bytes (as UTF-8); the
/// formatting escapes are kept as written for display code to handle.
pub fn unescape(value: &str, d: &Delimiters) -> String {
    let e = d.escape;
    if !value.contains(e) {
        return value.to_string();
    }
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(i) = rest.find(e) {
        out.push_str(&rest[..i]);
        let after = &rest[i + e.len_utf8()..];
        let Some(j) = after.find(e) else {
            out.push_str(&rest[i..]);
            return out;
        };
        let code = &after[..j];
        let replacement = match code {
            "F" => Some(d.field.to_string()),
            "S" => Some(d.component.to_string()),
            "T" => Some(d.subcomponent.to_string()),
            "R" => Some(d.repetition.to_string()),
            "E" => Some(e.to_string()),
            "P" => d.truncation.map(|t| t.to_string()),
            x if x.len() > 1 && x.starts_with('X') && x.len() % 2 == 1 => {
                let hex = &x[1..];
                let bytes: Option<Vec<u8>> = (0..hex.len())
                    .step_by(2)
                    .map(|k| hex.get(k..k + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
                    .collect();
                bytes.and_then(|b| String::from_utf8(b).ok())
            }
            _ => None,
        };
        match replacement {
            Some(r) => out.push_str(&r),
            // Formatting and unknown escapes pass through as written.
            None => {
                out.push(e);
                out.push_str(code);
                out.push(e);
            }
        }
        rest = &after[j + e.len_utf8()..];
    }
    out.push_str(rest);
    out
}

/// Escape a value for a field: delimiters become their escape sequences; CR and LF become `\X0D\`
/// and `\X0A\` so a value can never end a segment.
pub fn escape(value: &str, d: &Delimiters) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        let code = if c == d.escape {
            Some("E")
        } else if c == d.field {
            Some("F")
        } else if c == d.component {
            Some("S")
        } else if c == d.subcomponent {
            Some("T")
        } else if c == d.repetition {
            Some("R")
        } else if Some(c) == d.truncation {
            Some("P")
        } else if c == '\r' {
            Some("X0D")
        } else if c == '\n' {
            Some("X0A")
        } else {
            None
        };
        match code {
            Some(code) => {
                out.push(d.escape);
                out.push_str(code);
                out.push(d.escape);
            }
            None => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORU: &str = "MSH|^~\\&|LIS|HOSP|MCH|CENTRE|20261124083000||ORU^R01^ORU_R01|MSG0001|P|2.5.1|||AL|NE||UNICODE UTF-8\r\
PID|1||34052419800101001X^^^&2.16.156.10011.1.3&ISO^NNCHN~H123^^^HOSP^MR||王^小红||19800101|F\r\
OBX|1|NM|718-7^Hemoglobin^LN||58|g/L|110-150|L|||F\r\
OBX|2|TX|8251-1^Note^LN||a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f \\X41\\ \\.br\\ \\H\\x\\N\\||||||F\r\
ZMC|1|custom\r";

    fn parse(s: &str) -> Message {
        Message::parse(s.as_bytes(), Charset::Utf8).unwrap()
    }

    #[test]
    fn paths_read_fields_repetitions_and_components_with_msh_numbered_right() {
        let m = parse(ORU);
        assert_eq!(m.get("MSH-1").unwrap().as_deref(), Some("|"));
        assert_eq!(m.get("MSH-2").unwrap().as_deref(), Some("^~\\&"));
        assert_eq!(m.get("MSH-3").unwrap().as_deref(), Some("LIS"));
        assert_eq!(m.get("MSH-9.2").unwrap().as_deref(), Some("R01"));
        assert_eq!(m.get("MSH-10").unwrap().as_deref(), Some("MSG0001"));
        assert_eq!(m.get("MSH-18").unwrap().as_deref(), Some("UNICODE UTF-8"));
        assert_eq!(m.get("PID-3[1].1").unwrap().as_deref(), Some("34052419800101001X"));
        assert_eq!(m.get("PID-3[1].4.2").unwrap().as_deref(), Some("2.16.156.10011.1.3"));
        assert_eq!(m.get("PID-3[2].5").unwrap().as_deref(), Some("MR"));
        assert_eq!(m.get("PID-5.1").unwrap().as_deref(), Some("王"));
        assert_eq!(m.get("OBX[2]-3.1").unwrap().as_deref(), Some("8251-1"));
        assert_eq!(m.get("OBX-5").unwrap().as_deref(), Some("58"));
        assert_eq!(m.get("PID-3[3]").unwrap(), None);
        assert_eq!(m.get("NTE-1").unwrap(), None);
        assert_eq!(
            m.get("ZMC-2").unwrap().as_deref(),
            Some("custom"),
            "Z-segments are kept"
        );
        assert!(m.get("PID3").is_err() && m.get("PID-0").is_err() && m.get("pid-3").is_err());
    }

    #[test]
    fn escapes_resolve_on_read_and_formatting_escapes_pass_through() {
        let m = parse(ORU);
        assert_eq!(
            m.get("OBX[2]-5").unwrap().as_deref(),
            Some("a|b^c&d~e\\f A \\.br\\ \\H\\x\\N\\")
        );
        let d = m.delimiters;
        let v = "a|b^c&d~e\\f\r";
        assert_eq!(unescape(&escape(v, &d), &d), v);
        assert_eq!(escape("王^小红", &d), "王\\S\\小红");
    }

    #[test]
    fn encode_gives_back_the_same_text() {
        let m = parse(ORU);
        assert_eq!(m.encode(), ORU);
        // LF and CRLF terminators and a BOM normalise to CR.
        let lf = format!("\u{feff}{}", ORU.replace('\r', "\n"));
        let m = Message::parse(lf.as_bytes(), Charset::Utf8).unwrap();
        assert!(m.had_bom);
        assert_eq!(m.encode(), ORU);
        let crlf = ORU.replace('\r', "\r\n");
        assert_eq!(Message::parse(crlf.as_bytes(), Charset::Utf8).unwrap().encode(), ORU);
    }

    #[test]
    fn leaves_name_every_value_by_its_path_and_replaced_fields_are_gone() {
        let m = parse(ORU);
        let leaves = m.leaves();
        let get = |p: &str| leaves.iter().find(|(k, _)| k == p).map(|(_, v)| v.as_str());
        assert_eq!(get("MSH-9.2"), Some("R01"));
        assert_eq!(get("PID-3[1].1"), Some("34052419800101001X"));
        assert_eq!(get("PID-3[1].4.2"), Some("2.16.156.10011.1.3"));
        assert_eq!(get("OBX[1]-5"), Some("58"));
        assert_eq!(get("OBX[2]-3.1"), Some("8251-1"));
        for (path, value) in &leaves {
            if !path.starts_with("MSH-") {
                assert_eq!(m.get(path).unwrap().as_deref(), Some(value.as_str()), "{path}");
            }
        }
        let obx1 = m.segments().position(|s| s.id() == "OBX").unwrap();
        let out = String::from_utf8(m.with_fields_replaced(&[(obx1, 5), (0, 3)], "X|Y")).unwrap();
        let again = parse(&out);
        assert_eq!(again.get("OBX-5").unwrap().as_deref(), Some("X|Y"));
        assert_eq!(
            again.get("MSH-3").unwrap().as_deref(),
            Some("LIS"),
            "MSH is never replaced"
        );
        assert_eq!(again.get("OBX-6").unwrap().as_deref(), Some("g/L"));
    }

    #[test]
    fn other_delimiters_and_the_v27_truncation_character_are_honoured() {
        let msg = "MSH#*!@%$#A#B#C#D#20260101##ADT*A01#1#P#2.7\rPID#1##X*Y!Z*W##@F@#@P@\r";
        let m = parse(msg);
        assert_eq!(m.delimiters.truncation, Some('$'));
        assert_eq!(m.get("PID-3[2].1").unwrap().as_deref(), Some("Z"));
        assert_eq!(m.get("PID-5").unwrap().as_deref(), Some("#"));
        assert_eq!(m.get("PID-6").unwrap().as_deref(), Some("$"));
        assert_eq!(m.get("MSH-9.2").unwrap().as_deref(), Some("A01"));
        assert_eq!(m.encode(), msg);
    }

    #[test]
    fn gb18030_text_is_decoded_and_invalid_text_is_refused() {
        let utf8 = ORU.replace("UNICODE UTF-8", "GB 18030-2000");
        let (bytes, _, _) = encoding_rs::GB18030.encode(&utf8);
        let m = Message::parse(&bytes, Charset::Utf8).unwrap();
        assert_eq!(m.charset, Charset::Gb18030);
        assert_eq!(m.get("PID-5.2").unwrap().as_deref(), Some("小红"));
        assert_eq!(m.encode_bytes(), bytes.into_owned());
        // The same GB 18030 bytes declared as UTF-8 are refused, not stored as mojibake.
        let lying = utf8.replace("GB 18030-2000", "UNICODE UTF-8");
        let (bytes, _, _) = encoding_rs::GB18030.encode(&lying);
        assert_eq!(
            Message::parse(&bytes, Charset::Utf8).unwrap_err(),
            ParseError::InvalidText("UTF-8")
        );
        // UTF-8 Chinese under a GB 18030 label is refused too (it would decode as mojibake).
        let mislabelled = ORU.replace("UNICODE UTF-8", "GB 18030-2000");
        assert_eq!(
            Message::parse(mislabelled.as_bytes(), Charset::Utf8).unwrap_err(),
            ParseError::InvalidText("GB 18030 (the bytes are UTF-8)")
        );
        let odd = ORU.replace("UNICODE UTF-8", "EBCDIC");
        assert!(matches!(
            Message::parse(odd.as_bytes(), Charset::Utf8),
            Err(ParseError::UnsupportedCharset(_))
        ));
    }

    #[test]
    fn garbage_is_refused_with_a_reason() {
        let p = |s: &[u8]| Message::parse(s, Charset::Utf8).unwrap_err();
        assert_eq!(p(b""), ParseError::Empty);
        assert_eq!(p(b"  \r\n"), ParseError::Empty);
        assert_eq!(p(b"PID|1"), ParseError::NoMsh);
        assert_eq!(p(b"MSH|^~"), ParseError::BadEncodingCharacters);
        assert_eq!(p(b"MSH|^^\\&|A"), ParseError::BadEncodingCharacters);
        assert_eq!(p(b"MSH|^~\\&|A\rp|x"), ParseError::BadSegmentId { line: 2 });
        assert_eq!(p(b"MSH|^~\\&|A\r\xff\xfe|x"), ParseError::InvalidText("UTF-8"));
    }

    /// Inputs the fuzzer (`fuzz/`, target `er7_parse`) found; each once broke an invariant.
    mod fuzz_regressions {
        use super::*;

        /// Parse, check encode gives the parsed text back and parses again to the same text.
        fn round_trips(bytes: &[u8], charset: Charset) -> Result<(), ParseError> {
            let m = Message::parse(bytes, charset)?;
            assert_eq!(m.encode(), m.text());
            let again = Message::parse(&m.encode_bytes(), charset).unwrap();
            assert_eq!(again.encode(), m.encode());
            Ok(())
        }

        #[test]
        fn text_right_after_a_segment_id_is_refused_not_dropped() {
            // `RXR` followed by a GB 18030 character instead of `|`: encoding dropped the
            // character, and the encoded bytes no longer parsed (they had become valid UTF-8).
            let found = b"MSH|^~\\&|\xef\xbb\xbf|\nRXR\x90C";
            assert_eq!(
                round_trips(found, Charset::Gb18030),
                Err(ParseError::BadSegmentId { line: 2 })
            );
            let p = |s: &str| Message::parse(s.as_bytes(), Charset::Utf8).map(|m| m.encode());
            assert_eq!(p("MSH|^~\\&|A\rPIDX|1"), Err(ParseError::BadSegmentId { line: 2 }));
            assert_eq!(p("MSH|^~\\&|A\rPID1|1"), Err(ParseError::BadSegmentId { line: 2 }));
            assert_eq!(p("MSH|^~\\&|A\rPID\rPID|1").unwrap(), "MSH|^~\\&|A\rPID\rPID|1\r");
        }

        #[test]
        fn a_later_msh_keeps_its_own_encoding_characters() {
            let batch = "MSH|^~\\&|A\rMSH|xyz|B\r";
            assert_eq!(round_trips(batch.as_bytes(), Charset::Utf8), Ok(()));
            assert_eq!(parse(batch).encode(), batch);
        }
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        fn value() -> impl Strategy<Value = String> {
            proptest::string::string_regex("[a-zA-Z0-9 王小红.|^~&\\\\/-]{0,12}").unwrap()
        }

        proptest! {
            #[test]
            fn parse_never_panics_on_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
                let _ = Message::parse(&bytes, Charset::Utf8);
                let mut with_header = b"MSH|^~\\&|".to_vec();
                with_header.extend(&bytes);
                if let Ok(m) = Message::parse(&with_header, Charset::Utf8) {
                    let _ = m.encode();
                    let _ = m.get("MSH-9.1");
                }
            }

            #[test]
            fn built_messages_round_trip_and_values_survive_escaping(
                rows in proptest::collection::vec(proptest::collection::vec(proptest::collection::vec(value(), 1..3), 1..5), 1..5)
            ) {
                let d = Delimiters::default();
                let mut text = String::from("MSH|^~\\\\&|A|B|C|D|20260101||ADT^A01|1|P|2.5\r");
                text = text.replace("\\\\", "\\");
                for (i, fields) in rows.iter().enumerate() {
                    text.push_str(&format!("Z{:02}", i));
                    for comps in fields {
                        text.push('|');
                        let joined: Vec<String> = comps.iter().map(|v| escape(v, &d)).collect();
                        text.push_str(&joined.join("^"));
                    }
                    text.push('\r');
                }
                let m = Message::parse(text.as_bytes(), Charset::Utf8).unwrap();
                prop_assert_eq!(m.encode(), text.clone());
                for (i, fields) in rows.iter().enumerate() {
                    for (f, comps) in fields.iter().enumerate() {
                        for (c, v) in comps.iter().enumerate() {
                            let path = format!("Z{:02}-{}.{}", i, f + 1, c + 1);
                            prop_assert_eq!(m.get(&path).unwrap().unwrap_or_default(), v.clone());
                        }
                    }
                }
            }
        }
    }
}
