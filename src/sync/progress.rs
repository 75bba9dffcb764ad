//! Progress bookkeeping (the EVM syncer's tracker): the rate over a recent window, the ETA,
//! when a report or a persisted record is due. Pure: times are arguments.

use std::collections::VecDeque;

/// The rate is measured over this window.
const RATE_WINDOW_MS: u64 = 10_000;

#[derive(Clone, Debug)]
pub(crate) struct Tracker {
    pub start_height: u64,
    pub started_at_ms: u64,
    /// (time, height) samples over the last [`RATE_WINDOW_MS`].
    samples: VecDeque<(u64, u64)>,
    pub last_report_at: u64,
    pub last_report_height: u64,
    pub last_persist_at: u64,
    pub last_persist_height: u64,
}

impl Tracker {
    pub fn new(start_height: u64, now_ms: u64) -> Self {
        Tracker {
            start_height,
            started_at_ms: now_ms,
            samples: VecDeque::from([(now_ms, start_height)]),
            last_report_at: now_ms,
            last_report_height: start_height,
            last_persist_at: now_ms,
            last_persist_height: start_height,
        }
    }

    /// Records the height reached at `now_ms`.
    pub fn sample(&mut self, now_ms: u64, height: u64) {
        if self
            .samples
            .back()
            .is_none_or(|&(t, h)| t < now_ms || h != height)
        {
            self.samples.push_back((now_ms, height));
        }
        while self.samples.len() > 2
            && self
                .samples
                .front()
                .is_some_and(|&(t, _)| t + RATE_WINDOW_MS < now_ms)
        {
            self.samples.pop_front();
        }
    }

    /// Blocks per second over the window.
    pub fn rate(&self) -> f64 {
        match (self.samples.front(), self.samples.back()) {
            (Some(&(t0, h0)), Some(&(t1, h1))) if t1 > t0 && h1 >= h0 => {
                (h1 - h0) as f64 * 1000.0 / (t1 - t0) as f64
            }
            _ => 0.0,
        }
    }

    /// Time to cover `current..target` at the current rate.
    pub fn eta_ms(&self, current: u64, target: u64) -> Option<u64> {
        let rate = self.rate();
        if current >= target {
            return Some(0);
        }
        (rate > 0.0).then(|| ((target - current) as f64 * 1000.0 / rate).ceil() as u64)
    }

    pub fn percent(&self, current: u64, target: u64) -> f64 {
        if target <= self.start_height {
            return 100.0;
        }
        let done = current.saturating_sub(self.start_height) as f64;
        (done * 100.0 / (target - self.start_height) as f64).min(100.0)
    }

    /// A record is due: `every_blocks` more blocks written since the last one, or
    /// `every_ms` passed and the written height moved.
    pub fn persist_due(&self, now_ms: u64, written: u64, every_blocks: u64, every_ms: u64) -> bool {
        written >= self.last_persist_height.saturating_add(every_blocks)
            || (written != self.last_persist_height
                && now_ms >= self.last_persist_at.saturating_add(every_ms))
    }

    /// When the time-based record falls due, if the written height moved.
    pub fn persist_deadline(&self, written: u64, every_ms: u64) -> Option<u64> {
        (written != self.last_persist_height).then(|| self.last_persist_at.saturating_add(every_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn rate_eta_and_percent_follow_the_samples() {
        let mut t = Tracker::new(100, 0);
        assert_eq!(t.rate(), 0.0);
        assert_eq!(t.eta_ms(100, 1100), None, "no rate, no estimate");
        t.sample(1_000, 200);
        t.sample(2_000, 300);
        assert_eq!(t.rate(), 100.0);
        assert_eq!(t.eta_ms(300, 1100), Some(8_000));
        assert_eq!(t.percent(300, 1100), 20.0);
        assert_eq!(t.eta_ms(1100, 1100), Some(0));
        // Old samples leave the window: the rate follows the recent pace.
        t.sample(30_000, 400);
        t.sample(31_000, 600);
        assert_eq!(t.rate(), 200.0);
    }

    #[test]
    fn a_record_is_due_every_n_blocks_and_after_the_interval_if_anything_moved() {
        let mut t = Tracker::new(0, 0);
        assert!(!t.persist_due(10, 999, 1000, 30_000));
        assert!(t.persist_due(10, 1000, 1000, 30_000));
        t.last_persist_height = 1000;
        t.last_persist_at = 10;
        assert!(!t.persist_due(30_009, 1001, 1000, 30_000));
        assert!(t.persist_due(30_010, 1001, 1000, 30_000));
        assert!(!t.persist_due(90_000, 1000, 1000, 30_000), "nothing moved");
        assert_eq!(t.persist_deadline(1001, 30_000), Some(30_010));
        assert_eq!(t.persist_deadline(1000, 30_000), None);
    }
}
