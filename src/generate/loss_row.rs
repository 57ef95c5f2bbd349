//! One step's loss terms by section, and their packing: a step packs its row into one small device
//! tensor (no host sync inside a step), `flush` stacks the pending rows, copies them to the host in
//! one sync and unpacks each into a log record. The section order is the packed order:
//! `[total, prompts..., labels..., image prompts..., target images..., noise prompts..., vector
//! prompts..., spot...,
//! spot off..., extra losses..., palette, alpha]`.
use crate::rundir::StepRecord;
use anyhow::{Result, bail};
use tch::Tensor;

/// How many terms each section of a run's rows has (fixed for the run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub prompts: usize,
    pub labels: usize,
    pub image_prompts: usize,
    pub target_images: usize,
    pub noise_prompts: usize,
    pub vector_prompts: usize,
    pub spot: usize,
    pub spot_off: usize,
    /// The `--loss` terms.
    pub extra: usize,
    /// Whether there is a palette pull term (`--palette`).
    pub palette: bool,
    /// Whether there is an alpha term (`--transparent-weight`).
    pub transparent: bool,
}

impl Layout {
    /// Values in a packed row (the total included).
    pub fn packed_len(&self) -> usize {
        1 + self.prompts
            + self.labels
            + self.image_prompts
            + self.target_images
            + self.noise_prompts
            + self.vector_prompts
            + self.spot
            + self.spot_off
            + self.extra
            + usize::from(self.palette)
            + usize::from(self.transparent)
    }
}

/// One step's loss terms: 0-d tensors while on the device, `f64` once unpacked.
#[derive(Debug, Clone, PartialEq)]
pub struct LossRow<T> {
    pub total: T,
    pub prompts: Vec<T>,
    pub labels: Vec<T>,
    pub image_prompts: Vec<T>,
    pub target_images: Vec<T>,
    pub noise_prompts: Vec<T>,
    pub vector_prompts: Vec<T>,
    pub spot: Vec<T>,
    pub spot_off: Vec<T>,
    pub extra: Vec<T>,
    pub palette: Option<T>,
    pub transparent: Option<T>,
}

impl<T> LossRow<T> {
    pub fn layout(&self) -> Layout {
        Layout {
            prompts: self.prompts.len(),
            labels: self.labels.len(),
            image_prompts: self.image_prompts.len(),
            target_images: self.target_images.len(),
            noise_prompts: self.noise_prompts.len(),
            vector_prompts: self.vector_prompts.len(),
            spot: self.spot.len(),
            spot_off: self.spot_off.len(),
            extra: self.extra.len(),
            palette: self.palette.is_some(),
            transparent: self.transparent.is_some(),
        }
    }

    /// The terms in packed order.
    fn values(&self) -> impl Iterator<Item = &T> {
        std::iter::once(&self.total)
            .chain(&self.prompts)
            .chain(&self.labels)
            .chain(&self.image_prompts)
            .chain(&self.target_images)
            .chain(&self.noise_prompts)
            .chain(&self.vector_prompts)
            .chain(&self.spot)
            .chain(&self.spot_off)
            .chain(&self.extra)
            .chain(&self.palette)
            .chain(&self.transparent)
    }
}

impl LossRow<Tensor> {
    /// The row as one 1-d tensor of `layout().packed_len()` values, detached (a logged row keeps no graph).
    pub fn pack(&self) -> Tensor {
        let terms: Vec<Tensor> = self.values().map(Tensor::detach).collect();
        Tensor::stack(&terms, 0)
    }
}

impl LossRow<f64> {
    /// The row `values` packed with `layout` (one row of the host copy).
    pub fn unpack(layout: Layout, values: &[f64]) -> Result<LossRow<f64>> {
        if values.len() != layout.packed_len() {
            bail!(
                "a loss row has {} values, its layout {} ({layout:?})",
                values.len(),
                layout.packed_len()
            );
        }
        // The length check above makes every split in range.
        let (total, rest) = values.split_at(1);
        let (prompts, rest) = rest.split_at(layout.prompts);
        let (labels, rest) = rest.split_at(layout.labels);
        let (image_prompts, rest) = rest.split_at(layout.image_prompts);
        let (target_images, rest) = rest.split_at(layout.target_images);
        let (noise_prompts, rest) = rest.split_at(layout.noise_prompts);
        let (vector_prompts, rest) = rest.split_at(layout.vector_prompts);
        let (spot, rest) = rest.split_at(layout.spot);
        let (spot_off, rest) = rest.split_at(layout.spot_off);
        let (extra, rest) = rest.split_at(layout.extra);
        let (palette, transparent) = rest.split_at(usize::from(layout.palette));
        Ok(LossRow {
            total: total[0],
            prompts: prompts.to_vec(),
            labels: labels.to_vec(),
            image_prompts: image_prompts.to_vec(),
            target_images: target_images.to_vec(),
            noise_prompts: noise_prompts.to_vec(),
            vector_prompts: vector_prompts.to_vec(),
            spot: spot.to_vec(),
            spot_off: spot_off.to_vec(),
            extra: extra.to_vec(),
            palette: palette.first().copied(),
            transparent: transparent.first().copied(),
        })
    }

    /// Whether every term is finite.
    pub fn is_finite(&self) -> bool {
        self.values().all(|v| v.is_finite())
    }

