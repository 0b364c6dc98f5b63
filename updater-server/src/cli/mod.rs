//! The `updater-server` command line: the service and its admin commands.

mod admin;
mod backup;
mod catalog;
mod group;
mod inventory;
mod policy;
mod report;
mod rollout;
mod settings;
mod store;
mod tenant;
mod tls;
mod windows;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ::catalog::Catalog;
use anyhow::{bail, Context};
use chrono::TimeDelta;
use clap::{Parser, Subcommand};

use crate::auth::{AcceleratedClock, Accounts, Clock, SessionPolicy, SystemClock};
use crate::http::{CatalogUploads, Limits, ServeOptions, TlsFiles};
use crate::store::{is_postgres_url, PgStore, RedbStore, Store};

pub use self::admin::AdminCommand;
pub use self::catalog::{CatalogCommand, ImportArgs, KeysCommand};
pub use self::group::GroupCommand;
pub use self::inventory::InventoryCommand;
pub use self::policy::{
    FirmwareCommand, FirmwareFields, PolicyAction, PolicyCommand, SoftwareCommand, SoftwareFields,
};
pub use self::report::ReportArgs;
pub use self::rollout::RolloutCommand;
pub use self::settings::SettingsCommand;
pub use self::store::StoreCommand;
pub use self::tenant::TenantCommand;
pub use self::tls::TlsCommand;

