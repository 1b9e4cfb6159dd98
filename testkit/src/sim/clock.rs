//! The simulator's clock: wall time by default, but tests can freeze it, speed it
//! up or step it, so an hour of traffic against 3600 s tokens runs in seconds
//! without sleeping.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug)]
struct Anchor {
    real: Instant,
    sim_ms: i64,
    /// Simulated milliseconds per real millisecond; 0 freezes the clock.
    speed: f64,
}

/// A shared, adjustable epoch-millisecond clock.
#[derive(Debug)]
pub struct SimClock {
    anchor: Mutex<Anchor>,
}

impl Default for SimClock {
    fn default() -> Self {
        Self::real_time()
    }
}

fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl SimClock {
    /// Follows the wall clock at normal speed.
    pub fn real_time() -> Self {
        Self::with(wall_ms(), 1.0)
    }

    /// Frozen at `epoch_ms`; only [`SimClock::advance`] moves it.
    pub fn frozen_at(epoch_ms: i64) -> Self {
        Self::with(epoch_ms, 0.0)
    }

    fn with(sim_ms: i64, speed: f64) -> Self {
        Self {
            anchor: Mutex::new(Anchor {
                real: Instant::now(),
                sim_ms,
                speed,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Anchor> {
        self.anchor.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn read(a: &Anchor) -> i64 {
        a.sim_ms + (a.real.elapsed().as_secs_f64() * 1000.0 * a.speed) as i64
    }

    /// Current simulated time, epoch milliseconds.
    pub fn now_ms(&self) -> i64 {
        Self::read(&self.lock())
    }

    /// Moves simulated time forward at once.
    pub fn advance(&self, by: Duration) {
        let mut a = self.lock();
        let now = Self::read(&a);
        a.sim_ms = now + by.as_millis() as i64;
        a.real = Instant::now();
    }

    /// Changes the speed from now on (1.0 = wall speed, 60.0 = a minute per second, 0 = frozen).
    pub fn set_speed(&self, speed: f64) {
        let mut a = self.lock();
        let now = Self::read(&a);
        a.sim_ms = now;
        a.real = Instant::now();
        a.speed = speed.max(0.0);
    }

    pub fn speed(&self) -> f64 {
        self.lock().speed
    }
}

impl lambda_support::Clock for SimClock {
    fn now_ms(&self) -> i64 {
        SimClock::now_ms(self)
    }
}

impl SimClock {
    /// Moves simulated time forward to `epoch_ms`; never backwards.
    pub fn advance_to(&self, epoch_ms: i64) {
        let mut a = self.lock();
        let now = Self::read(&a);
        if epoch_ms > now {
            a.sim_ms = epoch_ms;
            a.real = Instant::now();
        }
    }
}
