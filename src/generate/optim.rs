//! The optimizers over the latent tensor (Adam, AdamW, Adamax, Adagrad, RMSprop and RAdam with
//! torch.optim's defaults and update rules; DiffGrad and AdamP with torch-optimizer's), written
//! out so their state can be saved and restored exactly (tch's `nn::Optimizer` cannot serialize its
//! state). The state is two tensors and a step count for all of them: `m` (first moment; unused by
//! Adagrad and RMSprop) and `v` (second moment, Adamax's infinity norm, Adagrad's sum of squares,
//! RMSprop's square average), plus a third, `vmax`, for two: `adamw-amsgrad`'s running maximum of
//! `v` and DiffGrad's previous gradient. [`OptimizerState`] is that state as a checkpoint keeps it
//! (`adam_vmax` holds the third tensor of either).
use crate::settings::OptimizerKind;
use anyhow::{Result, bail};
use tch::{Device, Tensor};

/// PyTorch's defaults.
pub const BETA1: f64 = 0.9;
pub const BETA2: f64 = 0.999;
pub const EPS: f64 = 1e-8;
/// torch.optim.AdamW's default decoupled weight decay.
pub const ADAMW_WEIGHT_DECAY: f64 = 0.01;
/// torch.optim.Adagrad's eps.
pub const ADAGRAD_EPS: f64 = 1e-10;
/// aphantasia's `adamw_custom` (its fft image's optimizer): AdamW with betas (0, 0.999), amsgrad.
pub const AMSGRAD_BETA1: f64 = 0.0;
/// torch.optim.RMSprop's smoothing constant.
pub const RMSPROP_ALPHA: f64 = 0.99;
/// torch-optimizer's AdamP: the cosine below which an update is projected (with weight decay 0,
/// its `wd_ratio` has nothing to scale).
pub const ADAMP_DELTA: f64 = 0.1;

#[derive(Debug)]
pub struct Optimizer {
    pub kind: OptimizerKind,
    /// The learning rate now (the schedule's drops and a resume change it).
    pub lr: f64,
    /// First moment (Adam, AdamW, Adamax), same shape as the parameter.
    m: Tensor,
    /// Second-moment-like state (see the module doc), same shape as the parameter.
    v: Tensor,
    /// The running maximum of `v` (`adamw-amsgrad` only).
    vmax: Option<Tensor>,
    /// Steps taken (bias correction).
    t: i64,
    /// Parameter groups with their own learning rate, as torch's: (length along dim 0, factor
    /// of the lr). Pixray's stroke drawers step points, widths and colours at 1, 0.1 and 0.01.
    groups: Option<Vec<(i64, f64)>>,
}

/// An optimizer's resumable state: what `checkpoint::State` stores (`adam_m`, `adam_v`,
/// `adam_vmax` tensors; `adam_t` and `lr` in meta.toml).
#[derive(Debug)]
pub struct OptimizerState {
    pub m: Tensor,
    pub v: Tensor,
    pub vmax: Option<Tensor>,
    pub t: i64,
    pub lr: f64,
}

impl Optimizer {
    pub fn new(kind: OptimizerKind, lr: f64, like: &Tensor) -> Optimizer {
        Optimizer {
            kind,
            lr,
            m: like.zeros_like().detach(),
            v: like.zeros_like().detach(),
            vmax: matches!(kind, OptimizerKind::AdamWAmsgrad | OptimizerKind::DiffGrad)
                .then(|| like.zeros_like().detach()),
            t: 0,
            groups: None,
        }
    }

    /// Splits the parameter (along dim 0) into groups with their own learning rate: `(length,
    /// factor)`, the lengths summing to the parameter's.
    pub fn with_groups(mut self, groups: Option<Vec<(i64, f64)>>) -> Optimizer {
        self.groups = groups;
        self
    }

    /// `f(group lr, slice)` for each group (the whole parameter at lr when there are none).
    fn per_group(&self, mut f: impl FnMut(f64, i64, i64)) {
        match &self.groups {
            None => f(self.lr, 0, -1),
            Some(groups) => {
                let mut at = 0;
                for &(len, factor) in groups {
                    f(self.lr * factor, at, len);
                    at += len;
                }
            }
        }
    }