/// Firmware distribution and device update service.
#[derive(Debug, Parser)]
#[command(name = "updater-server", version)]
pub struct Cli {
    /// Data directory: the embedded store (catalog, blobs, keys).
    #[arg(
        long,
        env = "UPDATER_DATA_DIR",
        default_value = "updater-data",
        alias = "data",
        global = true
    )]
    pub data_dir: PathBuf,
    /// Keep the server's records (tenants, accounts, agents, inventory,
    /// events…) in PostgreSQL, `postgres://USER:PASSWORD@HOST:PORT/DB`,
    /// shared by several server nodes (docs/scale.md); give it through the
    /// environment, where `ps` does not show the password. Default: the
    /// embedded store, `<data>/server.redb`.
    #[arg(long, env = "UPDATER_STORE", value_name = "URL", global = true)]
    pub store: Option<String>,
    /// Connections to PostgreSQL this process opens at most.
    #[arg(
        long,
        env = "UPDATER_STORE_CONNECTIONS",
        default_value_t = crate::store::DEFAULT_CONNECTIONS,
        global = true,
        value_parser = clap::builder::TypedValueParser::map(clap::value_parser!(u16).range(1..=1000), usize::from)
    )]
    pub store_connections: usize,
    /// The PostgreSQL schema holding the tables (created if missing), so
    /// that several installations can share a database. Default: the first
    /// schema of the database's search path.
    #[arg(long, env = "UPDATER_STORE_SCHEMA", value_name = "NAME", global = true)]
    pub store_schema: Option<String>,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service on the embedded store (created on first run).
    Serve(ServeArgs),
    /// Seed sample firmware for the simulated devices (`update-agent`'s
    /// `backend = "simulated"` profiles; first run only), then serve.
    Demo {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
    },
    /// The firmware catalog.
    Catalog {
        /// Also look for signing keys (`<role>.pem`) in this directory: an
        /// offline key holder's medium (repeatable; one per holder).
        #[arg(long = "keys", global = true, value_name = "DIR")]
        keys: Vec<PathBuf>,
        /// The catalog command.
        #[command(subcommand)]
        command: CatalogCommand,
    },
    /// Tenants and their enrollment tokens.
    Tenant {
        /// The tenant command.
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Admin accounts.
    Admin {
        /// The admin command.
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Custom user groups.
    Group {
        /// The group command.
        #[command(subcommand)]
        command: GroupCommand,
    },
    /// Firmware and software policies.
    Policy {
        /// The policy command.
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Staged rollouts: waves, thresholds, pause / resume / approve / cancel.
    Rollout {
        /// The rollout command.
        #[command(subcommand)]
        command: RolloutCommand,
    },
    /// Tenant settings: shared / excluded accounts, poll interval, event retention.
    Settings {
        /// The settings command.
        #[command(subcommand)]
        command: SettingsCommand,
    },
    /// The inventory: users, hosts, devices, and deleting them.
    Inventory {
        /// The inventory command.
        #[command(subcommand)]
        command: InventoryCommand,
    },
    /// Copy the data directory (store, catalog, keys) into DEST, consistently,
    /// while a server may be running on it. DEST must not exist or be empty.
    Backup {
        /// The backup directory.
        dest: PathBuf,
    },
    /// Restore a backup into the data directory (`--data-dir`), which must
    /// not exist or be empty; the copy is checked before it is put in place.
    Restore {
        /// The backup directory.
        backup: PathBuf,
    },
    /// The store itself: copy the embedded store into PostgreSQL.
    Store {
        /// The store command.
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// TLS certificates.
    Tls {
        /// The TLS command.
        #[command(subcommand)]
        command: TlsCommand,
    },
    /// Reports (inventory, versions, compliance, distribution, history) as JSON or CSV.
    Report(ReportArgs),
    /// Maintenance windows: preview when a window opens.
    Windows {
        /// The windows command.
        #[command(subcommand)]
        command: windows::WindowsCommand,
    },
}

/// `serve` options.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on. Plain HTTP is only allowed on loopback.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// PEM certificate chain: serve HTTPS (needs --tls-key).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve although the catalog's root key is in the data directory (a
    /// test installation holding every key; whoever reads the data
    /// directory can then sign firmware and a new root). Without it the
    /// server refuses to start with `keys/root.pem` present, and refuses to
    /// create a catalog of its own.
    #[arg(long, env = "UPDATER_ALLOW_ONLINE_ROOT_KEY")]
    pub allow_online_root_key: bool,
    /// Session inactivity timeout in seconds.
    #[arg(
        long,
        env = "UPDATER_SESSION_IDLE_SECS",
        default_value_t = 3600,
        hide = true
    )]
    pub session_idle_secs: u32,
    /// Absolute session lifetime in seconds.
    #[arg(
        long,
        env = "UPDATER_SESSION_MAX_SECS",
        default_value_t = 43200,
        hide = true
    )]
    pub session_max_secs: u32,
    /// Days agent events and update history are kept, for tenants that do
    /// not set their own `event_retention_days` (1 to 36500); unset: kept
    /// indefinitely.
    #[arg(
        long,
        env = "UPDATER_EVENT_RETENTION_DAYS",
        value_parser = |s: &str| s.parse::<u32>().map_err(|e| e.to_string())
            .and_then(crate::events::retention::check_default_days)
    )]
    pub event_retention_days: Option<u32>,
    /// Time limit for producing a response, in seconds.
    #[arg(
        long,
        env = "UPDATER_REQUEST_TIMEOUT_SECS",
        default_value_t = 30,
        hide = true
    )]
    pub request_timeout_secs: u32,
    /// Tenants whose full admins and full-scope API tokens may upload and
    /// remove firmware releases over the API (the catalog is shared by every
    /// tenant); tenant ids, repeatable or comma-separated. Default: none,
    /// the catalog changes only through `catalog import` / `catalog remove`.
    #[arg(long, env = "UPDATER_CATALOG_MANAGERS", value_delimiter = ',')]
    pub catalog_managers: Vec<String>,
    /// Largest firmware upload accepted over the API, in MiB (1 to 65536).
    #[arg(
        long,
        env = "UPDATER_MAX_UPLOAD_MIB",
        default_value_t = crate::http::DEFAULT_MAX_UPLOAD_MIB,
        value_parser = clap::value_parser!(u32).range(1..=65536)
    )]
    pub max_upload_mib: u32,
    /// Simulation hook: run on an accelerated clock, `START,REAL_START,SPEED`
    /// (simulated time START at real time REAL_START, SPEED times faster),
    /// shared with agents whose `[simulated.clock]` has the same values.
    /// Never for a production server.
    #[arg(long, hide = true, value_name = "START,REAL_START,SPEED")]
    pub simulated_clock: Option<::catalog::sim_clock::AcceleratedTime>,
}

/// Where a PostgreSQL store is (`--store`, `--store-schema`,
/// `--store-connections`).
#[derive(Debug, Clone)]
pub struct PostgresStore {
    /// `postgres://…`.
    pub url: String,
    /// The schema of the tables; `None`: the search path's.
    pub schema: Option<String>,
    /// The pool's size.
    pub connections: usize,
}

/// The layout of a data directory, and where its store is.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
    /// A PostgreSQL store instead of the embedded one.
    postgres: Option<PostgresStore>,
}

impl DataDir {
    /// Wraps a data directory path; its store is the embedded one.
    pub fn new(root: PathBuf) -> Self {
        Self {
            root,
            postgres: None,
        }
    }

