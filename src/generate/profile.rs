//! `generate --profile`: where a step's time goes. The step is timed at its stage boundaries
//! (the device synchronized at each, so a CUDA run slows a little); the parts line up with the
//! reference loop's `scripts/bench profile`, so the two can be read side by side.

use std::cell::RefCell;
use std::time::Instant;
use tch::Device;

/// The parts of a step, in the order a step runs them.
pub const PARTS: [(&str, &str); 9] = [
    ("render", "the drawer's picture (VQGAN: quantize + decoder)"),
    ("filters", "wallpaper, palette, transparency"),
    ("cutouts", "cutouts and augments"),
    ("clip_fwd", "CLIP image towers"),
    ("losses", "prompt and image terms"),
    (
        "clip_bwd",
        "backward through CLIP and the cutouts to the picture",
    ),
    ("extra_losses", "--loss terms and their backward"),
    (
        "render_bwd",
        "backward through the drawer to its parameters",
    ),
    ("optimizer", "optimizer step, clamps, the loss row"),
];

/// Seconds per part, one row per finished step.
pub struct StepProfile {
    device: Device,
    last: RefCell<Instant>,
    current: RefCell<[f64; PARTS.len()]>,
    steps: RefCell<Vec<[f64; PARTS.len()]>>,
}

impl StepProfile {
    pub fn new(device: Device) -> StepProfile {
        StepProfile {
            device,
            last: RefCell::new(Instant::now()),
            current: RefCell::new([0.0; PARTS.len()]),
            steps: RefCell::new(Vec::new()),
        }
    }

    fn sync(&self) {
        if let Device::Cuda(i) = self.device {
            tch::Cuda::synchronize(i as i64);
        }
    }

    /// A step begins: the clock starts after the device has finished the previous one's work.
    pub fn start(&self) {
        self.sync();
        *self.current.borrow_mut() = [0.0; PARTS.len()];
        *self.last.borrow_mut() = Instant::now();
    }

    /// The time since the last mark belongs to `part` (one of [`PARTS`]).
    pub fn mark(&self, part: &str) {
        self.sync();
        let now = Instant::now();
        let spent = now.duration_since(*self.last.borrow()).as_secs_f64();
        *self.last.borrow_mut() = now;
        if let Some(i) = PARTS.iter().position(|(p, _)| *p == part) {
            self.current.borrow_mut()[i] += spent;
        }
    }

    pub fn end(&self) {
        self.mark("optimizer");
        self.steps.borrow_mut().push(*self.current.borrow());
    }

    /// The median of each part over the steps after the first (which warms caches and
    /// allocators), with its share of the median step; parts that took no time are left out.
    pub fn table(&self) -> Option<String> {
        let steps = self.steps.borrow();
        let n = steps.len();
        if n == 0 {
            return None;
        }
        let rows: &[[f64; PARTS.len()]] = if n > 1 { &steps[1..] } else { &steps[..] };
        let total = median(rows.iter().map(|r| r.iter().sum()).collect());
        let first = if n > 1 { 2 } else { 1 };
        let mut out = format!(
            "profile: median over steps {first}..{n} (device synchronized between parts)\n"
        );
        for (i, (name, what)) in PARTS.iter().enumerate() {
            let m = median(rows.iter().map(|r| r[i]).collect());
            if rows.iter().all(|r| r[i] == 0.0) {
                continue;
            }
            let share = if total > 0.0 { 100.0 * m / total } else { 0.0 };
            out.push_str(&format!("  {name:<13} {m:8.3} s {share:5.1}%  {what}\n"));
        }
        out.push_str(&format!("  {:<13} {total:8.3} s", "step"));
        Some(out)
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    #[test]
    fn the_first_step_is_left_out_and_parts_sum_to_the_step() {
        let p = StepProfile::new(Device::Cpu);
        p.steps
            .borrow_mut()
            .push([9.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 9.0]);
        p.steps
            .borrow_mut()
            .push([1.0, 0.0, 0.5, 2.0, 0.0, 0.0, 0.0, 0.0, 0.5]);
        p.steps
            .borrow_mut()
            .push([1.0, 0.0, 0.5, 2.0, 0.0, 0.0, 0.0, 0.0, 0.5]);
        let t = p.table().unwrap();
        assert!(t.contains("steps 2..3"), "{t}");
        assert!(t.contains("render           1.000 s  25.0%"), "{t}");
        assert!(t.contains("clip_fwd         2.000 s  50.0%"), "{t}");
        assert!(!t.contains("filters"), "{t}");
        assert!(t.ends_with("step             4.000 s"), "{t}");
    }
}
