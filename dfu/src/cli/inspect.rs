//! `dfu inspect FILE [--json]`.

use std::path::PathBuf;

use dfu::file::{DfuFile, Firmware, ANY};
use serde_json::{json, Value};

use super::{sha256_hex, CliError};

/// Arguments of `dfu inspect`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The .dfu or DfuSe file.
    file: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Parses the file and prints its suffix and content; an invalid file is an
/// error naming the field and offset.
pub(crate) fn run(args: Args) -> Result<(), CliError> {
    let bytes = std::fs::read(&args.file).map_err(|e| CliError::about(&args.file, e))?;
    let file = DfuFile::parse(&bytes).map_err(|e| CliError::about(&args.file, e))?;
    if args.json {
        println!("{:#}", to_json(&file));
    } else {
        print!("{}", to_text(&file));
    }
    Ok(())
}

/// The `--json` form: `format`, `vid`, `pid`, `bcd_device`, `bcd_dfu`,
/// `has_suffix`, then `payload_len` + `payload_sha256` or `targets`.
fn to_json(file: &DfuFile) -> Value {
    let s = &file.suffix;
    let mut out = json!({
        "vid": s.id_vendor,
        "pid": s.id_product,
        "bcd_device": s.bcd_device,
        "bcd_dfu": s.bcd_dfu,
        "has_suffix": s.is_present(),
    });
    match &file.firmware {
        Firmware::Raw(data) => {
            out["format"] = json!("dfu");
            out["payload_len"] = json!(data.len());
            out["payload_sha256"] = json!(sha256_hex(data));
        }
        Firmware::DfuSe(image) => {
            out["format"] = json!("dfuse");
            let targets: Vec<Value> = image
                .targets
                .iter()
                .map(|t| {
                    let elements: Vec<Value> = t
                        .elements
                        .iter()
                        .map(|e| json!({"address": e.address, "size": e.data.len(), "sha256": sha256_hex(&e.data)}))
                        .collect();
                    json!({"alt": t.alt_setting, "name": t.name, "elements": elements})
                })
                .collect();
            out["targets"] = Value::Array(targets);
        }
    }
    out
}

fn id(value: u16) -> String {
    if value == ANY {
        "0xffff (any)".to_owned()
    } else {
        format!("{value:#06x}")
    }
}

fn to_text(file: &DfuFile) -> String {
    let s = &file.suffix;
    let mut out = String::new();
    let format = match &file.firmware {
        Firmware::Raw(_) => "DFU".to_owned(),
        Firmware::DfuSe(image) => format!("DfuSe, {} target(s)", image.targets.len()),
    };
    out += &format!("format:     {format}\n");
    if !s.is_present() {
        out += "suffix:     none (ids default to any)\n";
    }
    out += &format!("vendor:     {}\n", id(s.id_vendor));
    out += &format!("product:    {}\n", id(s.id_product));
    out += &format!("device:     {}\n", id(s.bcd_device));
    out += &format!("bcdDFU:     {:#06x}\n", s.bcd_dfu);
    match &file.firmware {
        Firmware::Raw(data) => {
            out += &format!("payload:    {} bytes\n", data.len());
            out += &format!("sha256:     {}\n", sha256_hex(data));
        }
        Firmware::DfuSe(image) => {
            for (i, t) in image.targets.iter().enumerate() {
                let name = t
                    .name
                    .as_deref()
                    .map(|n| format!(" {n:?}"))
                    .unwrap_or_default();
                out += &format!(
                    "target {i}:   alt {}{name}, {} element(s)\n",
                    t.alt_setting,
                    t.elements.len()
                );
                for e in &t.elements {
                    out += &format!(
                        "  {:#010x}  {:>10} bytes  sha256 {}\n",
                        e.address,
                        e.data.len(),
                        sha256_hex(&e.data)
                    );
                }
            }
        }
    }
    out
}
