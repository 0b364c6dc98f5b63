//! `sim-firmware`: writes a vendor firmware file that a simulated device
//! (`update-agent`'s `backend = "simulated"`) accepts, for importing with
//! `updater-server catalog import`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use test_devices::profile::{by_name, ModelProfile, PROFILE_NAMES};
use test_devices::samples::image_file;
use test_devices::FirmwareVersion;

/// Write a firmware file a simulated device accepts.
#[derive(Debug, Parser)]
#[command(name = "sim-firmware")]
struct Cli {
    /// The simulated model (a profile name, as in the agent's
    /// `[[simulated.devices]] profile = …`); `--list` shows them.
    #[arg(long, required_unless_present = "list")]
    profile: Option<String>,
    /// The version the device reports after installing it (MAJOR.MINOR.PATCH).
    #[arg(long, required_unless_present = "list", value_parser = parse_version)]
    version: Option<FirmwareVersion>,
    /// Where to write it (default: PROFILE-VERSION.dfu).
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// List the profile names.
    #[arg(long)]
    list: bool,
}

fn parse_version(text: &str) -> Result<FirmwareVersion, String> {
    let bad =
        || format!("{text:?} is not MAJOR.MINOR.PATCH (e.g. 2.1.0; major and minor up to 255)");
    let mut parts = text.split('.');
    let (Some(ma), Some(mi), Some(pa), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    Ok(FirmwareVersion::new(
        ma.parse().map_err(|_| bad())?,
        mi.parse().map_err(|_| bad())?,
        pa.parse().map_err(|_| bad())?,
    ))
}

/// The `updater-server catalog import` command that describes the file the
/// way the simulated device behaves (the ids come from the DFU suffix).
fn import_command(file: &Path, device: &ModelProfile, version: FirmwareVersion) -> String {
    let mut command = format!(
        "updater-server catalog import {} --vendor \"Acme Audio\" --model \"{}\" --version {version} --silent-capable",
        file.display(),
        device.name
    );
    if device.needs_replug() {
        command.push_str(" --needs-replug");
    }
    if let Some(family) = &device.family {
        command.push_str(&format!(" --product-family {family}"));
    }
    command
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.list {
        for name in PROFILE_NAMES {
            println!("{name}");
        }
        return ExitCode::SUCCESS;
    }
    let (Some(profile), Some(version)) = (cli.profile, cli.version) else {
        eprintln!("sim-firmware: --profile and --version are required (or --list)");
        return ExitCode::from(2);
    };
    let Some(device) = by_name(&profile) else {
        eprintln!(
            "sim-firmware: unknown profile {profile:?}; one of: {}",
            PROFILE_NAMES.join(", ")
        );
        return ExitCode::from(2);
    };
    let bytes = match image_file(&device, device.dfuse.is_some(), version) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("sim-firmware: {e}");
            return ExitCode::FAILURE;
        }
    };
    let output = cli
        .output
        .unwrap_or_else(|| PathBuf::from(format!("{profile}-{version}.dfu")));
    if let Err(e) = std::fs::write(&output, bytes) {
        eprintln!("sim-firmware: {}: {e}", output.display());
        return ExitCode::FAILURE;
    }
    println!(
        "wrote {} for {} ({:04X}:{:04X}), version {version}",
        output.display(),
        device.name,
        device.vendor_id,
        device.runtime_pid
    );
    println!(
        "import it with: {}",
        import_command(&output, &device, version)
    );
    ExitCode::SUCCESS
}
