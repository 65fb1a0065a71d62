//! Constants pushed as they are: integers, floats, `None` and booleans, strings, bytes and
//! buffers. Strings are kept up to [`KEPT_TEXT`] bytes; other payloads are read through.

use super::{not_an_opcode, Failure, Machine, Step, Value, KEPT_TEXT};

impl Machine<'_> {
    /// Integers, floats and constants.
    pub(super) fn number(&mut self, op: u8) -> Step<()> {
        match op {
            // Integers.
            b'I' => {
                let line = self.input.line()?;
                let value = match line.as_slice() {
                    b"00" | b"01" => Value::Bool,
                    digits => decimal(digits, "INT")?,
                };
                self.push(value)?;
            }
            b'J' => {
                let value = i32::from_le_bytes(self.input.array()?);
                self.push(Value::Int(value.into()))?;
            }
            b'K' => {
                let [value] = self.input.array()?;
                self.push(Value::Int(value.into()))?;
            }
            b'M' => {
                let value = u16::from_le_bytes(self.input.array()?);
                self.push(Value::Int(value.into()))?;
            }
            b'L' => {
                let line = self.input.line()?;
                let digits = line.strip_suffix(b"L").unwrap_or(&line);
                let value = decimal(digits, "LONG")?;
                self.push(value)?;
            }
            0x8a => {
                let [length] = self.input.array()?;
                self.long(length.into())?;
            }
            0x8b => {
                let length = i32::from_le_bytes(self.input.array()?);
                let length = u64::try_from(length)
                    .map_err(|_| Failure::new("LONG4 declares a negative length"))?;
                self.long(length)?;
            }
            // Floats.
            b'F' => {
                let line = self.input.line()?;
                let text = String::from_utf8_lossy(&line);
                let text = text.trim();
                if text.parse::<f64>().is_err() {
                    return Err(Failure::new("FLOAT is not a number"));
                }
                self.push(Value::Float)?;
            }
            b'G' => {
                self.input.array::<8>()?;
                self.push(Value::Float)?;
            }
            // Constants.
            b'N' => self.push(Value::None)?,
            0x88 | 0x89 => self.push(Value::Bool)?,
            other => return Err(not_an_opcode(other)),
        }
        Ok(())
    }

    /// Strings, bytes, unicode strings and out-of-band buffers.
    pub(super) fn text(&mut self, op: u8) -> Step<()> {
        match op {
            // Strings (`str` in Python 3: protocol 0 and 1's byte strings decode to str).
            b'S' => {
                let line = self.input.line()?;
                let value = quoted(&line)?;
                self.push(value)?;
            }
            b'T' => {
                let length = i32::from_le_bytes(self.input.array()?);
                let length = u64::try_from(length)
                    .map_err(|_| Failure::new("BINSTRING declares a negative length"))?;
                self.string(length, "BINSTRING")?;
            }
            b'U' => {
                let [length] = self.input.array()?;
                self.string(length.into(), "SHORT_BINSTRING")?;
            }
            // Bytes.
            b'B' => {
                let length = u32::from_le_bytes(self.input.array()?);
                self.bytes(length.into(), "BINBYTES")?;
            }
            b'C' => {
                let [length] = self.input.array()?;
                self.bytes(length.into(), "SHORT_BINBYTES")?;
            }
            0x8e => {
                let length = u64::from_le_bytes(self.input.array()?);
                self.bytes(length, "BINBYTES8")?;
            }
            0x96 => {
                let length = u64::from_le_bytes(self.input.array()?);
                self.input.declared(length, "BYTEARRAY8")?;
                self.input.skip(length)?;
                self.push(Value::Opaque)?;
            }
            0x97 => self.push(Value::Opaque)?,
            0x98 => {
                self.top()?;
            }
            // Unicode strings.
            b'V' => {
                let line = self.input.line()?;
                let value = raw_unicode_escape(&line);
                self.push(value)?;
            }
            b'X' => {
                let length = u32::from_le_bytes(self.input.array()?);
                self.string(length.into(), "BINUNICODE")?;
            }
            0x8c => {
                let [length] = self.input.array()?;
                self.string(length.into(), "SHORT_BINUNICODE")?;
            }
            0x8d => {
                let length = u64::from_le_bytes(self.input.array()?);
                self.string(length, "BINUNICODE8")?;
            }
            other => return Err(not_an_opcode(other)),
        }
        Ok(())
    }

    /// LONG1, LONG4: little-endian two's complement.
    fn long(&mut self, length: u64) -> Step<()> {
        let value = match self.input.take(length, 16, "LONG")? {
            Some(bytes) => {
                let negative = bytes.last().is_some_and(|last| last & 0x80 != 0);
                let mut full = [if negative { 0xff } else { 0 }; 16];
                full[..bytes.len()].copy_from_slice(&bytes);
                Value::Int(i128::from_le_bytes(full))
            }
            None => Value::BigInt,
        };
        self.push(value)
    }

    fn string(&mut self, length: u64, what: &str) -> Step<()> {
        let value = match self.input.take(length, KEPT_TEXT, what)? {
            Some(bytes) => match String::from_utf8(bytes) {
                Ok(text) => Value::Str(text.into()),
                Err(_) => Value::LongStr,
            },
            None => Value::LongStr,
        };
        self.push(value)
    }

    fn bytes(&mut self, length: u64, what: &str) -> Step<()> {
        self.input.declared(length, what)?;
        self.input.skip(length)?;
        self.push(Value::Bytes)
    }
}

