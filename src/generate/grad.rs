//! Straight-through gradient tricks of the Crowson z+quantize loop (anchors §3.5), written as
//! plain tensor expressions so no custom autograd function is needed.
use tch::{Kind, Tensor};

/// Forward value of `x_fwd`, gradient sent to `x_bwd` unchanged (and nothing to `x_fwd`).
///
/// Written `x_fwd.detach() + (x_bwd - x_bwd.detach())` rather than the notebook's
/// `x_bwd + (x_fwd - x_bwd).detach()`: the second term is exactly zero, so the forward value is
/// bit-identical to `x_fwd` (the other form rounds). `x_bwd` may broadcast to `x_fwd`'s shape;
/// autograd then sums the gradient back to `x_bwd`'s shape, like `sum_to_size` in the notebook.
pub fn replace_grad(x_fwd: &Tensor, x_bwd: &Tensor) -> Tensor {
    x_fwd.detach() + (x_bwd - x_bwd.detach())
}

/// The backward rule of the anchors' `ClampWithGrad(x, lo, hi)` as a function: given the
/// pre-clamp values `x` and the gradient `g` w.r.t. `clamp(x, lo, hi)`, returns
/// `g · 1[g · (x − clamp(x)) ≥ 0]`.
///
/// Inside `[lo, hi]` the gradient passes unchanged; outside it passes only where a descent step
/// `x ← x − lr·g` moves `x` back toward the range. The loop uses it in a two-stage backward:
/// loss → `g` w.r.t. a detached image leaf, mask it here, then backpropagate `(x · g_masked).sum()`.
pub fn clamp_grad_mask(x: &Tensor, g: &Tensor, lo: f64, hi: f64) -> Tensor {
    let outside = x - x.clamp(lo, hi);
    let keep = (g * outside).ge(0.0).to_kind(g.kind());
    g * keep
}

/// Nearest-codebook quantisation with a straight-through gradient (Crowson's `vector_quantize`).
///
/// `z` is `[1, e, h, w]` and `codebook` `[n, e]`. Distances are
/// `‖z‖² + ‖E_k‖² − 2 z·E_k` (one matmul, taming's formula), `k* = argmin_k`. Returns
/// `(z_q, indices)`: `z_q` `[1, e, h, w]` holds the codes exactly (in `z`'s kind) and passes the
/// gradient to `z` unchanged; `indices` is `[h*w]` `i64` in row-major token order.
pub fn straight_through_quantize(z: &Tensor, codebook: &Tensor) -> (Tensor, Tensor) {
    // z is the model's latent [b, e, h, w] (never user input); a wrong rank is a programmer error.
    let size = z.size();
    let (b, e, h, w) = (size[0], size[1], size[2], size[3]);
    let codebook = codebook.to_kind(z.kind());
    let indices = tch::no_grad(|| {
        // [b, e, h, w] -> [b*h*w, e]
        let zf = z.detach().permute([0, 2, 3, 1]).reshape([-1, e]);
        let d = zf.square().sum_dim_intlist(1, true, None)
            + codebook.square().sum_dim_intlist(1, false, None)
            - zf.matmul(&codebook.tr()) * 2.0;
        d.argmin(1, false)
    });
    // [b*h*w, e] -> [b, h, w, e] -> [b, e, h, w]
    let z_q = codebook
        .detach()
        .index_select(0, &indices)
        .view([b, h, w, e])
        .permute([0, 3, 1, 2])
        .contiguous();
    (replace_grad(&z_q, z), indices.to_kind(Kind::Int64))
}
