//! One accelerated clock for the whole simulated world: the server signs
//! and the agents decide by it, so a night passes in seconds.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use update_agent::clock::{Clock as AgentClock, ManualClock};
use updater_server::auth::Clock as ServerClock;

/// The world's clock. Cloning gives another handle to the same time.
#[derive(Debug, Clone)]
pub struct FleetClock {
    inner: Arc<ManualClock>,
}

impl FleetClock {
    /// A clock standing at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            inner: Arc::new(ManualClock::new(start)),
        }
    }

    /// Now, in the simulated world.
    pub fn now(&self) -> DateTime<Utc> {
        self.inner.now()
    }

    /// Moves the world to `to` (never backwards).
    pub fn set(&self, to: DateTime<Utc>) {
        if to > self.inner.now() {
            self.inner.set(to);
        }
    }

    /// Moves the world forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.set(self.now() + by);
    }

    /// The handle the agents read.
    pub fn for_agents(&self) -> Arc<dyn AgentClock> {
        self.inner.clone()
    }

    /// The handle the server reads.
    pub fn for_server(&self) -> Arc<dyn ServerClock> {
        Arc::new(self.clone())
    }
}

impl ServerClock for FleetClock {
    fn now(&self) -> DateTime<Utc> {
        self.inner.now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_and_agents_read_the_same_time_and_it_never_goes_back() {
        let start = DateTime::parse_from_rfc3339("2026-03-28T18:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let c = FleetClock::new(start);
        let (agents, server) = (c.for_agents(), c.for_server());
        c.advance(Duration::hours(9));
        assert_eq!(agents.now(), start + Duration::hours(9));
        assert_eq!(server.now(), start + Duration::hours(9));
        c.set(start);
        assert_eq!(agents.now(), start + Duration::hours(9));
    }
}
