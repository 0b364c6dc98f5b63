//! `fleet-sim demo`: the product end to end on one machine.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use fleet_sim::demo::{run, DemoOptions, ADMIN_EMAIL, ADMIN_PASSWORD};

#[derive(Debug, Parser)]
#[command(
    name = "fleet-sim",
    version,
    about = "Simulated fleets against a real updater-server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// A pilot night and a company-wide night of silent updates, on an accelerated clock.
    Demo {
        /// Where the server, agents and share are kept (a previous demo's is replaced).
        #[arg(long, default_value = "fleet-demo")]
        data: PathBuf,
        /// Simulated workstations.
        #[arg(long, default_value_t = 200)]
        hosts: usize,
        /// IANA zone of the nightly maintenance window.
        #[arg(long, default_value = "Europe/Berlin")]
        zone: String,
        /// Threads running agents.
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// No progress bars.
        #[arg(long)]
        no_progress: bool,
        /// Serve on this address (default 127.0.0.1:8080) and keep serving
        /// the converged fleet after the story, for the web console.
        #[arg(long, value_name = "ADDRESS", num_args = 0..=1, default_missing_value = "127.0.0.1:8080")]
        serve: Option<std::net::SocketAddr>,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FLEET_SIM_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let Command::Demo {
        data,
        hosts,
        zone,
        threads,
        no_progress,
        serve,
    } = Cli::parse().command;
    let opts = DemoOptions {
        data,
        hosts,
        zone,
        threads,
        progress: !no_progress && std::io::stderr().is_terminal(),
        serve,
    };
    let started = std::time::Instant::now();
    let outcome = match run(&opts) {
        Ok(o) => o,
        Err(e) => {
            eprintln!(
                "fleet-sim demo failed: {}",
                error_report::Report(e.as_ref())
            );
            return ExitCode::FAILURE;
        }
    };
    for (title, csv) in &outcome.reports {
        println!("\n== {title} ==\n{}", csv.trim_end());
    }
    println!("\n== Hosts by kind ==");
    let mut kinds: std::collections::BTreeMap<_, (usize, usize, usize, usize)> = Default::default();
    for h in &outcome.hosts {
        let k = kinds.entry(h.kind).or_default();
        k.0 += 1;
        k.1 += h.updated.0;
        k.2 += h.updated.1;
        k.3 += usize::from(h.unexpected.is_none());
    }
    for (kind, (hosts, done, all, ok)) in kinds {
        println!(
            "{:<32} {hosts:>4} hosts  {done:>4}/{all:<4} devices updated  {ok}/{hosts} as expected",
            kind.label()
        );
    }
    for h in outcome.hosts.iter().filter(|h| h.unexpected.is_some()) {
        println!(
            "UNEXPECTED {} ({}): {}",
            h.host,
            h.kind.label(),
            h.unexpected.as_deref().unwrap_or_default()
        );
    }
    for s in &outcome.staged {
        println!("UNEXPECTED (staged rollouts): {s}");
    }
    let data = outcome.server_data.display();
    println!(
        "\nData: {data} (server), {} (agents)",
        opts.data.join("agents").display()
    );
    println!("Explore: cargo run -p updater-server -- --data-dir {data} catalog list");
    println!("         cargo run -p updater-server -- --data-dir {data} serve   # then log in:");
    println!(
        "         tenant {}  e-mail {ADMIN_EMAIL}  password \"{ADMIN_PASSWORD}\"",
        outcome.tenant
    );
    println!("Finished in {:.1} s", started.elapsed().as_secs_f64());
    let converged = outcome.converged();
    if converged {
        println!("The fleet converged as expected.");
    } else {
        println!("The fleet did NOT converge as expected.");
    }
    if let Some(world) = &outcome.world {
        println!(
            "\nWeb console: {}/console  (the server's clock stands at the end of the story)",
            world.url()
        );
        println!("  sign in with tenant \"Demo Corp\", e-mail {ADMIN_EMAIL}, password \"{ADMIN_PASSWORD}\"");
        println!("  Ctrl-C stops it.");
        loop {
            // Serving happens on the server's own threads until the process is interrupted.
            std::thread::park();
        }
    }
    if converged {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
