//! PROTO, FRAME and STOP (of the pickle, or of joblib's nested pickle of an object array).

use super::torch::TORCH_MAGIC;
use super::{not_an_opcode, Failure, Flow, Machine, Step, Value};

impl Machine<'_> {
    /// Protocol and framing.
    pub(super) fn framing(&mut self, op: u8) -> Step<()> {
        match op {
            0x80 => {
                let [protocol] = self.input.array()?;
                if protocol > 5 {
                    return Err(Failure::new(format!(
                        "unsupported pickle protocol {protocol}"
                    )));
                }
                self.protocol = protocol;
            }
            0x95 => {
                let length = u64::from_le_bytes(self.input.array()?);
                self.input.declared(length, "FRAME")?;
            }
            other => return Err(not_an_opcode(other)),
        }
        Ok(())
    }

    /// STOP: the end of the pickle, or of joblib's nested pickle inside it.
    pub(super) fn stop(&mut self) -> Step<Flow> {
        let result = self.pop()?;
        if let Some(outer) = self.outer.take() {
            self.stack = outer.stack;
            self.marks = outer.marks;
            self.memo = outer.memo;
            self.protocol = outer.protocol;
            // joblib replaces the wrapper with the array it read.
            *self.top()? = Value::Opaque;
            return Ok(Flow::Next);
        }
        if matches!(result, Value::Int(TORCH_MAGIC)) {
            self.scan.legacy_torch = true;
        }
        Ok(Flow::Stop)
    }
}
