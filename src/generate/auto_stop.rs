//! Pixray's `--auto_stop`: after [`PATIENCE`] steps without a new best loss the learning rate is
//! divided by 10; once there have been more drops than `--lr-drops` lists, the run ends. Scheduled
//! drops count too and restart the watch, as in pixray's `train`. The state is small and goes into
//! the checkpoint, so a resumed run stops where the straight run would have.
use serde::{Deserialize, Serialize};

/// Steps without a new best loss before a drop (pixray's `iter_drop_delay`).
pub const PATIENCE: i64 = 12;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AutoStop {
    /// The best total loss since the last drop (none yet: every loss is a new best).
    pub best: Option<f64>,
    /// The step of `best`, or of the last drop.
    pub best_step: i64,
    /// Drops so far, scheduled and automatic.
    pub drops: u32,
    /// The run ended here.
    pub stopped: bool,
}

/// What a step's loss means for the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Continue,
    /// Divide the learning rate by 10 from the next step on.
    DropLr,
    /// End the run after this step.
    Stop,
}

impl AutoStop {
    pub fn new() -> AutoStop {
        AutoStop {
            best: None,
            best_step: 0,
            drops: 0,
            stopped: false,
        }
    }

    /// After step `step` with total loss `loss`; `scheduled` when an `--lr-drops` drop came at this
    /// step; `max_drops` is how many `--lr-drops` there are.
    pub fn after_step(
        &mut self,
        step: i64,
        loss: f64,
        scheduled: bool,
        max_drops: usize,
    ) -> Verdict {
        if scheduled {
            // Pixray does not judge the loss of a step with a scheduled drop; it restarts the watch.
            return self.dropped(step, max_drops, Verdict::Continue);
        }
        if self.best.is_none_or(|b| loss < b) {
            self.best = Some(loss);
            self.best_step = step;
            return Verdict::Continue;
        }
        if step - self.best_step >= PATIENCE {
            return self.dropped(step, max_drops, Verdict::DropLr);
        }
        Verdict::Continue
    }

    fn dropped(&mut self, step: i64, max_drops: usize, verdict: Verdict) -> Verdict {
        self.drops += 1;
        if self.drops as usize > max_drops {
            self.stopped = true;
            return Verdict::Stop;
        }
        self.best = None;
        self.best_step = step;
        verdict
    }
}

impl Default for AutoStop {
    fn default() -> Self {
        AutoStop::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flat_loss_stops_after_patience_without_drops() {
        let mut a = AutoStop::new();
        for step in 1..=12 {
            assert_eq!(
                a.after_step(step, 1.0, false, 0),
                Verdict::Continue,
                "{step}"
            );
        }
        assert_eq!(a.after_step(13, 1.0, false, 0), Verdict::Stop);
        assert!(a.stopped);
    }

    #[test]
    fn each_listed_drop_buys_another_plateau() {
        let mut a = AutoStop::new();
        let mut verdicts = Vec::new();
        for step in 1..=40 {
            let v = a.after_step(step, 1.0, false, 1);
            if v != Verdict::Continue {
                verdicts.push((step, v));
            }
            if v == Verdict::Stop {
                break;
            }
        }
        // Best at 1, drop at 13 (watch restarts), best at 14, stop at 26.
        assert_eq!(verdicts, [(13, Verdict::DropLr), (26, Verdict::Stop)]);
    }

    #[test]
    fn improving_losses_never_stop_and_scheduled_drops_count() {
        let mut a = AutoStop::new();
        for step in 1..=100 {
            assert_eq!(
                a.after_step(step, 10.0 - step as f64 * 0.01, false, 1),
                Verdict::Continue
            );
        }
        assert_eq!(a.after_step(101, 9.0, true, 1), Verdict::Continue);
        assert_eq!(a.drops, 1);
        assert_eq!(a.after_step(102, 9.5, true, 1), Verdict::Stop);
    }
}
