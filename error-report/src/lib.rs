//! One way to print an error for people: its message, then each cause in
//! its `source()` chain that the text so far does not already say.
//!
//! Error types here (and in the crates we depend on) often put their cause
//! in their own message *and* return it from `source()`; printing the chain
//! naively (`anyhow`'s `{:#}`) then says every such cause twice. Every
//! binary of the product prints errors through [`Report`], so a message is
//! written once however its types are nested.

use std::error::Error;
use std::fmt;

/// Displays an error and the causes its message does not already contain,
/// joined by `": "`.
#[derive(Debug, Clone, Copy)]
pub struct Report<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut said = self.0.to_string();
        let mut cause = self.0.source();
        while let Some(e) = cause {
            let message = e.to_string();
            // A cause whose whole text is already written adds nothing; an
            // empty message would add a dangling ": ".
            if !message.is_empty() && !said.contains(&message) {
                said.push_str(": ");
                said.push_str(&message);
            }
            cause = e.source();
        }
        f.write_str(&said)
    }
}

/// The error and its causes as one line; see [`Report`].
pub fn chain(error: &(dyn Error + 'static)) -> String {
    Report(error).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum Inner {
        #[error("stored crc 0x1, computed 0x2")]
        Crc,
        #[error("")]
        Silent,
    }

    #[derive(Debug, thiserror::Error)]
    enum Middle {
        /// Says its cause and returns it: the common shape.
        #[error("dwCRC at offset 0x800c: {source}")]
        Echoes { source: Inner },
        /// Returns its cause without saying it.
        #[error("invalid DFU file")]
        Quiet {
            #[source]
            source: Inner,
        },
    }

    #[derive(Debug, thiserror::Error)]
    #[error("fw.dfu: {0}")]
    struct Outer(#[from] Middle);

    #[derive(Debug, thiserror::Error)]
    #[error("import failed")]
    struct Top(#[source] Outer);

    #[test]
    fn each_cause_is_said_once() {
        let table: Vec<(Box<dyn Error + 'static>, &str)> = vec![
            (Box::new(Inner::Crc), "stored crc 0x1, computed 0x2"),
            (
                Box::new(Middle::Echoes { source: Inner::Crc }),
                "dwCRC at offset 0x800c: stored crc 0x1, computed 0x2",
            ),
            (
                Box::new(Middle::Quiet { source: Inner::Crc }),
                "invalid DFU file: stored crc 0x1, computed 0x2",
            ),
            (
                Box::new(Outer(Middle::Echoes { source: Inner::Crc })),
                "fw.dfu: dwCRC at offset 0x800c: stored crc 0x1, computed 0x2",
            ),
            (
                Box::new(Outer(Middle::Quiet { source: Inner::Crc })),
                "fw.dfu: invalid DFU file: stored crc 0x1, computed 0x2",
            ),
            (
                Box::new(Top(Outer(Middle::Echoes { source: Inner::Crc }))),
                "import failed: fw.dfu: dwCRC at offset 0x800c: stored crc 0x1, computed 0x2",
            ),
            (
                Box::new(Top(Outer(Middle::Quiet {
                    source: Inner::Silent,
                }))),
                "import failed: fw.dfu: invalid DFU file",
            ),
        ];
        for (error, expected) in table {
            assert_eq!(chain(&*error), expected);
            assert_eq!(Report(&*error).to_string(), expected);
        }
    }
}
