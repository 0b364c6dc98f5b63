//! The simulated fleet on the world's clock: every host whose agent is due
//! runs, the clock jumps to the next wake-up, scenario hooks run between
//! steps. Agents run on a few threads; the server answers on its own.

use chrono::{DateTime, Duration, Utc};

use crate::clock::FleetClock;
use crate::host::SimHost;

/// Hosts and the clock they share.
#[derive(Debug)]
pub struct Fleet {
    hosts: Vec<SimHost>,
    clock: FleetClock,
    threads: usize,
    /// Longest jump of the clock, so hooks see the world often enough.
    max_step: Duration,
}

impl Fleet {
    /// A fleet running its agents on `threads` threads.
    pub fn new(hosts: Vec<SimHost>, clock: FleetClock, threads: usize) -> Self {
        Self {
            hosts,
            clock,
            threads: threads.max(1),
            max_step: Duration::minutes(10),
        }
    }

    /// The hosts.
    pub fn hosts(&self) -> &[SimHost] {
        &self.hosts
    }

    /// The hosts, for scenario actions (plug, unplug, calls).
    pub fn hosts_mut(&mut self) -> &mut [SimHost] {
        &mut self.hosts
    }

    /// The world's clock.
    pub fn clock(&self) -> &FleetClock {
        &self.clock
    }

    /// Runs every due agent at the clock's now, in parallel.
    pub fn step(&mut self) -> anyhow::Result<()> {
        let now = self.clock.now();
        let mut due: Vec<&mut SimHost> = self
            .hosts
            .iter_mut()
            .filter(|h| h.next_wake() <= now)
            .collect();
        if due.is_empty() {
            return Ok(());
        }
        let chunk = due.len().div_ceil(self.threads);
        std::thread::scope(|s| {
            let workers: Vec<_> = due
                .chunks_mut(chunk)
                .map(|hosts| {
                    s.spawn(move || -> anyhow::Result<()> {
                        for h in hosts.iter_mut() {
                            h.run_due(now)?;
                        }
                        Ok(())
                    })
                })
                .collect();
            workers.into_iter().try_for_each(|w| {
                w.join()
                    .map_err(|_| anyhow::anyhow!("an agent thread panicked"))?
            })
        })
    }

    /// Runs the world until `end`; `hook` runs after every step with the
    /// clock's now (scenario actions, progress).
    pub fn run_until(
        &mut self,
        end: DateTime<Utc>,
        hook: &mut dyn FnMut(DateTime<Utc>, &mut Fleet) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        while self.clock.now() < end {
            self.step()?;
            let now = self.clock.now();
            hook(now, self)?;
            let next_wake = self
                .hosts
                .iter()
                .map(SimHost::next_wake)
                .min()
                .unwrap_or(end);
            let next = next_wake
                .min(now + self.max_step)
                .min(end)
                .max(now + Duration::seconds(1));
            self.clock.set(next);
        }
        Ok(())
    }
}
