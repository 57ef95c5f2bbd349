//! Adam and AdamW over one latent tensor, written out so their state can be saved and restored
//! exactly (tch's `nn::Optimizer` cannot serialize its moments).
use crate::settings::OptimizerKind;
use tch::Tensor;

/// PyTorch's defaults.
pub const BETA1: f64 = 0.9;
pub const BETA2: f64 = 0.999;
pub const EPS: f64 = 1e-8;
/// torch.optim.AdamW's default decoupled weight decay.
pub const ADAMW_WEIGHT_DECAY: f64 = 0.01;

#[derive(Debug)]
pub struct Adam {
    pub kind: OptimizerKind,
    pub lr: f64,
    /// First and second moments, same shape as the parameter.
    pub m: Tensor,
    pub v: Tensor,
    /// Steps taken (bias correction).
    pub t: i64,
}

impl Adam {
    pub fn new(kind: OptimizerKind, lr: f64, like: &Tensor) -> Adam {
        Adam {
            kind,
            lr,
            m: like.zeros_like().detach(),
            v: like.zeros_like().detach(),
            t: 0,
        }
    }

    /// One update of `param` (in place) from `grad`, with torch.optim.Adam's exact arithmetic:
    /// `p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps)`.
    pub fn step(&mut self, param: &mut Tensor, grad: &Tensor) {
        tch::no_grad(|| {
            self.t += 1;
            if self.kind == OptimizerKind::AdamW {
                let _ = param.g_mul_scalar_(1.0 - self.lr * ADAMW_WEIGHT_DECAY);
            }
            let _ = self.m.g_mul_scalar_(BETA1);
            let _ = self.m.g_add_(&(grad * (1.0 - BETA1)));
            let _ = self.v.g_mul_scalar_(BETA2);
            let _ = self.v.addcmul_(grad, &(grad * (1.0 - BETA2)));
            let bc1 = 1.0 - BETA1.powi(self.t as i32);
            let bc2 = 1.0 - BETA2.powi(self.t as i32);
            let denom = self.v.sqrt() / bc2.sqrt() + EPS;
            let _ = param.addcdiv_(&(&self.m * (-self.lr / bc1)), &denom);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_step_moves_by_lr() {
        // After one step Adam moves each coordinate by ~lr * sign(grad).
        let mut p = Tensor::from_slice(&[1.0f32, -2.0, 0.5]);
        let g = Tensor::from_slice(&[0.3f32, -4.0, 0.0]);
        let mut opt = Adam::new(OptimizerKind::Adam, 0.1, &p);
        opt.step(&mut p, &g);
        let v: Vec<f32> = Vec::try_from(&p).unwrap();
        assert!(
            (v[0] - 0.9).abs() < 1e-6 && (v[1] + 1.9).abs() < 1e-6 && (v[2] - 0.5).abs() < 1e-7,
            "{v:?}"
        );
    }
}
