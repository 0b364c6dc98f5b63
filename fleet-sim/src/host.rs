//! One simulated workstation: the real agent library (enrollment, daemon
//! loop, check-in, pipeline, event spool) over its own state directory and
//! a virtual USB bus, reading the world's clock.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use catalog::checkin::UserReport;
use chrono::{DateTime, Duration, Utc};
use test_devices::{DeviceId, FirmwareVersion, SimDevice, VirtualBus};
use update_agent::agent::{AgentCore, SimulatedHost};
use update_agent::config::InstallerParams;
use update_agent::daemon::{Daemon, Timings};
use update_agent::devices::SimDevices;
use update_agent::enroll::{enroll, EnrollOptions};
use update_agent::prompts::{Decision, Prompt};
use update_agent::schedule::windows::{fleet_offset, DEFAULT_WINDOW_SPREAD};
use update_agent::state::State;

use crate::clock::FleetClock;
use crate::firmware::{Model, FACTORY_VERSION};

/// What a host is made of.
#[derive(Debug, Clone)]
pub struct HostSpec {
    /// Host name (also the machine fingerprint's seed).
    pub name: String,
    /// The logged-in account.
    pub user: String,
    /// The attached models.
    pub models: Vec<Model>,
}

/// Where the tenant's agents enroll.
#[derive(Debug, Clone)]
pub struct Enrollment {
    /// The server's base URL.
    pub server_url: String,
    /// Tenant id.
    pub tenant: String,
    /// Enrollment token.
    pub token: String,
}

/// A simulated workstation with its agent.
#[derive(Debug)]
pub struct SimHost {
    spec: HostSpec,
    state_dir: PathBuf,
    bus: VirtualBus,
    devices: Vec<(DeviceId, Model)>,
    daemon: Daemon,
    next_wake: DateTime<Utc>,
}

impl SimHost {
    /// Enrolls a new host under `dir/<name>` and starts its daemon at the
    /// clock's now; its agent talks to the server over `http` (one client,
    /// one connection pool, shared by the simulated hosts of a process).
    pub fn enroll(
        dir: &Path,
        spec: HostSpec,
        enrollment: &Enrollment,
        http: &reqwest::blocking::Client,
        clock: &FleetClock,
        timings: Timings,
        seed: u64,
    ) -> anyhow::Result<Self> {
        let state_dir = dir.join(&spec.name);
        std::fs::create_dir_all(&state_dir)
            .with_context(|| format!("creating {}", state_dir.display()))?;
        let enrolled = enroll(
            &state_dir,
            &EnrollOptions {
                params: InstallerParams {
                    tenant_id: enrollment.tenant.clone(),
                    server_url: enrollment.server_url.clone(),
                    tenant_token: enrollment.token.clone(),
                    catalog_root_sha256: None,
                    server_cert_sha256: None,
                },
                ca_cert: None,
                machine_fingerprint: format!("fleet-sim.{}", spec.name),
                hostname: spec.name.clone(),
                os: "linux".into(),
            },
            clock.now(),
        )
        .with_context(|| format!("enrolling {}", spec.name))?;
        let bus = VirtualBus::new();
        let mut devices = Vec::new();
        for (i, m) in spec.models.iter().enumerate() {
            let serial = format!(
                "{}-{}-{i}",
                m.device.serial.as_deref().unwrap_or("SN"),
                spec.name
            );
            let id = bus.attach(SimDevice::new(
                m.device
                    .clone()
                    .with_serial(&serial)
                    .with_version(FACTORY_VERSION),
            ));
            devices.push((id, m.clone()));
        }
        let sim = SimDevices::new(bus.clone());
        let state = Arc::new(State::open_in(&state_dir)?);
        let core = AgentCore::open_with_http(
            &state_dir,
            state.clone(),
            sim.clone(),
            http.clone(),
            dfu::host::FlashOptions {
                quirks: test_devices::profile::quirk_table(),
                ..Default::default()
            },
        )?
        .with_simulated_host(SimulatedHost {
            hostname: spec.name.clone(),
            users: vec![UserReport {
                account: spec.user.clone(),
                display_name: None,
            }],
        });
        let mut seed_bytes = [0u8; 16];
        seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
        // Spread over the fleet before each window, as the real daemon does.
        let offset = fleet_offset(&enrolled.system_id, DEFAULT_WINDOW_SPREAD);
        let daemon = Daemon::new(
            state,
            Box::new(sim),
            clock.for_agents(),
            Box::new(core),
            timings,
            seed_bytes,
        )
        .with_window_offset(offset);
        Ok(Self {
            spec,
            state_dir,
            bus,
            devices,
            daemon,
            next_wake: clock.now(),
        })
    }

    /// Host name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The logged-in account.
    pub fn user(&self) -> &str {
        &self.spec.user
    }

    /// The agent's state directory.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The agent's state.
    pub fn state(&self) -> &State {
        self.daemon.state()
    }

    /// The virtual bus (to plug, unplug, start a call).
    pub fn bus(&self) -> &VirtualBus {
        &self.bus
    }

    /// The attached devices and their models.
    pub fn devices(&self) -> &[(DeviceId, Model)] {
        &self.devices
    }

    /// The firmware each device runs now (`None`: no valid application).
    pub fn versions(&self) -> Vec<(Model, Option<FirmwareVersion>)> {
        self.devices
            .iter()
            .map(|(id, m)| {
                (
                    m.clone(),
                    self.bus
                        .with_device(*id, |d| d.firmware_version())
                        .flatten(),
                )
            })
            .collect()
    }

    /// The prompts the agent shows its user now.
    pub fn prompts(&self) -> anyhow::Result<Vec<Prompt>> {
        Ok(self.state().shown_prompts()?)
    }

    /// The user decides on prompt `id` (as `update-agent accept|decline|defer`
    /// does over the control socket); the agent acts at once.
    pub fn decide(
        &mut self,
        id: &str,
        decision: Decision,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        self.state().decide(id, decision, now)?;
        self.daemon.request_act();
        self.next_wake = now;
        Ok(())
    }

    /// When the agent wants to run next.
    pub fn next_wake(&self) -> DateTime<Utc> {
        self.next_wake
    }

    /// Runs the agent if it is due at `now` (the clock must read `now`).
    pub fn run_due(&mut self, now: DateTime<Utc>) -> anyhow::Result<()> {
        if self.next_wake <= now {
            let next = self.daemon.tick()?;
            // A daemon never asks to be woken in the past; a minimum step
            // keeps a confused schedule from spinning the simulation.
            self.next_wake = next.max(now + Duration::seconds(1));
        }
        Ok(())
    }
}
