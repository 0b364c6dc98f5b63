//! What an admin says about a firmware file, in the two places it is said:
//! the flags of `updater-server catalog import` and the query of
//! `POST /api/v1/tenants/{tenant}/catalog/releases`.
//!
//! One struct ([`ImportFlags`]) holds both: clap parses the flags into it,
//! [`ImportFlags::from_query`] parses the query into it (same names without
//! the leading `--`, same value parsers), and [`ImportFlags::options`] is the
//! one translation into the catalog's [`ImportOptions`]. The importer then
//! makes every check, for both.

use std::collections::BTreeSet;

use catalog::import::ImportOptions;
use catalog::package::{HardwareId, SourceFormat, UpdateProtocol, Urgency, VersionFormat};
use clap::Args;

/// The import metadata; fields the file itself carries may be omitted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
pub struct ImportFlags {
    /// Force the format instead of detecting it: raw, dfu, dfuse, cab.
    #[arg(long, value_parser = parse_format)]
    pub format: Option<SourceFormat>,
    /// Vendor name.
    #[arg(long)]
    pub vendor: Option<String>,
    /// Model name.
    #[arg(long)]
    pub model: Option<String>,
    /// Hardware id VID:PID[@LO-HI] (hex); repeatable or comma-separated.
    #[arg(long = "hardware-id", value_delimiter = ',')]
    pub hardware_ids: Vec<HardwareId>,
    /// Version string.
    #[arg(long)]
    pub version: Option<String>,
    /// Version format: plain, bcd, hex.
    #[arg(long)]
    pub version_format: Option<VersionFormat>,
    /// Anti-downgrade security counter.
    #[arg(long)]
    pub security_counter: Option<u32>,
    /// Update protocol: dfu, dfuse, or a vendor protocol id (com.jabra.gnp); agents skip what they cannot flash.
    #[arg(long)]
    pub protocol: Option<UpdateProtocol>,
    /// The device must be unplugged and replugged after flashing.
    #[arg(long)]
    pub needs_replug: bool,
    /// May be installed silently in a maintenance window.
    #[arg(long)]
    pub silent_capable: bool,
    /// May not be installed automatically at agent start.
    #[arg(long)]
    pub no_automatic: bool,
    /// Expected install time in seconds.
    #[arg(long)]
    pub install_duration: Option<u32>,
    /// Urgency: low, medium, high, critical.
    #[arg(long)]
    pub urgency: Option<Urgency>,
    /// Release notes.
    #[arg(long)]
    pub notes: Option<String>,
    /// File name of the target (default: the file's own name; for an upload,
    /// required unless the body is an LVFS cabinet, whose payload names it).
    #[arg(long)]
    pub file_name: Option<String>,
    /// Read a .dfu suffix's bcdDevice as the device release the file
    /// requires (by default it is the release the file installs, and does
    /// not restrict which devices it applies to).
    #[arg(long)]
    pub require_suffix_bcd: bool,
    /// The product this model is one piece of (a base, its headset and its
    /// dongle share a family): a silent update waits while another piece
    /// of the family is attached to the same workstation.
    #[arg(long)]
    pub product_family: Option<String>,
    /// Refuse an LVFS cabinet unless its .jcat carries an ed25519
    /// signature that verifies with a trusted vendor key (`catalog
    /// vendor-keys add`).
    #[arg(long)]
    pub require_vendor_signature: bool,
}