    /// `param += value(lr) * numer / denom`, per group, in torch's order of operations.
    fn update(
        &self,
        param: &mut Tensor,
        numer: &Tensor,
        denom: &Tensor,
        value: impl Fn(f64) -> f64,
    ) {
        self.per_group(|lr, at, len| {
            let slice = |t: &Tensor| group_slice(t, at, len);
            let _ = slice(param).addcdiv_(&(slice(numer) * value(lr)), &slice(denom));
        });
    }

    /// AdamW's decay `p *= 1 - lr * wd`, per group.
    fn decay(&self, param: &mut Tensor) {
        self.per_group(|lr, at, len| {
            let _ = group_slice(param, at, len).g_mul_scalar_(1.0 - lr * ADAMW_WEIGHT_DECAY);
        });
    }

    /// The state now (the tensors shared, not copied: the next step changes them in place).
    pub fn state(&self) -> OptimizerState {
        OptimizerState {
            m: self.m.shallow_clone(),
            v: self.v.shallow_clone(),
            vmax: self.vmax.as_ref().map(Tensor::shallow_clone),
            t: self.t,
            lr: self.lr,
        }
    }

    /// Takes over `state` (a checkpoint's), moved to `device`. Its tensors must have the shape of this
    /// optimizer's (the parameter's); without a `vmax` the current one stays (zeros when fresh).
    pub fn restore(&mut self, state: OptimizerState, device: Device) -> Result<()> {
        let expect = self.m.size();
        let named = [("m", Some(&state.m)), ("v", Some(&state.v))];
        for (name, t) in named.into_iter().chain([("vmax", state.vmax.as_ref())]) {
            if let Some(t) = t
                && t.size() != expect
            {
                bail!(
                    "the checkpoint's optimizer state {name} has shape {:?}, the parameters {expect:?}",
                    t.size()
                );
            }
        }
        if state.t < 0 || !state.lr.is_finite() {
            bail!(
                "the checkpoint's optimizer step count {} or lr {} is invalid",
                state.t,
                state.lr
            );
        }
        self.m = state.m.to_device(device);
        self.v = state.v.to_device(device);
        if let Some(vmax) = state.vmax {
            self.vmax = Some(vmax.to_device(device));
        }
        self.t = state.t;
        self.lr = state.lr;
        Ok(())
    }

