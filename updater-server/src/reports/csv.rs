//! CSV output (RFC 4180 quoting by the `csv` crate) with spreadsheet
//! formula injection neutralised.
//!
//! Host names, accounts, device strings and failure messages come from
//! agents. A spreadsheet opening the file would run a cell that starts with
//! `=`, `+`, `-` or `@` (or a tab or carriage return before one) as a
//! formula, so such a cell gets a leading `'`, which spreadsheets show as
//! text. Every cell goes through [`cell`]; the values the server itself
//! writes (dates, ids, numbers, enum names) never start with those
//! characters, so only agent-supplied text is ever changed.

use std::borrow::Cow;

use super::ReportError;

/// First characters that make a spreadsheet read a cell as a formula.
const FORMULA_START: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// The cell as written: `'` prefixed when it could be read as a formula.
pub fn cell(value: &str) -> Cow<'_, str> {
    if value.starts_with(FORMULA_START) {
        Cow::Owned(format!("'{value}"))
    } else {
        Cow::Borrowed(value)
    }
}

/// A header row and the rows, as CSV bytes (UTF-8, `\n` line ends, fields
/// quoted when they hold a comma, quote or line break).
pub fn write<R: AsRef<[String]>>(
    columns: &[&str],
    rows: impl IntoIterator<Item = R>,
) -> Result<Vec<u8>, ReportError> {
    let mut w = ::csv::WriterBuilder::new()
        .terminator(::csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    w.write_record(columns)?;
    for row in rows {
        for c in row.as_ref() {
            w.write_field(cell(c).as_bytes())?;
        }
        // An empty record after its fields ends the row.
        w.write_record(std::iter::empty::<&[u8]>())?;
    }
    w.into_inner()
        .map_err(|e| ReportError::Csv(e.into_error().into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_starts_are_neutralised() {
        for (value, want) in [
            ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
            ("+1+1", "'+1+1"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\t=1", "'\t=1"),
            ("\r=1", "'\r=1"),
            // Not at the start, or harmless: unchanged.
            ("ws-1", "ws-1"),
            ("a=b", "a=b"),
            ("047F:C056", "047F:C056"),
            ("2026-01-02T03:04:05Z", "2026-01-02T03:04:05Z"),
            (" =1", " =1"),
            ("", ""),
            ("'quoted", "'quoted"),
        ] {
            assert_eq!(cell(value), want, "{value:?}");
        }
    }

    /// Reads CSV back with the same crate: the fields, as a spreadsheet would
    /// get them.
    fn read(bytes: &[u8]) -> Vec<Vec<String>> {
        ::csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(bytes)
            .records()
            .map(|r| r.unwrap().iter().map(str::to_owned).collect())
            .collect()
    }

    #[test]
    fn quoting_and_injection_in_whole_files() {
        let rows = vec![
            vec!["ws-1".into(), "ann".into(), "plain".into()],
            vec![
                "ws,2".into(),
                "say \"hi\"".into(),
                "line one\nline two".into(),
            ],
            vec!["=cmd|' /C calc'!A0".into(), "@bob".into(), "-1".into()],
            vec!["\"=quoted\"".into(), "a\r\nb".into(), String::new()],
        ];
        let bytes = write(&["host", "user", "note"], &rows).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert_eq!(
            text,
            "host,user,note\n\
             ws-1,ann,plain\n\
             \"ws,2\",\"say \"\"hi\"\"\",\"line one\nline two\"\n\
             '=cmd|' /C calc'!A0,'@bob,'-1\n\
             \"\"\"=quoted\"\"\",\"a\r\nb\",\n"
        );
        let back = read(&bytes);
        assert_eq!(back.len(), 5);
        assert_eq!(back[0], ["host", "user", "note"]);
        assert_eq!(back[2], ["ws,2", "say \"hi\"", "line one\nline two"]);
        assert_eq!(back[3], ["'=cmd|' /C calc'!A0", "'@bob", "'-1"]);
        assert_eq!(back[4], ["\"=quoted\"", "a\r\nb", ""]);
        // No field read back starts a formula.
        for field in back.iter().flatten() {
            assert!(!field.starts_with(FORMULA_START), "{field:?}");
        }
    }

    #[test]
    fn an_empty_report_is_its_header() {
        assert_eq!(
            write(&["a", "b"], Vec::<Vec<String>>::new()).unwrap(),
            b"a,b\n"
        );
    }
}
