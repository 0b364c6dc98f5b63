//! A fleet of real binaries on one accelerated clock: an `updater-server
//! serve --simulated-clock` process and `update-agent run` processes whose
//! `[simulated.clock]` has the same values, so a night of maintenance
//! windows passes in seconds while every byte goes over loopback HTTP.
//!
//! Simulated dates lie before the real date on purpose: the admin CLI signs
//! catalog metadata on the real clock, and metadata signed "later" than the
//! simulated now is valid for the agents (TUF checks expiry, not issue
//! time), while metadata signed on the real clock would look expired to a
//! simulation running months ahead.
//!
//! Nothing here sleeps for synchronisation: [`SimFleet::wait_until`] polls a
//! condition and fails once the simulated clock passes a deadline.

use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use catalog::sim_clock::AcceleratedTime;
use chrono::{DateTime, Utc};
use fleet_sim::firmware::{hardware_id, models, vendor_file, Model};
use serde_json::{json, Value};
use test_devices::{DeviceStore, FirmwareVersion};

use crate::balancer::Balancer;
use crate::{agent_command, server_cli, tenant_with_admin, text, Admin, Server, Tenant};

/// The admin every [`SimFleet`] tenant has.
pub const ADMIN_EMAIL: &str = "it@scenario.example";
const ADMIN_PASSWORD: &str = "scenario password 1";
/// Sessions outlive any simulated night (an hour of simulated idle time is
/// a few real seconds).
const SESSION_SECS: &str = "31536000";
/// Agents check in every simulated hour (a few real seconds).
const POLL_SECS: &str = "3600";

/// The model of the fleet-sim table named by its profile.
pub fn model(profile: &str) -> Model {
    models()
        .into_iter()
        .find(|m| m.profile == profile)
        .unwrap_or_else(|| panic!("no model {profile}"))
}

/// A UTC time from RFC 3339 text.
pub fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .with_timezone(&Utc)
}

/// A server process and its tenant on an accelerated clock.
#[derive(Debug)]
pub struct SimFleet {
    dir: PathBuf,
    data: PathBuf,
    clock: AcceleratedTime,
    /// The server nodes, `None` while killed; their addresses stay the same
    /// across restarts.
    nodes: Vec<Option<Server>>,
    listens: Vec<String>,
    /// nginx in front of the nodes when there are several.
    balancer: Option<Balancer>,
    /// The first tenant.
    pub tenant: Tenant,
    admin: OnceCell<Admin>,
}

impl SimFleet {
    /// A server data directory in `dir` holding firmware `versions` of
    /// every fleet-sim model and one tenant, served from simulated time
    /// `start` on, `speed` times faster than real time.
    pub fn start(
        dir: &Path,
        start: DateTime<Utc>,
        speed: u32,
        versions: &[FirmwareVersion],
    ) -> Self {
        Self::start_nodes(dir, start, speed, versions, 1)
    }

    /// [`SimFleet::start`] with `nodes` server processes on the one data
    /// directory (with more than one, the test binary keeps the records in
    /// PostgreSQL: [`crate::use_postgres_store`]) behind an nginx load
    /// balancer, which is then the address agents and admins use.
    pub fn start_nodes(
        dir: &Path,
        start: DateTime<Utc>,
        speed: u32,
        versions: &[FirmwareVersion],
        nodes: usize,
    ) -> Self {
        assert!(nodes >= 1, "at least one node");
        let data = dir.join("server");
        for v in versions {
            for m in models() {
                import(dir, &data, &m, *v, &v.to_string());
            }
        }
        let tenant = new_tenant(&data, "Scenario Corp");
        let clock = AcceleratedTime::new(start, Utc::now(), speed).expect("speed in range");
        let mut fleet = Self {
            dir: dir.to_owned(),
            data,
            clock,
            nodes: (0..nodes).map(|_| None).collect(),
            listens: vec!["127.0.0.1:0".into(); nodes],
            balancer: None,
            tenant,
            admin: OnceCell::new(),
        };
        for node in 0..nodes {
            fleet.start_node(node);
        }
        if nodes > 1 {
            fleet.balancer = Some(Balancer::start(&dir.join("balancer"), &fleet.listens));
        }
        fleet
    }