/// INT and LONG's decimal text.
fn decimal(digits: &[u8], what: &str) -> Step<Value> {
    let text = std::str::from_utf8(digits)
        .map_err(|_| Failure::new(format!("{what} is not a number")))?
        .trim();
    let body = text.strip_prefix(['-', '+']).unwrap_or(text);
    if body.is_empty() || !body.bytes().all(|b| b.is_ascii_digit() || b == b'_') {
        return Err(Failure::new(format!("{what} is not a number")));
    }
    Ok(text
        .replace('_', "")
        .parse::<i128>()
        .map(Value::Int)
        .unwrap_or(Value::BigInt))
}

/// STRING's quoted text (`'abc'`): kept when it has no escapes.
fn quoted(line: &[u8]) -> Step<Value> {
    match line {
        [quote, body @ .., last] if (*quote == b'\'' || *quote == b'"') && last == quote => {
            if body.contains(&b'\\') || body.len() > KEPT_TEXT {
                return Ok(Value::LongStr);
            }
            Ok(match std::str::from_utf8(body) {
                Ok(text) => Value::Str(text.into()),
                Err(_) => Value::LongStr,
            })
        }
        _ => Err(Failure::new("STRING is not quoted")),
    }
}

/// UNICODE's `raw-unicode-escape` text: Latin-1 bytes, with `\uXXXX` and `\UXXXXXXXX`.
fn raw_unicode_escape(line: &[u8]) -> Value {
    if line.len() > KEPT_TEXT * 4 {
        return Value::LongStr;
    }
    let mut text = String::new();
    let mut rest = line;
    while let Some((&byte, tail)) = rest.split_first() {
        let width = match tail.first() {
            Some(b'u') if byte == b'\\' => 4,
            Some(b'U') if byte == b'\\' => 8,
            _ => 0,
        };
        let escaped = tail
            .get(1..1 + width)
            .filter(|_| width > 0)
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u32::from_str_radix(hex, 16).ok())
            .and_then(char::from_u32);
        match escaped {
            Some(c) => {
                text.push(c);
                rest = &tail[1 + width..];
            }
            None => {
                text.push(char::from(byte));
                rest = tail;
            }
        }
    }
    if text.len() > KEPT_TEXT {
        Value::LongStr
    } else {
        Value::Str(text.into())
    }
}