    /// Keeps the records in a PostgreSQL database (`--store`).
    pub fn with_postgres(mut self, store: PostgresStore) -> anyhow::Result<Self> {
        if !is_postgres_url(&store.url) {
            bail!(
                "--store takes a postgres:// URL (the embedded store is always <data>/server.redb)"
            );
        }
        self.postgres = Some(store);
        Ok(self)
    }

    /// Whether the records are in PostgreSQL rather than the data directory.
    pub fn store_is_postgres(&self) -> bool {
        self.postgres.is_some()
    }

    /// Opens the store: PostgreSQL if `--store` names one, else the
    /// embedded store (created on first use).
    pub fn open_store(&self) -> anyhow::Result<Arc<dyn Store>> {
        Ok(match &self.postgres {
            Some(pg) => Arc::new(PgStore::open(
                &pg.url,
                pg.schema.as_deref(),
                pg.connections,
            )?),
            None => Arc::new(
                RedbStore::open(&self.store_path())
                    .with_context(|| format!("opening {}", self.store_path().display()))?,
            ),
        })
    }

    /// The data directory itself.
    pub fn root(&self) -> &std::path::Path {
        &self.root
    }

    /// `<data>/catalog`.
    pub fn catalog(&self) -> PathBuf {
        self.root.join("catalog")
    }

    /// `<data>/keys`: signing keys, never published.
    pub fn keys(&self) -> PathBuf {
        self.root.join("keys")
    }

    /// `<data>/server.redb`: tenants, admins, sessions, tokens.
    pub fn store_path(&self) -> PathBuf {
        self.root.join("server.redb")
    }

    /// The account service over the embedded store (created on first use).
    pub fn accounts(&self, sessions: SessionPolicy) -> anyhow::Result<Accounts> {
        self.accounts_on(sessions, Arc::new(SystemClock))
    }