    fn start_node(&mut self, node: usize) {
        let clock = self.clock.to_string();
        let server = Server::start_with(
            &self.data,
            &[
                "--listen",
                &self.listens[node],
                "--simulated-clock",
                &clock,
                "--session-idle-secs",
                SESSION_SECS,
                "--session-max-secs",
                SESSION_SECS,
            ],
        );
        self.listens[node] = server
            .base
            .strip_prefix("http://")
            .expect("plain HTTP on loopback")
            .to_owned();
        self.nodes[node] = Some(server);
    }

    /// `http://127.0.0.1:PORT` (the same across restarts): the balancer's
    /// address when there are several nodes, else the server's.
    pub fn base(&self) -> String {
        match &self.balancer {
            Some(b) => b.base.clone(),
            None => format!("http://{}", self.listens[0]),
        }
    }

    /// The address of server node `node` itself.
    pub fn node_base(&self, node: usize) -> String {
        format!("http://{}", self.listens[node])
    }

    /// The load balancer in front of the nodes, when there are several.
    pub fn balancer(&self) -> Option<&Balancer> {
        self.balancer.as_ref()
    }

    /// The server's data directory.
    pub fn data(&self) -> &Path {
        &self.data
    }

    /// The shared clock.
    pub fn clock(&self) -> AcceleratedTime {
        self.clock
    }

    /// Simulated now.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Kills the server with SIGKILL (no shutdown of any kind).
    pub fn kill_server(&mut self) {
        self.kill_node(0);
    }

    /// Starts the server again on the same address.
    pub fn restart_server(&mut self) {
        self.restart_node(0);
    }

    /// Kills server node `node` with SIGKILL.
    pub fn kill_node(&mut self, node: usize) {
        drop(self.nodes[node].take());
    }

    /// Starts server node `node` again on its address.
    pub fn restart_node(&mut self, node: usize) {
        assert!(self.nodes[node].is_none(), "node {node} is running");
        self.start_node(node);
    }

    /// Imports `version` of `profile`'s model with the admin CLI (also while
    /// the server runs, as an admin would).
    pub fn import(&self, profile: &str, version: FirmwareVersion) {
        import(
            &self.dir,
            &self.data,
            &model(profile),
            version,
            &version.to_string(),
        );
    }

    /// Imports a broken release of `profile`'s model: the image of `image`
    /// (which the device accepts, then boots and reports), catalogued as
    /// version `label` — a device flashed with it never comes back with
    /// `label`.
    pub fn import_mislabelled(&self, profile: &str, image: FirmwareVersion, label: &str) {
        import(&self.dir, &self.data, &model(profile), image, label);
    }

    /// The first tenant's admin over the API (logged in at first use).
    pub fn admin(&self) -> &Admin {
        self.admin.get_or_init(|| self.admin_of(&self.tenant))
    }

    /// Another tenant, with an admin of the same e-mail and password.
    pub fn add_tenant(&self, name: &str) -> Tenant {
        new_tenant(&self.data, name)
    }

    /// A fresh login of `tenant`'s admin.
    pub fn admin_of(&self, tenant: &Tenant) -> Admin {
        login(&self.base(), &tenant.id)
    }

    /// Creates a firmware policy in the first tenant for `profile`'s model
    /// on the latest version; `extra` adds or replaces fields.
    pub fn policy(&self, profile: &str, deployment: &str, extra: Value) -> Value {
        self.policy_in(self.admin(), profile, deployment, extra)
    }

    /// [`Self::policy`] through `admin`.
    pub fn policy_in(&self, admin: &Admin, profile: &str, deployment: &str, extra: Value) -> Value {
        let mut body = json!({
            "name": format!("{profile} {deployment}"),
            "model": hardware_id(&model(profile)).to_string(),
            "version": "latest",
            "deployment": deployment,
            "enabled": true,
        });
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        admin.post("policies/firmware", &body)
    }