    /// One update of `param` (in place) from `grad`, with torch.optim's arithmetic:
    /// - Adam(W): `p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps)` (AdamW first decays `p`);
    /// - Adamax: `u = max(β2·u, |g| + eps)`, `p -= lr / bc1 * m / u`;
    /// - Adagrad: `s += g²`, `p -= lr * g / (sqrt(s) + 1e-10)`;
    /// - RMSprop: `a = 0.99·a + 0.01·g²`, `p -= lr * g / (sqrt(a) + eps)`;
    /// - DiffGrad: Adam's moments, the step `lr·sqrt(bc2)/bc1 · m·σ(|g − g_prev|) / (sqrt(v) + eps)`;
    /// - AdamP: Adam's step `m / (sqrt(v)/sqrt(bc2) + eps)`, projected off the parameter's
    ///   direction when the gradient is nearly orthogonal to it (per row, then whole);
    /// - RAdam: Adam's moments with the variance rectification once `rho_t > 5`, plain momentum
    ///   before.
    pub fn step(&mut self, param: &mut Tensor, grad: &Tensor) {
        tch::no_grad(|| {
            self.t += 1;
            let bc1 = 1.0 - BETA1.powi(self.t as i32);
            match self.kind {
                OptimizerKind::Adam | OptimizerKind::AdamW => {
                    if self.kind == OptimizerKind::AdamW {
                        self.decay(param);
                    }
                    self.second_moments(grad);
                    let bc2 = 1.0 - BETA2.powi(self.t as i32);
                    let denom = self.v.sqrt() / bc2.sqrt() + EPS;
                    self.update(param, &self.m, &denom, |lr| -lr / bc1);
                }
                OptimizerKind::AdamWAmsgrad => {
                    self.decay(param);
                    let _ = self.m.g_mul_scalar_(AMSGRAD_BETA1);
                    let _ = self.m.g_add_(&(grad * (1.0 - AMSGRAD_BETA1)));
                    let _ = self.v.g_mul_scalar_(BETA2);
                    let _ = self.v.addcmul_(grad, &(grad * (1.0 - BETA2)));
                    let vmax = self
                        .vmax
                        .get_or_insert_with(|| self.v.zeros_like())
                        .maximum(&self.v);
                    let bc1 = 1.0 - AMSGRAD_BETA1.powi(self.t as i32);
                    let bc2 = 1.0 - BETA2.powi(self.t as i32);
                    let denom = vmax.sqrt() / bc2.sqrt() + EPS;
                    self.update(param, &self.m, &denom, |lr| -lr / bc1);
                    self.vmax = Some(vmax);
                }
                OptimizerKind::Adamax => {
                    self.first_moment(grad);
                    self.v = (&self.v * BETA2).maximum(&(grad.abs() + EPS));
                    self.update(param, &self.m, &self.v, |lr| -lr / bc1);
                }
                OptimizerKind::Adagrad => {
                    let _ = self.v.addcmul_(grad, grad);
                    let denom = self.v.sqrt() + ADAGRAD_EPS;
                    self.update(param, grad, &denom, |lr| -lr);
                }
                OptimizerKind::RmsProp => {
                    let _ = self.v.g_mul_scalar_(RMSPROP_ALPHA);
                    let _ = self.v.addcmul_(grad, &(grad * (1.0 - RMSPROP_ALPHA)));
                    let denom = self.v.sqrt() + EPS;
                    self.update(param, grad, &denom, |lr| -lr);
                }
                OptimizerKind::DiffGrad => {
                    self.second_moments(grad);
                    let denom = self.v.sqrt() + EPS;
                    let bc2 = 1.0 - BETA2.powi(self.t as i32);
                    let prev = self.vmax.take().unwrap_or_else(|| grad.zeros_like());
                    let dfc = ((&prev - grad).abs().neg().exp() + 1.0).reciprocal();
                    self.vmax = Some(grad.copy());
                    let m = &self.m * dfc;
                    self.update(param, &m, &denom, |lr| -(lr * bc2.sqrt() / bc1));
                }
                OptimizerKind::AdamP => {
                    self.second_moments(grad);
                    let bc2 = 1.0 - BETA2.powi(self.t as i32);
                    let denom = self.v.sqrt() / bc2.sqrt() + EPS;
                    let perturb = &self.m / denom;
                    self.per_group(|lr, at, len| {
                        let slice = |t: &Tensor| group_slice(t, at, len);
                        let mut p = slice(param);
                        let step = adamp_projection(&p, &slice(grad), slice(&perturb));
                        let _ = p.g_add_(&(step * (-lr / bc1)));
                    });
                }
                OptimizerKind::RAdam => {
                    self.second_moments(grad);
                    let t = self.t as f64;
                    let bc2 = 1.0 - BETA2.powf(t);
                    let rho_inf = 2.0 / (1.0 - BETA2) - 1.0;
                    let rho_t = rho_inf - 2.0 * t * BETA2.powf(t) / bc2;
                    if rho_t > 5.0 {
                        let rect = ((rho_t - 4.0) * (rho_t - 2.0) * rho_inf
                            / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t))
                            .sqrt();
                        let denom = self.v.sqrt() + EPS;
                        self.update(param, &self.m, &denom, |lr| -(lr * rect * bc2.sqrt() / bc1));
                    } else {
                        let ones = self.m.ones_like();
                        self.update(param, &self.m, &ones, |lr| -lr / bc1);
                    }
                }
            }
        });
    }

    /// Adam's moments: `m = β1·m + (1 − β1)·g`, `v = β2·v + (1 − β2)·g²`.
    fn second_moments(&mut self, grad: &Tensor) {
        self.first_moment(grad);
        let _ = self.v.g_mul_scalar_(BETA2);
        let _ = self.v.addcmul_(grad, &(grad * (1.0 - BETA2)));
    }

    /// `m = β1·m + (1 − β1)·g`.
    fn first_moment(&mut self, grad: &Tensor) {
        let _ = self.m.g_mul_scalar_(BETA1);
        let _ = self.m.g_add_(&(grad * (1.0 - BETA1)));
    }
}

/// A group's rows of `t` (all of it when `len` < 0), sharing its storage.
fn group_slice(t: &Tensor, at: i64, len: i64) -> Tensor {
    if len < 0 {
        t.shallow_clone()
    } else {
        t.narrow(0, at, len)
    }
}