/// The accepted query parameters: name, OpenAPI type, description. The
/// names are the flags' (a test keeps the two lists equal).
pub const QUERY: &[(&str, &str, &str)] = &[
    (
        "require-vendor-signature",
        "boolean",
        "`true` (or given without a value): refuse an LVFS cabinet unless its .jcat has an ed25519 signature by a trusted vendor key.",
    ),
    (
        "format",
        "string",
        "Force the format instead of detecting it: raw, dfu, dfuse, cab.",
    ),
    ("vendor", "string", "Vendor name (required unless the file carries it)."),
    ("model", "string", "Model name (required unless the file carries it)."),
    (
        "hardware-id",
        "string",
        "Hardware id VID:PID[@LO-HI] in hex (e.g. 047F:C056); repeatable or comma-separated. Required for raw images; must agree with a .dfu suffix.",
    ),
    ("version", "string", "Version string (required unless the file carries it)."),
    ("version-format", "string", "plain (default), bcd or hex."),
    ("security-counter", "integer", "Anti-downgrade security counter (default 0)."),
    (
        "protocol",
        "string",
        "dfu, dfuse, or a vendor protocol id (default from the file).",
    ),
    (
        "needs-replug",
        "boolean",
        "`true` (or given without a value): the device must be replugged after flashing.",
    ),
    (
        "silent-capable",
        "boolean",
        "`true` (or given without a value): may be installed silently in a maintenance window.",
    ),
    (
        "no-automatic",
        "boolean",
        "`true` (or given without a value): may not be installed automatically at agent start.",
    ),
    ("install-duration", "integer", "Expected install time in seconds (default 120)."),
    ("urgency", "string", "low, medium (default), high or critical."),
    ("notes", "string", "Release notes (plain text, up to 16 KiB)."),
    (
        "file-name",
        "string",
        "The target's file name. Required unless the body is an LVFS cabinet (then its payload's name is the default).",
    ),
    (
        "require-suffix-bcd",
        "boolean",
        "`true` (or given without a value): a .dfu suffix's bcdDevice restricts the device releases the file applies to.",
    ),
    (
        "product-family",
        "string",
        "The product this model is one piece of (silent updates wait while another piece is attached).",
    ),
];

/// A query that does not say what an import needs, in the query's terms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// A parameter that is not an import option.
    #[error("unknown query parameter {name:?}; accepted: {accepted}")]
    Unknown {
        /// The parameter (first 40 characters).
        name: String,
        /// The accepted names.
        accepted: String,
    },
    /// A parameter given twice that takes one value.
    #[error("query parameter {0:?} is given more than once (only hardware-id repeats)")]
    Repeated(&'static str),
    /// A value that does not parse.
    #[error("query parameter {name:?}: {why}")]
    Invalid {
        /// The parameter.
        name: &'static str,
        /// What is wrong with its value.
        why: String,
    },
}

/// `raw`, `dfu`, `dfuse` or `cab`.
pub fn parse_format(s: &str) -> Result<SourceFormat, String> {
    match s {
        "raw" => Ok(SourceFormat::Raw),
        "dfu" => Ok(SourceFormat::Dfu),
        "dfuse" => Ok(SourceFormat::Dfuse),
        "cab" => Ok(SourceFormat::Cab),
        other => Err(format!("{other:?} is not raw, dfu, dfuse or cab")),
    }
}

impl ImportFlags {
    /// The catalog's import options: the one translation of the flags,
    /// whether they came from the command line or a query.
    pub fn options(&self) -> ImportOptions {
        ImportOptions {
            format: self.format,
            vendor: self.vendor.clone(),
            model: self.model.clone(),
            hardware_ids: self.hardware_ids.clone(),
            version: self.version.clone(),
            version_format: self.version_format,
            security_counter: self.security_counter,
            protocol: self.protocol.clone(),
            needs_replug: self.needs_replug.then_some(true),
            silent_capable: self.silent_capable.then_some(true),
            automatic_capable: self.no_automatic.then_some(false),
            install_duration_secs: self.install_duration,
            urgency: self.urgency,
            release_notes: self.notes.clone(),
            file_name: self.file_name.clone(),
            require_suffix_bcd: self.require_suffix_bcd,
            product_family: self.product_family.clone(),
            require_vendor_signature: self.require_vendor_signature,
            vendor_keys: Vec::new(),
        }
    }