    /// The log record of step `step` (the palette term is 0 without `--palette`).
    pub fn record(self, step: i64, lr: f64, seconds: f64) -> StepRecord {
        StepRecord {
            step,
            frame: None,
            loss: self.total,
            prompts: self.prompts,
            labels: self.labels,
            image_prompts: self.image_prompts,
            target_images: self.target_images,
            noise_prompts: self.noise_prompts,
            vector_prompts: self.vector_prompts,
            spot: self.spot,
            spot_off: self.spot_off,
            extra: self.extra,
            palette: self.palette.unwrap_or(0.0),
            transparent: self.transparent.unwrap_or(0.0),
            lr,
            seconds,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    /// A row of `layout` with distinct values 1, 2, 3, ... in packed order.
    fn row(layout: Layout) -> LossRow<f64> {
        let mut next = 0.0;
        let mut take = |n: usize| {
            (0..n)
                .map(|_| {
                    next += 1.0;
                    next
                })
                .collect::<Vec<f64>>()
        };
        LossRow {
            total: take(1)[0],
            prompts: take(layout.prompts),
            labels: take(layout.labels),
            image_prompts: take(layout.image_prompts),
            target_images: take(layout.target_images),
            noise_prompts: take(layout.noise_prompts),
            vector_prompts: take(layout.vector_prompts),
            spot: take(layout.spot),
            spot_off: take(layout.spot_off),
            extra: take(layout.extra),
            palette: take(usize::from(layout.palette)).first().copied(),
            transparent: take(usize::from(layout.transparent)).first().copied(),
        }
    }

    fn on_device(r: &LossRow<f64>) -> LossRow<Tensor> {
        let t = |v: &f64| Tensor::from(*v as f32).to_device(Device::Cpu);
        let ts = |v: &[f64]| v.iter().map(t).collect::<Vec<_>>();
        LossRow {
            total: t(&r.total),
            prompts: ts(&r.prompts),
            labels: ts(&r.labels),
            image_prompts: ts(&r.image_prompts),
            target_images: ts(&r.target_images),
            noise_prompts: ts(&r.noise_prompts),
            vector_prompts: ts(&r.vector_prompts),
            spot: ts(&r.spot),
            spot_off: ts(&r.spot_off),
            extra: ts(&r.extra),
            palette: r.palette.as_ref().map(t),
            transparent: r.transparent.as_ref().map(t),
        }
    }

    #[test]
    fn pack_then_unpack_gives_the_row_back() {
        // Every section empty and non-empty, alone and together.
        let mut layouts = Vec::new();
        for mask in 0..2048u32 {
            let n = |bit: u32, k: usize| if mask & (1 << bit) != 0 { k } else { 0 };
            layouts.push(Layout {
                prompts: n(0, 3),
                image_prompts: n(1, 2),
                noise_prompts: n(2, 1),
                vector_prompts: n(10, 1),
                extra: n(3, 2),
                palette: mask & (1 << 4) != 0,
                transparent: mask & (1 << 5) != 0,
                target_images: n(6, 2),
                spot: n(7, 2),
                spot_off: n(8, 1),
                labels: n(9, 2),
            });
        }
        for layout in layouts {
            let want = row(layout);
            let packed = on_device(&want).pack();
            assert_eq!(packed.size(), [layout.packed_len() as i64], "{layout:?}");
            // As flush reads it: stacked rows, one host copy, f64.
            let stacked = Tensor::stack(&[packed.shallow_clone(), packed], 0)
                .to_device(Device::Cpu)
                .to_kind(Kind::Double);
            let rows = Vec::<Vec<f64>>::try_from(&stacked).unwrap();
            for values in rows {
                assert_eq!(
                    values,
                    (1..=layout.packed_len())
                        .map(|i| i as f64)
                        .collect::<Vec<_>>()
                );
                let got = LossRow::unpack(layout, &values).unwrap();
                assert_eq!(got.layout(), layout);
                assert_eq!(got, want, "{layout:?}");
            }
        }
    }

    #[test]
    fn unpack_refuses_a_row_of_another_length() {
        let layout = Layout {
            prompts: 2,
            labels: 0,
            image_prompts: 0,
            target_images: 0,
            noise_prompts: 0,
            vector_prompts: 0,
            spot: 0,
            spot_off: 0,
            extra: 1,
            palette: true,
            transparent: false,
        };
        assert!(LossRow::unpack(layout, &[1.0; 5]).is_ok());
        for n in [0, 4, 6] {
            assert!(LossRow::unpack(layout, &vec![1.0; n]).is_err(), "{n}");
        }
    }

    #[test]
    fn record_fills_every_field() {
        let mut r = row(Layout {
            prompts: 1,
            labels: 0,
            image_prompts: 1,
            target_images: 0,
            noise_prompts: 1,
            vector_prompts: 0,
            spot: 0,
            spot_off: 0,
            extra: 1,
            palette: false,
            transparent: true,
        });
        assert!(r.is_finite());
        let rec = r.clone().record(7, 0.05, 1.5);
        assert_eq!(
            (
                rec.step,
                rec.loss,
                rec.lr,
                rec.seconds,
                rec.palette,
                rec.transparent
            ),
            (7, 1.0, 0.05, 1.5, 0.0, 6.0)
        );
        assert_eq!(
            (rec.prompts, rec.image_prompts, rec.noise_prompts, rec.extra),
            (vec![2.0], vec![3.0], vec![4.0], vec![5.0])
        );
        r.extra[0] = f64::NAN;
        assert!(!r.is_finite());
    }
}