    /// [`Self::accounts`] on another clock.
    pub fn accounts_on(
        &self,
        sessions: SessionPolicy,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Accounts> {
        Ok(Accounts::new(
            self.open_store()?,
            clock,
            self.keys(),
            sessions,
        ))
    }

    /// Opens the catalog, creating it (and its keys) on first use.
    pub fn open_catalog(&self, now: chrono::DateTime<chrono::Utc>) -> anyhow::Result<Catalog> {
        Catalog::open_or_init(&self.catalog(), &self.keys(), now)
            .with_context(|| format!("opening the catalog in {}", self.catalog().display()))
    }

    /// Opens an existing catalog.
    pub fn open_existing(&self) -> anyhow::Result<Catalog> {
        Ok(Catalog::open(&self.catalog(), &self.keys())?)
    }
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let mut data = DataDir::new(cli.data_dir);
    if let Some(url) = cli.store {
        data = data.with_postgres(PostgresStore {
            url,
            schema: cli.store_schema.clone(),
            connections: cli.store_connections,
        })?;
    }
    match cli.command {
        Command::Serve(args) => {
            let tls = match (args.tls_cert, args.tls_key) {
                (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
                _ => None,
            };
            if tls.is_none() {
                check_listen(args.listen)?;
            }
            if args.simulated_clock.is_some() && (tls.is_some() || !args.listen.ip().is_loopback())
            {
                bail!(
                    "--simulated-clock is a test hook: only with plain HTTP on a loopback address"
                );
            }
            let clock: Arc<dyn Clock> = match args.simulated_clock {
                Some(t) => {
                    tracing::warn!(clock = %t, "simulation: running on an accelerated clock");
                    Arc::new(AcceleratedClock(t))
                }
                None => Arc::new(SystemClock),
            };
            check_keys_offline(&data, args.allow_online_root_key)?;
            let catalog = data.open_catalog(clock.now())?;
            let accounts = data.accounts_on(
                SessionPolicy {
                    idle: TimeDelta::seconds(args.session_idle_secs.into()),
                    absolute: TimeDelta::seconds(args.session_max_secs.into()),
                },
                clock,
            )?;
            let timeout = Duration::from_secs(args.request_timeout_secs.into());
            let catalog_uploads = CatalogUploads {
                managers: catalog_managers(&accounts, &args.catalog_managers)?,
                max_bytes: u64::from(args.max_upload_mib) << 20,
                idle_timeout: timeout,
            };
            let opts = ServeOptions {
                listen: args.listen,
                tls,
                limits: Limits {
                    timeout,
                    ..Limits::default()
                },
                keys_dir: data.keys(),
                catalog_uploads,
            };
            let retention = args.event_retention_days;
            runtime()?.block_on(async move {
                let pruner =
                    tokio::spawn(crate::events::retention::run(accounts.clone(), retention));
                let served = crate::http::serve(catalog, accounts, opts).await;
                pruner.abort();
                served
            })
        }
        Command::Demo { listen } => {
            check_listen(listen)?;
            let mut catalog = data.open_catalog(chrono::Utc::now())?;
            crate::samples::seed(&mut catalog, chrono::Utc::now())?;
            println!("data directory: {}", data.root.display());
            println!(
                "explore: updater-server --data-dir {} catalog list",
                data.root.display()
            );
            let accounts = data.accounts(SessionPolicy::default())?;
            let opts = ServeOptions {
                listen,
                tls: None,
                limits: Limits::default(),
                keys_dir: data.keys(),
                catalog_uploads: CatalogUploads::default(),
            };
            runtime()?.block_on(crate::http::serve(catalog, accounts, opts))
        }
        Command::Catalog { keys, command } => catalog::run(&data, &keys, command),
        Command::Tenant { command } => tenant::run(&data, command),
        Command::Admin { command } => admin::run(&data, command),
        Command::Group { command } => group::run(&data, command),
        Command::Policy { command } => policy::run(&data, command),
        Command::Rollout { command } => rollout::run(&data, command),
        Command::Settings { command } => settings::run(&data, command),
        Command::Inventory { command } => inventory::run(&data, command),
        Command::Store { command } => store::run(command, cli.store_schema, cli.store_connections),
        Command::Tls { command } => tls::run(command),
        Command::Backup { dest } => backup::backup(&data, &dest),
        Command::Restore { backup } => backup::restore(&data, &backup),
        Command::Windows { command } => windows::run(command),
        Command::Report(args) => report::run(&data, args),
    }
}

/// The serving host holds only the online keys: refuses to serve with the
/// root key in the data directory (or to create a catalog, which would put
/// it there) unless the operator says this is a test installation.
fn check_keys_offline(data: &DataDir, allow_online_root: bool) -> anyhow::Result<()> {
    let root_key = data.keys().join("root.pem");
    let targets_key = data.keys().join("targets.pem");
    let exists = data.catalog().join("repo/metadata/1.root.json").is_file();
    if allow_online_root {
        tracing::warn!(
            "--allow-online-root-key: every signing key may sit on this host; whoever reads {} can sign firmware and a new root. Not for production (docs/security.md, key ceremony)",
            data.keys().display()
        );
        return Ok(());
    }
    if !exists {
        bail!(
            "no catalog in {}: create it with its root and targets keys on a removable medium, `updater-server --data-dir {} catalog keys init --offline <medium>` (docs/security.md, key ceremony); a test installation that holds every key: --allow-online-root-key",
            data.catalog().display(),
            data.root.display()
        );
    }
    if root_key.exists() {
        bail!(
            "{} is on the serving host: whoever steals it can sign a new root and any firmware. Move root.pem (and targets.pem) to offline media and sign with `catalog --keys <medium> …` (docs/security.md, key ceremony), or pass --allow-online-root-key for a test installation",
            root_key.display()
        );
    }
    if targets_key.exists() {
        tracing::warn!(
            key = %targets_key.display(),
            "the targets key is on the serving host: whoever steals it can sign firmware; keep it offline (docs/security.md)"
        );
    }
    Ok(())
}

/// The tenants of `--catalog-managers`, each of which must exist.
fn catalog_managers(accounts: &Accounts, ids: &[String]) -> anyhow::Result<BTreeSet<String>> {
    let mut managers = BTreeSet::new();
    for id in ids.iter().map(|id| id.trim()).filter(|id| !id.is_empty()) {
        if accounts.records().tenant(id)?.is_none() {
            bail!(
                "--catalog-managers: there is no tenant {id:?} (see `updater-server tenant list`)"
            );
        }
        managers.insert(id.to_owned());
    }
    if !managers.is_empty() {
        tracing::info!(tenants = ?managers, "catalog managers may upload and remove releases");
    }
    Ok(managers)
}

fn check_listen(listen: SocketAddr) -> anyhow::Result<()> {
    if !listen.ip().is_loopback() {
        bail!(
            "refusing to serve plain HTTP on {listen}: only loopback addresses are allowed without TLS (--tls-cert/--tls-key)"
        );
    }
    Ok(())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
