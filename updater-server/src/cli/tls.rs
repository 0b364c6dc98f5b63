//! `updater-server tls …`: certificates for a first run.

use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::Datelike;
use clap::Subcommand;

/// TLS commands.
#[derive(Debug, Subcommand)]
pub enum TlsCommand {
    /// Generate a self-signed certificate (valid one year) and its key:
    /// `<out>/cert.pem` and `<out>/key.pem` (mode 0600).
    SelfSigned {
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Host names or IP addresses the certificate is for (repeatable;
        /// default: localhost, 127.0.0.1 and ::1).
        #[arg(long = "host")]
        hosts: Vec<String>,
    },
}

/// Runs a TLS command.
pub(super) fn run(command: TlsCommand) -> anyhow::Result<()> {
    match command {
        TlsCommand::SelfSigned { out, hosts } => {
            let hosts = if hosts.is_empty() {
                vec!["localhost".into(), "127.0.0.1".into(), "::1".into()]
            } else {
                hosts
            };
            let (cert, key) = self_signed(&hosts, chrono::Utc::now())?;
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            write(&out.join("cert.pem"), cert.as_bytes(), 0o644)?;
            write(&out.join("key.pem"), key.as_bytes(), 0o600)?;
            println!("certificate: {}", out.join("cert.pem").display());
            println!("key:         {}", out.join("key.pem").display());
            println!("hosts:       {}", hosts.join(", "));
        }
    }
    Ok(())
}

/// A self-signed certificate for `hosts` valid from `now` for one year, and
/// its ECDSA P-256 key, both PEM.
pub(crate) fn self_signed(
    hosts: &[String],
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<(String, String)> {
    let mut params = rcgen::CertificateParams::new(hosts.to_vec()).context("invalid host name")?;
    let start = now - chrono::TimeDelta::days(1);
    let end = now + chrono::TimeDelta::days(365);
    params.not_before = rcgen::date_time_ymd(start.year(), start.month() as u8, start.day() as u8);
    params.not_after = rcgen::date_time_ymd(end.year(), end.month() as u8, end.day() as u8);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, hosts[0].clone());
    let key = rcgen::KeyPair::generate().context("generating the key")?;
    let cert = params
        .self_signed(&key)
        .context("signing the certificate")?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn write(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = opts
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    std::io::Write::write_all(&mut f, bytes)?;
    f.sync_all()?;
    Ok(())
}