/// AdamP's projection (torch-optimizer's `_projection` with weight decay 0): for a parameter of
/// two or more dimensions, viewed per row (dim 0) and then whole, the first view where every
/// |cos(grad, p)| is below `delta / sqrt(row length)` removes the step's component along p.
fn adamp_projection(p: &Tensor, grad: &Tensor, perturb: Tensor) -> Tensor {
    let shape = p.size();
    if shape.len() < 2 {
        return perturb;
    }
    let mut expand = vec![-1i64];
    expand.extend(std::iter::repeat_n(1, shape.len() - 1));
    for rows in [shape[0], 1] {
        let view = |t: &Tensor| t.reshape([rows, -1]);
        let norm = |t: &Tensor| view(t).norm_scalaropt_dim(2.0, [1], false) + EPS;
        let dot = (view(grad) * view(p)).sum_dim_intlist(1, false, None);
        let cos = dot.abs() / norm(grad) / norm(p);
        let width = view(p).size()[1] as f64;
        if cos.max().double_value(&[]) < ADAMP_DELTA / width.sqrt() {
            let p_n = p / norm(p).view(expand.as_slice());
            let along = view(&(&p_n * &perturb))
                .sum_dim_intlist(1, false, None)
                .view(expand.as_slice());
            return &perturb - p_n * along;
        }
    }
    perturb
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_step_moves_by_lr() {
        // After one step Adam moves each coordinate by ~lr * sign(grad).
        let mut p = Tensor::from_slice(&[1.0f32, -2.0, 0.5]);
        let g = Tensor::from_slice(&[0.3f32, -4.0, 0.0]);
        let mut opt = Optimizer::new(OptimizerKind::Adam, 0.1, &p);
        opt.step(&mut p, &g);
        let v: Vec<f32> = Vec::try_from(&p).unwrap();
        assert!(
            (v[0] - 0.9).abs() < 1e-6 && (v[1] + 1.9).abs() < 1e-6 && (v[2] - 0.5).abs() < 1e-7,
            "{v:?}"
        );
    }

    /// Three steps of each optimizer against torch.optim 2.11 with lr 0.1 and default settings
    /// (values printed by torch.optim.<Name>([p], lr=0.1) on the same parameter and gradients;
    /// adamw-amsgrad: `AdamW([p], lr=0.1, betas=(0.0, 0.999), weight_decay=0.01, amsgrad=True)`).
    #[test]
    fn three_steps_match_torch_optim() {
        let grads = [
            [0.3f32, -4.0, 0.0, 1e-3],
            [-0.2, -1.0, 0.5, 2.0],
            [0.05, 3.0, -0.5, 0.0],
        ];
        let expected: [(OptimizerKind, [f64; 4]); 6] = [
            (
                OptimizerKind::AdamWAmsgrad,
                [
                    0.9517790675163269,
                    -1.961851716041565,
                    0.47970080375671387,
                    -0.24104368686676025,
                ],
            ),
            (
                OptimizerKind::Adam,
                [
                    0.8657005429267883,
                    -1.8026490211486816,
                    0.430104523897171,
                    -0.23199404776096344,
                ],
            ),
            (
                OptimizerKind::AdamW,
                [
                    0.8629179000854492,
                    -1.7969380617141724,
                    0.4286804497241974,
                    -0.2317197024822235,
                ],
            ),
            (
                OptimizerKind::Adamax,
                [
                    0.8737800121307373,
                    -1.8288754224777222,
                    0.45105844736099243,
                    -0.18591280281543732,
                ],
            ),
            (
                OptimizerKind::Adagrad,
                [
                    0.9417338967323303,
                    -1.9345811605453491,
                    0.4707106947898865,
                    -0.19999997317790985,
                ],
            ),
            (
                OptimizerKind::RmsProp,
                [
                    0.41811999678611755,
                    -1.348414659500122,
                    0.20888137817382812,
                    -1.9998998641967773,
                ],
            ),
        ];
        for (kind, want) in expected {
            let mut p = Tensor::from_slice(&[1.0f32, -2.0, 0.5, 0.0]);
            let mut opt = Optimizer::new(kind, 0.1, &p);
            for g in &grads {
                opt.step(&mut p, &Tensor::from_slice(g));
            }
            let got: Vec<f32> = Vec::try_from(&p).unwrap();
            for (g, w) in got.iter().zip(want) {
                assert!((*g as f64 - w).abs() < 2e-6, "{kind}: {got:?} vs {want:?}");
            }
        }
    }

    const KINDS: [OptimizerKind; 9] = [
        OptimizerKind::Adam,
        OptimizerKind::AdamW,
        OptimizerKind::AdamWAmsgrad,
        OptimizerKind::Adamax,
        OptimizerKind::Adagrad,
        OptimizerKind::RmsProp,
        OptimizerKind::DiffGrad,
        OptimizerKind::AdamP,
        OptimizerKind::RAdam,
    ];

    fn values(t: &Tensor) -> Vec<f32> {
        Vec::try_from(t.flatten(0, -1)).unwrap()
    }

    /// A deep copy, as a checkpoint's save and load make one.
    fn saved(s: OptimizerState) -> OptimizerState {
        OptimizerState {
            m: s.m.copy(),
            v: s.v.copy(),
            vmax: s.vmax.map(|t| t.copy()),
            t: s.t,
            lr: s.lr,
        }
    }

    #[test]
    fn restored_state_steps_like_the_uninterrupted_optimizer() {
        let grads = [
            [0.3f32, -4.0, 0.0, 1e-3, 0.7, -0.1],
            [-0.2, -1.0, 0.5, 2.0, 0.0, 0.3],
            [0.05, 3.0, -0.5, 0.0, -1.5, 0.2],
        ];
        let g = |i: usize| Tensor::from_slice(&grads[i]).view([2, 3]);
        for kind in KINDS {
            let mut p = Tensor::from_slice(&[1.0f32, -2.0, 0.5, 0.0, 3.0, -0.25]).view([2, 3]);
            let mut opt = Optimizer::new(kind, 0.1, &p);
            opt.step(&mut p, &g(0));
            opt.lr /= 10.0; // a schedule drop: the restored lr must be the dropped one
            opt.step(&mut p, &g(1));
            let state = saved(opt.state());
            let mut q = p.copy();
            opt.step(&mut p, &g(2));

            let mut fresh = Optimizer::new(kind, 0.1, &q);
            fresh.restore(state, Device::Cpu).unwrap();
            assert_eq!(fresh.t, 2, "{kind}");
            assert_eq!(fresh.lr, 0.1 / 10.0, "{kind}");
            fresh.step(&mut q, &g(2));
            assert_eq!(values(&q), values(&p), "{kind}: parameters");
            let (a, b) = (fresh.state(), opt.state());
            assert_eq!(values(&a.m), values(&b.m), "{kind}: m");
            assert_eq!(values(&a.v), values(&b.v), "{kind}: v");
            assert_eq!(
                a.vmax.is_some(),
                matches!(kind, OptimizerKind::AdamWAmsgrad | OptimizerKind::DiffGrad),
                "{kind}"
            );
            assert_eq!(
                a.vmax.as_ref().map(values),
                b.vmax.as_ref().map(values),
                "{kind}: vmax"
            );
            assert_eq!((a.t, a.lr), (b.t, b.lr), "{kind}");
        }
    }

    #[test]
    fn restore_refuses_a_state_of_another_shape() {
        let p = Tensor::zeros([2, 3], (tch::Kind::Float, Device::Cpu));
        for kind in KINDS {
            let mut opt = Optimizer::new(kind, 0.1, &p);
            let wrong = Tensor::zeros([3, 2], (tch::Kind::Float, Device::Cpu));
            let good = || p.zeros_like();
            let cases = [
                (wrong.copy(), good(), None, "m"),
                (good(), wrong.copy(), None, "v"),
                (good(), good(), Some(wrong.copy()), "vmax"),
            ];
            for (m, v, vmax, name) in cases {
                let state = OptimizerState {
                    m,
                    v,
                    vmax,
                    t: 1,
                    lr: 0.1,
                };
                let err = opt.restore(state, Device::Cpu).unwrap_err().to_string();
                assert!(
                    err.contains(&format!("state {name} has shape [3, 2]")),
                    "{err}"
                );
            }
            // A refused state leaves the optimizer as it was.
            assert_eq!((opt.t, opt.lr), (0, 0.1));
        }
    }
}
