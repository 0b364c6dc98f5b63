//! A simulated world: one server with its tenants, on the world's clock.
//! The demo and the scenario tests build on it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{DateTime, Duration, Utc};
use update_agent::daemon::Timings;
use updater_server::store::Role;

use crate::admin::AdminClient;
use crate::clock::FleetClock;
use crate::firmware::import_all;
use crate::host::{Enrollment, HostSpec, SimHost};
use crate::server::InProcessServer;

/// Every tenant's admin e-mail.
pub const ADMIN_EMAIL: &str = "it-admin@demo.example";
/// Every tenant's admin password.
pub const ADMIN_PASSWORD: &str = "fleet demo password";

/// A tenant of the world's server.
#[derive(Debug, Clone)]
pub struct Tenant {
    /// Its id.
    pub id: String,
    /// Where its agents enroll.
    pub enrollment: Enrollment,
}

/// The server, its data directory and the clock.
#[derive(Debug)]
pub struct World {
    dir: PathBuf,
    server: Option<InProcessServer>,
    address: SocketAddr,
    http: reqwest::blocking::Client,
    clock: FleetClock,
    last_refresh: DateTime<Utc>,
    last_evaluation: DateTime<Utc>,
}

impl World {
    /// A server over `dir/server` on a free loopback port, at `start` on
    /// the world's clock.
    pub fn start(dir: &Path, start: DateTime<Utc>) -> anyhow::Result<Self> {
        Self::start_on(dir, start, None)
    }

    /// [`World::start`] with the server on `address` (`None`: a free
    /// loopback port).
    pub fn start_on(
        dir: &Path,
        start: DateTime<Utc>,
        address: Option<std::net::SocketAddr>,
    ) -> anyhow::Result<Self> {
        let clock = FleetClock::new(start);
        let server = InProcessServer::start(&dir.join("server"), &clock, address)?;
        Ok(Self {
            dir: dir.to_owned(),
            address: server.address(),
            server: Some(server),
            http: update_agent::enroll::http_client(None)?,
            clock,
            last_refresh: start,
            last_evaluation: start,
        })
    }

    fn server(&self) -> anyhow::Result<&InProcessServer> {
        self.server.as_ref().context("the server is stopped")
    }

    /// The server's base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Check-in latencies of the running server (since its last start).
    pub fn check_in_latencies(&self) -> anyhow::Result<crate::server::CheckInLatencies> {
        Ok(self.server()?.check_in_latencies().clone())
    }

    /// The server's data directory.
    pub fn server_data(&self) -> PathBuf {
        self.dir.join("server")
    }

    /// The world's clock.
    pub fn clock(&self) -> &FleetClock {
        &self.clock
    }

    /// The catalog the server serves.
    pub fn catalog(&self) -> anyhow::Result<catalog::Catalog> {
        self.server()?.catalog(&self.clock)
    }

    /// Imports every demo model's firmware at `version`.
    pub fn import(&self, version: test_devices::FirmwareVersion) -> anyhow::Result<Vec<String>> {
        let vendor_files = self.dir.join("vendor-files");
        std::fs::create_dir_all(&vendor_files)?;
        let mut catalog = self.server()?.catalog(&self.clock)?;
        import_all(&mut catalog, &vendor_files, version, self.clock.now())
    }

    /// Imports one release of `profile`'s model: `image`'s firmware,
    /// catalogued as `label` (a broken release when they differ; see
    /// [`updater_server::samples::import_one`]).
    pub fn import_release(
        &self,
        profile: &str,
        image: test_devices::FirmwareVersion,
        label: &str,
    ) -> anyhow::Result<String> {
        let model = crate::firmware::models()
            .into_iter()
            .find(|m| m.profile == profile)
            .with_context(|| format!("no model {profile}"))?;
        let vendor_files = self.dir.join("vendor-files");
        std::fs::create_dir_all(&vendor_files)?;
        let mut catalog = self.server()?.catalog(&self.clock)?;
        updater_server::samples::import_one(
            &mut catalog,
            &vendor_files,
            &model,
            image,
            label,
            self.clock.now(),
        )
    }

    /// A tenant with a full admin ([`ADMIN_EMAIL`] / [`ADMIN_PASSWORD`]).
    pub fn create_tenant(&self, name: &str) -> anyhow::Result<Tenant> {
        let accounts = self.server()?.accounts();
        let (tenant, token) = accounts.create_tenant(name)?;
        // The simulated server holds every key: it endorses the tenant's
        // assignment key itself, as `tenant create` does on such a host.
        let endorsement = accounts.assignment_key_endorsement(&tenant.id)?;
        self.server()?
            .catalog(&self.clock)?
            .endorse(&endorsement, self.clock.now())?;
        accounts.create_admin(&tenant.id, ADMIN_EMAIL, Role::Full, true, ADMIN_PASSWORD)?;
        Ok(Tenant {
            enrollment: Enrollment {
                server_url: self.url(),
                tenant: tenant.id.clone(),
                token,
            },
            id: tenant.id,
        })
    }

    /// The tenant's admin, logged in now.
    pub fn admin(&self, tenant: &Tenant) -> anyhow::Result<AdminClient> {
        AdminClient::login(&self.url(), &tenant.id, ADMIN_EMAIL, ADMIN_PASSWORD)
    }

    /// Enrolls hosts under `dir/agents`; host `i` gets jitter seed `seed + i`.
    pub fn enroll(
        &self,
        tenant: &Tenant,
        specs: &[HostSpec],
        timings: Timings,
        seed: u64,
        on_enrolled: &mut dyn FnMut(),
    ) -> anyhow::Result<Vec<SimHost>> {
        let agents = self.dir.join("agents");
        specs
            .iter()
            .zip(seed..)
            .map(|(spec, s)| {
                let h = SimHost::enroll(
                    &agents,
                    spec.clone(),
                    &tenant.enrollment,
                    &self.http,
                    &self.clock,
                    timings,
                    s,
                )?;
                on_enrolled();
                Ok(h)
            })
            .collect()
    }

    /// Keeps the signed timestamp fresh on the accelerated clock (a real
    /// server's refresher does this on the wall clock).
    /// Nothing to do while the server is stopped.
    pub fn refresh_timestamp(&mut self) -> anyhow::Result<()> {
        let now = self.clock.now();
        let Some(server) = &self.server else {
            return Ok(());
        };
        if now - self.last_refresh >= Duration::hours(1) {
            server.catalog(&self.clock)?.refresh_timestamp(now)?;
            self.last_refresh = now;
        }
        Ok(())
    }

    /// Evaluates staged rollouts once a simulated minute has passed since
    /// the last time (a real server's job does this every minute of its
    /// clock). Nothing to do while the server is stopped.
    pub fn evaluate_rollouts(&mut self) -> anyhow::Result<()> {
        let now = self.clock.now();
        let Some(server) = &self.server else {
            return Ok(());
        };
        if now - self.last_evaluation >= Duration::minutes(1) {
            let data = server.data();
            updater_server::fleet::Fleet::new(
                server.accounts().clone(),
                data.join("catalog"),
                data.join("keys"),
            )
            .evaluate_all_rollouts()?;
            self.last_evaluation = now;
        }
        Ok(())
    }

    /// Stops the server (agents see it unreachable until [`Self::restart`]).
    pub fn stop(&mut self) {
        self.server = None;
    }

    /// Starts the server again on the same address and data.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.server = None;
        self.server = Some(InProcessServer::start(
            &self.server_data(),
            &self.clock,
            Some(self.address),
        )?);
        Ok(())
    }
}