    /// Parses decoded query pairs (`name=value`, names as the flags
    /// without `--`). Values parse as clap parses the flags; a boolean is
    /// `true`, `false`, or empty (the flag given: true). Unknown names and
    /// repeated single-valued names are refused.
    pub fn from_query(pairs: &[(String, String)]) -> Result<Self, QueryError> {
        let mut f = Self::default();
        let mut seen = BTreeSet::new();
        for (name, value) in pairs {
            let Some(&(name, _, _)) = QUERY.iter().find(|(n, _, _)| n == name) else {
                return Err(QueryError::Unknown {
                    name: name.chars().take(40).collect(),
                    accepted: QUERY
                        .iter()
                        .map(|(n, _, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            };
            if name == "hardware-id" {
                for id in value.split(',') {
                    f.hardware_ids.push(parse(name, id)?);
                }
                continue;
            }
            if !seen.insert(name) {
                return Err(QueryError::Repeated(name));
            }
            let text = || Some(value.clone());
            match name {
                "format" => {
                    f.format =
                        Some(parse_format(value).map_err(|why| QueryError::Invalid { name, why })?);
                }
                "vendor" => f.vendor = text(),
                "model" => f.model = text(),
                "version" => f.version = text(),
                "version-format" => f.version_format = Some(parse(name, value)?),
                "security-counter" => f.security_counter = Some(parse(name, value)?),
                "protocol" => f.protocol = Some(parse(name, value)?),
                "needs-replug" => f.needs_replug = boolean(name, value)?,
                "silent-capable" => f.silent_capable = boolean(name, value)?,
                "no-automatic" => f.no_automatic = boolean(name, value)?,
                "install-duration" => f.install_duration = Some(parse(name, value)?),
                "urgency" => f.urgency = Some(parse(name, value)?),
                "notes" => f.notes = text(),
                "file-name" => f.file_name = text(),
                "require-suffix-bcd" => f.require_suffix_bcd = boolean(name, value)?,
                "product-family" => f.product_family = text(),
                "require-vendor-signature" => f.require_vendor_signature = boolean(name, value)?,
                // Every name of QUERY is handled above (a test checks it).
                other => {
                    return Err(QueryError::Invalid {
                        name: other,
                        why: "not handled".into(),
                    })
                }
            }
        }
        Ok(f)
    }
}

fn parse<T>(name: &'static str, value: &str) -> Result<T, QueryError>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    value.parse().map_err(|e: T::Err| QueryError::Invalid {
        name,
        why: format!("{e}"),
    })
}

fn boolean(name: &'static str, value: &str) -> Result<bool, QueryError> {
    match value {
        "" | "true" => Ok(true),
        "false" => Ok(false),
        other => Err(QueryError::Invalid {
            name,
            why: format!(
                "{:?} is not true or false",
                other.chars().take(40).collect::<String>()
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        flags: ImportFlags,
    }

    fn pairs(query: &[(&str, &str)]) -> Vec<(String, String)> {
        query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// The query accepts exactly the flags' names.
    #[test]
    fn the_query_names_are_the_flag_names() {
        let flags: BTreeSet<String> = Cli::command()
            .get_arguments()
            .filter_map(|a| a.get_long().map(str::to_owned))
            .filter(|l| l != "help")
            .collect();
        let query: BTreeSet<String> = QUERY.iter().map(|(n, _, _)| (*n).to_owned()).collect();
        assert_eq!(flags, query);
        // And each one is handled by the parser.
        for (name, ty, _) in QUERY {
            let value = match *ty {
                "boolean" => "true",
                "integer" => "7",
                _ if *name == "format" => "raw",
                _ if *name == "hardware-id" => "047F:C056",
                _ if *name == "version-format" => "plain",
                _ if *name == "protocol" => "dfu",
                _ if *name == "urgency" => "high",
                _ => "text",
            };
            ImportFlags::from_query(&pairs(&[(name, value)]))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    /// Flags, and the same said as a query.
    type Said<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)]);

    /// The same request said as flags and as a query gives the same options.
    #[test]
    fn flags_and_query_agree() {
        let table: &[Said<'_>] = &[
            (&[], &[]),
            (
                &[
                    "--vendor",
                    "Acme Audio",
                    "--model",
                    "Voyager 8200",
                    "--hardware-id",
                    "047F:C056",
                    "--hardware-id",
                    "047F:C057,047F:C058@0100-0200",
                    "--version",
                    "2.14",
                    "--version-format",
                    "bcd",
                    "--security-counter",
                    "3",
                    "--protocol",
                    "com.jabra.gnp",
                    "--needs-replug",
                    "--silent-capable",
                    "--no-automatic",
                    "--install-duration",
                    "45",
                    "--urgency",
                    "critical",
                    "--notes",
                    "Fixes echo.\nAnd more.",
                    "--file-name",
                    "fw.bin",
                    "--require-suffix-bcd",
                    "--product-family",
                    "Voyager",
                    "--format",
                    "dfu",
                ],
                &[
                    ("vendor", "Acme Audio"),
                    ("model", "Voyager 8200"),
                    ("hardware-id", "047F:C056"),
                    ("hardware-id", "047F:C057,047F:C058@0100-0200"),
                    ("version", "2.14"),
                    ("version-format", "bcd"),
                    ("security-counter", "3"),
                    ("protocol", "com.jabra.gnp"),
                    ("needs-replug", ""),
                    ("silent-capable", "true"),
                    ("no-automatic", "true"),
                    ("install-duration", "45"),
                    ("urgency", "critical"),
                    ("notes", "Fixes echo.\nAnd more."),
                    ("file-name", "fw.bin"),
                    ("require-suffix-bcd", ""),
                    ("product-family", "Voyager"),
                    ("format", "dfu"),
                ],
            ),
            (
                &["--version", "1.0", "--urgency", "LOW"],
                &[
                    ("version", "1.0"),
                    ("urgency", "LOW"),
                    ("needs-replug", "false"),
                ],
            ),
        ];
        for (argv, query) in table {
            let cli = Cli::try_parse_from(std::iter::once("import").chain(argv.iter().copied()))
                .unwrap_or_else(|e| panic!("{argv:?}: {e}"));
            let from_query = ImportFlags::from_query(&pairs(query)).unwrap();
            assert_eq!(from_query, cli.flags, "{query:?}");
            assert_eq!(
                format!("{:?}", from_query.options()),
                format!("{:?}", cli.flags.options())
            );
        }
        let full = ImportFlags::from_query(&pairs(table[1].1))
            .unwrap()
            .options();
        assert_eq!(full.hardware_ids.len(), 3);
        assert_eq!(full.hardware_ids[2].bcd_range, Some((0x0100, 0x0200)));
        assert_eq!(
            (
                full.needs_replug,
                full.silent_capable,
                full.automatic_capable
            ),
            (Some(true), Some(true), Some(false))
        );
        let none = ImportFlags::default().options();
        assert_eq!(
            (
                none.needs_replug,
                none.silent_capable,
                none.automatic_capable
            ),
            (None, None, None)
        );
    }

    /// Every way a query can be wrong, refused as what it is; values the
    /// command line refuses are refused here too.
    #[test]
    fn bad_queries_are_refused() {
        let table: &[(&[(&str, &str)], &str)] = &[
            (&[("hardware-id", "047F")], "bad hardware id"),
            (&[("hardware-id", "047F:C056,")], "bad hardware id"),
            (&[("hardware-id", "047F:C056@0200-0100")], "bad hardware id"),
            (&[("hardware-id", "12345:C056")], "bad hardware id"),
            (&[("hardware-id", "")], "bad hardware id"),
            (&[("security-counter", "-1")], "security-counter"),
            (&[("security-counter", "99999999999")], "security-counter"),
            (&[("install-duration", "1e3")], "install-duration"),
            (
                &[("urgency", "urgent")],
                "not low, medium, high or critical",
            ),
            (&[("version-format", "roman")], "unknown version format"),
            (&[("format", "zip")], "is not raw, dfu, dfuse or cab"),
            (&[("needs-replug", "yes")], "is not true or false"),
            (&[("version", "1"), ("version", "2")], "more than once"),
            (
                &[("needs-replug", ""), ("needs-replug", "")],
                "more than once",
            ),
            (
                &[("filename", "fw.bin")],
                "unknown query parameter \"filename\"",
            ),
            (&[("--vendor", "x")], "unknown query parameter"),
            (&[("file_name", "fw.bin")], "unknown query parameter"),
            (&[("help", "")], "unknown query parameter"),
        ];
        for (query, want) in table {
            let err = ImportFlags::from_query(&pairs(query)).unwrap_err();
            assert!(err.to_string().contains(want), "{query:?}: {err}");
            // The command line refuses the same values.
            let argv: Vec<String> = query
                .iter()
                .flat_map(|(k, v)| {
                    if v.is_empty() {
                        vec![format!("--{k}")]
                    } else {
                        vec![format!("--{k}={v}")]
                    }
                })
                .collect();
            let known = query
                .iter()
                .all(|(k, _)| QUERY.iter().any(|(n, _, _)| n == k));
            let is_bool_value = query.iter().any(|(k, v)| {
                QUERY.iter().any(|(n, t, _)| n == k && *t == "boolean") && !v.is_empty()
            });
            if known && !is_bool_value {
                assert!(
                    Cli::try_parse_from(std::iter::once("import".to_owned()).chain(argv)).is_err(),
                    "{query:?} parses as flags"
                );
            }
        }
        let long = "x".repeat(500);
        let err = ImportFlags::from_query(&pairs(&[(&long, "v")])).unwrap_err();
        assert!(err.to_string().len() < 400, "{err}");
    }
}