    /// A new agent enrolled in the first tenant (not yet running) named
    /// `name`, whose simulated bus holds `devices` as `(profile, serial)`,
    /// logged in as `user`. It checks in every simulated hour (the
    /// tenant's setting).
    pub fn agent(&self, name: &str, user: &str, devices: &[(&str, &str)]) -> SimAgent {
        self.agent_in(&self.tenant, name, user, devices)
    }

    /// [`Self::agent`] in `tenant`.
    pub fn agent_in(
        &self,
        tenant: &Tenant,
        name: &str,
        user: &str,
        devices: &[(&str, &str)],
    ) -> SimAgent {
        let root = self.dir.join("agents").join(name);
        let agent = SimAgent {
            config: root.join("agent.toml"),
            state: root.join("state"),
            devices: root.join("devices"),
            logs: root.clone(),
            root,
            user: user.to_owned(),
            child: None,
            runs: 0,
        };
        fs::create_dir_all(&agent.devices).expect("agent dirs");
        let mut config = format!(
            "server_url = \"{}\"\nbackend = \"simulated\"\n\
             poll_interval_secs = 3600\nscan_interval_secs = 600\n\n\
             [simulated]\nstate_dir = \"{}\"\n\n[simulated.clock]\nstart = \"{}\"\n\
             real_start = \"{}\"\nspeed = {}\n",
            self.base(),
            agent.devices.display(),
            self.clock.start().to_rfc3339(),
            self.clock.real_start().to_rfc3339(),
            self.clock.speed(),
        );
        for (profile, serial) in devices {
            config.push_str(&format!(
                "\n[[simulated.devices]]\nprofile = \"{profile}\"\nserial = \"{serial}\"\n"
            ));
        }
        fs::write(&agent.config, config).expect("write agent config");
        let out = agent
            .command(&["enroll", "--tenant-id", &tenant.id])
            .env("TENANT_TOKEN", &tenant.enrollment_token)
            .output()
            .expect("run update-agent enroll");
        assert!(out.status.success(), "enroll {name}: {}", text(&out.stderr));
        agent
    }

    /// Polls `f` until it returns a value; fails once the simulated clock
    /// passes `deadline` (the condition's last state goes in the message).
    pub fn wait_until<T>(
        &self,
        what: &str,
        deadline: DateTime<Utc>,
        mut f: impl FnMut() -> Result<T, String>,
    ) -> T {
        loop {
            let past = self.now() > deadline;
            match f() {
                Ok(v) => return v,
                Err(why) if past => panic!("{what}: not by {deadline} (simulated): {why}"),
                Err(_) => {}
            }
            // Polling costs a request or a directory read; a real
            // millisecond is about a simulated second at usual speeds.
            std::thread::park_timeout(std::time::Duration::from_millis(20));
        }
    }

    /// Starts one agent per name `n` (user `user-n`, one `profile` device
    /// with serial `SN-n`).
    pub fn start_desks<S: AsRef<str>>(&self, names: &[S], profile: &str) -> Vec<SimAgent> {
        names
            .iter()
            .map(|n| {
                let n = n.as_ref();
                let mut a = self.agent(n, &format!("user-{n}"), &[(profile, &format!("SN-{n}"))]);
                a.start();
                a
            })
            .collect()
    }

    /// Waits until the inventory holds `n` devices (every agent has
    /// checked its devices in), for at most two simulated hours.
    pub fn wait_for_inventory(&self, n: usize) {
        self.wait_until(
            &format!("{n} devices in the inventory"),
            self.now() + chrono::Duration::hours(2),
            || {
                let count = self.admin().get("devices").as_array().map_or(0, Vec::len);
                if count >= n {
                    Ok(())
                } else {
                    Err(format!("{count} devices"))
                }
            },
        );
    }

    /// `GET …/rollouts/{id}/status` as the scenario admin.
    pub fn rollout_status(&self, id: &str) -> Value {
        self.admin().get(&format!("rollouts/{id}/status"))
    }

    /// Waits until the update history holds `n` devices with a successful
    /// install, and returns the installs.
    pub fn wait_for_installs(
        &self,
        n: usize,
        deadline: DateTime<Utc>,
    ) -> BTreeMap<String, Vec<DateTime<Utc>>> {
        self.wait_until(&format!("{n} installs reported"), deadline, || {
            let i = self.installs();
            if i.len() >= n {
                Ok(i)
            } else {
                Err(format!("{i:?}"))
            }
        })
    }

    /// Lets simulated time pass until `t` (the scenario's own time, not a
    /// stand-in for waiting on something).
    pub fn pass_time_until(&self, t: DateTime<Utc>) {
        self.wait_until("time to pass", t + chrono::Duration::hours(1), || {
            if self.now() >= t {
                Ok(())
            } else {
                Err("not yet".into())
            }
        });
    }

    /// Successful installs per device (the update history's device name),
    /// with their simulated times.
    pub fn installs(&self) -> BTreeMap<String, Vec<DateTime<Utc>>> {
        installs(self.admin())
    }

    /// The update history records of the device whose serial is `serial`,
    /// in the order the server stored them.
    pub fn history(&self, serial: &str) -> Vec<Value> {
        let suffix = format!("/serial/{serial}");
        self.admin()
            .all("update-history")
            .into_iter()
            .filter(|r| r["device"].as_str().is_some_and(|d| d.ends_with(&suffix)))
            .collect()
    }

    /// The update state of the device whose serial is `serial` as its host
    /// reported it at its last check-in (`phase`, the agent's `message`),
    /// from `hosts`; `None` before any report of one.
    pub fn update_state(&self, serial: &str) -> Option<Value> {
        let suffix = format!("/serial/{serial}");
        self.admin()
            .get("hosts")
            .as_array()?
            .iter()
            .filter_map(|h| h["update_states"].as_array())
            .flatten()
            .find(|s| s["device"].as_str().is_some_and(|d| d.ends_with(&suffix)))
            .cloned()
    }

    /// The Policy Compliance row of the device whose serial is `serial`:
    /// where it stands as its host's last check-in reported it (`status`,
    /// and the agent's reason in `detail`). `None` while the report has no
    /// row for it.
    pub fn compliance(&self, serial: &str) -> Option<Value> {
        self.admin().get("reports/compliance")["rows"]
            .as_array()?
            .iter()
            .find(|r| r["serial"] == serial)
            .cloned()
    }
}

/// Successful installs per device in `admin`'s tenant.
pub fn installs(admin: &Admin) -> BTreeMap<String, Vec<DateTime<Utc>>> {
    let mut out: BTreeMap<String, Vec<DateTime<Utc>>> = BTreeMap::new();
    for r in admin.all("update-history") {
        if r["outcome"] == "succeeded" {
            out.entry(r["device"].as_str().unwrap_or_default().to_owned())
                .or_default()
                .push(at(r["at"].as_str().unwrap_or_default()));
        }
    }
    out
}

/// A tenant with the scenario admin whose agents check in every simulated
/// hour (the server's setting wins over the agent's own interval).
fn new_tenant(data: &Path, name: &str) -> Tenant {
    let tenant = tenant_with_admin(data, name, ADMIN_EMAIL, ADMIN_PASSWORD);
    server_cli(
        data,
        &[
            "settings",
            "set",
            "--tenant",
            &tenant.id,
            "--poll-interval-secs",
            POLL_SECS,
        ],
        None,
    );
    tenant
}

/// Writes `model`'s vendor file at `version` and imports it with the CLI
/// as version `label`.
fn import(dir: &Path, data: &Path, m: &Model, version: FirmwareVersion, label: &str) {
    let files = dir.join("vendor-files");
    fs::create_dir_all(&files).expect("vendor files dir");
    let path = files.join(format!("{}-{label}.dfu", m.profile));
    fs::write(&path, vendor_file(m, version).expect("vendor file")).expect("write vendor file");
    let mut args = vec![
        "catalog".to_owned(),
        "import".into(),
        path.display().to_string(),
        "--vendor".into(),
        "Acme Audio".into(),
        "--model".into(),
        m.name.into(),
        "--hardware-id".into(),
        hardware_id(m).to_string(),
        "--version".into(),
        label.to_owned(),
        "--silent-capable".into(),
    ];
    if m.needs_replug() {
        args.push("--needs-replug".into());
    }
    if let Some(family) = &m.device.family {
        args.push("--product-family".into());
        args.push(family.clone());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    server_cli(data, &args, None);
}

fn login(base: &str, tenant: &str) -> Admin {
    Admin::login(base, tenant, ADMIN_EMAIL, ADMIN_PASSWORD)
}

/// One `update-agent` with its own config, state and simulated devices;
/// killed on drop.
#[derive(Debug)]
pub struct SimAgent {
    root: PathBuf,
    config: PathBuf,
    state: PathBuf,
    devices: PathBuf,
    logs: PathBuf,
    user: String,
    child: Option<Child>,
    runs: usize,
}

impl SimAgent {
    /// `update-agent ARGS…` for this agent (as its user).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = agent_command(&self.config, &self.state, args);
        cmd.env("USER", &self.user).env_remove("LOGNAME");
        cmd
    }

    /// Runs `update-agent ARGS…` to completion.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run update-agent")
    }

    /// Where the agent's simulated devices keep their state.
    pub fn devices_dir(&self) -> &Path {
        &self.devices
    }

    /// The agent's directory (config, state, logs).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Starts `update-agent run` (its log goes to `run-N.log`).
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "already running");
        self.runs += 1;
        let log = fs::File::create(self.logs.join(format!("run-{}.log", self.runs)))
            .expect("agent log file");
        let child = self
            .command(&["run"])
            // The events the server acknowledged, by id (debug lines).
            .env("UPDATE_AGENT_LOG", "info,update_agent::events=debug")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start update-agent run");
        self.child = Some(child);
    }

    /// Stops the agent with SIGTERM and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id().to_string();
            let sent = Command::new("kill").args(["-TERM", &pid]).status();
            if !sent.is_ok_and(|s| s.success()) {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }

    /// The firmware version each simulated device would boot, by serial.
    pub fn versions(&self) -> BTreeMap<String, Option<FirmwareVersion>> {
        let store = DeviceStore::open(&self.devices).expect("device store");
        store
            .all()
            .expect("device states")
            .into_iter()
            .map(|(key, snapshot)| {
                // Keys are `VID-PID-SERIAL`.
                let serial = key.splitn(3, '-').nth(2).unwrap_or(&key).to_owned();
                (serial, snapshot.app)
            })
            .collect()
    }

    /// `update-agent status --json` (only while the agent is stopped: the
    /// running daemon holds the state database).
    pub fn status(&self) -> Value {
        assert!(self.child.is_none(), "status needs the agent stopped");
        let out = self.cli(&["status", "--json"]);
        assert!(out.status.success(), "status: {}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("status JSON")
    }

    /// The agent's pending prompts (`update-agent prompts --json`), or why
    /// they could not be asked for (e.g. the daemon's control socket is not
    /// up yet).
    pub fn prompts(&self) -> Result<Vec<Value>, String> {
        let out = self.cli(&["prompts", "--json"]);
        if !out.status.success() {
            return Err(text(&out.stderr));
        }
        serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())
    }

    /// The ids of the events the server acknowledged to this agent, from
    /// its logs (the agent logs each at debug level; [`SimAgent::start`]
    /// turns that on).
    pub fn acknowledged_events(&self) -> Vec<String> {
        self.logs()
            .lines()
            .filter(|l| l.contains("update_agent::events") && l.contains("acknowledged"))
            .filter_map(|l| l.split_whitespace().find_map(|w| w.strip_prefix("event=")))
            .map(str::to_owned)
            .collect()
    }

    /// The text of every log this agent wrote.
    pub fn logs(&self) -> String {
        (1..=self.runs)
            .filter_map(|n| fs::read_to_string(self.logs.join(format!("run-{n}.log"))).ok())
            .collect()
    }
}

impl Drop for SimAgent {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // A failed scenario shows what each agent did (the test harness
        // prints a failing test's output).
        if std::thread::panicking() {
            let logs = self.logs();
            let tail: Vec<&str> = logs.lines().rev().take(80).collect();
            eprintln!("--- {} (last lines) ---", self.root.display());
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}
