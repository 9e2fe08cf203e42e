//! Activation functions with Keras 3's definitions, in f32 like TensorFlow's kernels.

use seqmodel_ir::Activation;

use super::simd;

/// Applies an element-wise activation to one value.
#[inline]
pub fn scalar(a: Activation, x: f32) -> f32 {
    match a {
        Activation::Linear | Activation::Softmax | Activation::LogSoftmax => x,
        Activation::Relu => x.max(0.0),
        Activation::Relu6 => x.clamp(0.0, 6.0),
        Activation::LeakyRelu => {
            if x > 0.0 {
                x
            } else {
                0.2 * x
            }
        }
        Activation::Elu => {
            if x > 0.0 {
                x
            } else {
                x.exp_m1()
            }
        }
        Activation::Selu => {
            const ALPHA: f32 = 1.673_263_2;
            const SCALE: f32 = 1.050_701;
            if x > 0.0 { SCALE * x } else { SCALE * ALPHA * x.exp_m1() }
        }
        Activation::Gelu => (0.5 * x as f64 * (1.0 + erf(x as f64 / std::f64::consts::SQRT_2))) as f32,
        Activation::GeluApproximate => {
            let xf = x as f64;
            (0.5 * xf * (1.0 + (GELU_C * (xf + 0.044_715 * xf * xf * xf)).tanh())) as f32
        }
        Activation::Sigmoid => sigmoid(x),
        Activation::HardSigmoid => hard_sigmoid(x),
        Activation::HardSigmoidKeras2 => (0.2 * x + 0.5).clamp(0.0, 1.0),
        Activation::HardSilu => x * hard_sigmoid(x),
        Activation::Tanh => x.tanh(),
        Activation::Softplus => softplus(x),
        Activation::Softsign => x / (1.0 + x.abs()),
        Activation::Silu => x * sigmoid(x),
        Activation::Mish => x * softplus(x).tanh(),
        Activation::Exponential => x.exp(),
    }
}

/// `√(2/π)`, of the tanh approximation of gelu.
const GELU_C: f64 = 0.797_884_560_802_865_4;

/// The derivative of an element-wise activation at pre-activation `x` with output `y`.
/// (Softmax and log-softmax mix a row; their backward is done per row by the caller.)
#[inline]
pub fn grad(a: Activation, x: f32, y: f32) -> f32 {
    match a {
        Activation::Linear | Activation::Softmax | Activation::LogSoftmax => 1.0,
        Activation::Relu | Activation::Sigmoid | Activation::Tanh | Activation::Exponential => {
            output_grad(a, y).unwrap_or(1.0)
        }
        Activation::Relu6 => f32::from(x > 0.0 && x < 6.0),
        Activation::LeakyRelu => {
            if x > 0.0 {
                1.0
            } else {
                0.2
            }
        }
        Activation::Elu => {
            if x > 0.0 {
                1.0
            } else {
                y + 1.0
            }
        }
        Activation::Selu => {
            const ALPHA: f32 = 1.673_263_2;
            const SCALE: f32 = 1.050_701;
            if x > 0.0 { SCALE } else { y + SCALE * ALPHA }
        }
        Activation::GeluApproximate => {
            let xf = x as f64;
            let th = (GELU_C * (xf + 0.044_715 * xf * xf * xf)).tanh();
            (0.5 * (1.0 + th) + 0.5 * xf * (1.0 - th * th) * GELU_C * (1.0 + 3.0 * 0.044_715 * xf * xf))
                as f32
        }
        Activation::Gelu => {
            let xf = x as f64;
            let cdf = 0.5 * (1.0 + erf(xf / std::f64::consts::SQRT_2));
            let pdf = (-0.5 * xf * xf).exp() / (2.0 * std::f64::consts::PI).sqrt();
            (cdf + xf * pdf) as f32
        }
        Activation::HardSigmoid => {
            if x > -3.0 && x < 3.0 {
                1.0 / 6.0
            } else {
                0.0
            }
        }
        Activation::HardSigmoidKeras2 => {
            if x > -2.5 && x < 2.5 {
                0.2
            } else {
                0.0
            }
        }
        Activation::HardSilu => {
            if x <= -3.0 {
                0.0
            } else if x >= 3.0 {
                1.0
            } else {
                (2.0 * x + 3.0) / 6.0
            }
        }
        Activation::Softplus => sigmoid(x),
        Activation::Softsign => 1.0 / ((1.0 + x.abs()) * (1.0 + x.abs())),
        Activation::Silu => {
            let s = sigmoid(x);
            s * (1.0 + x * (1.0 - s))
        }
        Activation::Mish => {
            let sp = softplus(x);
            let t = sp.tanh();
            t + x * (1.0 - t * t) * sigmoid(x)
        }
    }
}

#[inline]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

#[inline]
fn hard_sigmoid(x: f32) -> f32 {
    (x + 3.0).clamp(0.0, 6.0) / 6.0
}

#[inline]
fn softplus(x: f32) -> f32 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// The error function by Abramowitz–Stegun 7.1.26 (|error| < 1.5e-7, below f32 precision).
fn erf(x: f64) -> f64 {
    let s = x.signum();
    let x = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736 + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    s * (1.0 - poly * (-x * x).exp())
}

/// Applies an element-wise activation to every element (SIMD where [`apply`] has it); the
/// row-wise softmaxes are left alone, as [`scalar`] treats them as the identity.
pub fn map(a: Activation, data: &mut [f32]) {
    match a {
        Activation::Linear | Activation::Softmax | Activation::LogSoftmax => {}
        _ => apply(a, data, data.len()),
    }
}

/// Lanes of [`sum_map`]: independent running sums, so that a long row is not one chain of
/// dependent additions (a 10,000-wide softmax row took 40,000 cycles to sum).
const SUM_LANES: usize = 16;

/// The sum of `f(v)` over `values`, added in 16 interleaved running sums that are
/// added at the end (as a vectorised reduction adds; no less exact than one running sum).
#[inline]
pub fn sum_map(values: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut lanes = [0.0f32; SUM_LANES];
    let (chunks, rest) = values.as_chunks::<SUM_LANES>();
    for chunk in chunks {
        for (lane, v) in lanes.iter_mut().zip(chunk) {
            *lane += f(*v);
        }
    }
    lanes.iter().sum::<f32>() + rest.iter().map(|v| f(*v)).sum::<f32>()
}

/// `Σ a[i] · b[i]`, in the 16 running sums of [`sum_map`].
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let mut lanes = [0.0f32; SUM_LANES];
    let ((ca, ra), (cb, rb)) = (a[..n].as_chunks::<SUM_LANES>(), b[..n].as_chunks::<SUM_LANES>());
    for (x, y) in ca.iter().zip(cb) {
        for ((lane, x), y) in lanes.iter_mut().zip(x).zip(y) {
            *lane += x * y;
        }
    }
    lanes.iter().sum::<f32>() + ra.iter().zip(rb).map(|(x, y)| x * y).sum::<f32>()
}

/// Whether the gradient of `a` needs its input: the derivatives of relu (`y > 0` exactly when
/// `x > 0`), sigmoid, tanh and exponential are functions of the output,
/// softmax's and log-softmax's need only the output, and linear's neither. A layer whose
/// activation needs no input keeps no copy of it for training (conv-lstm's Conv1D(relu) kept
/// 1.6 MB a step).
pub fn grad_needs_input(a: Activation) -> bool {
    !matches!(a, Activation::Linear | Activation::Softmax | Activation::LogSoftmax)
        && output_grad(a, 0.0).is_none()
}

/// `a'(x)` from the output `y = a(x)` alone, for the activations whose derivative is a
/// function of it; `None` for the others.
#[inline(always)]
fn output_grad(a: Activation, y: f32) -> Option<f32> {
    match a {
        Activation::Relu => Some(f32::from(y > 0.0)),
        Activation::Sigmoid => Some(y * (1.0 - y)),
        Activation::Tanh => Some(1.0 - y * y),
        Activation::Exponential => Some(y),
        _ => None,
    }
}

/// `dx *= a'(x)` where the derivative is a function of the output `y` ([`output_grad`]);
/// `false` for the activations whose derivative is not.
fn scale_by_output_grad(a: Activation, y: &[f32], dx: &mut [f32]) -> bool {
    // One loop per activation (each arm's kind a constant), so that none branches on it.
    fn scale(kind: Activation, y: &[f32], dx: &mut [f32]) {
        dx.iter_mut().zip(y).for_each(|(d, y)| *d *= output_grad(kind, *y).unwrap_or(1.0));
    }
    match a {
        Activation::Relu => scale(Activation::Relu, y, dx),
        Activation::Sigmoid => scale(Activation::Sigmoid, y, dx),
        Activation::Tanh => scale(Activation::Tanh, y, dx),
        Activation::Exponential => scale(Activation::Exponential, y, dx),
        _ => return false,
    }
    true
}

/// The backward pass of [`apply`]: the gradient of the input from the output `y`, its
/// gradient `dy` and (when [`grad_needs_input`]) the input `x`, all rows of length `width`.
pub fn backward(a: Activation, x: Option<&[f32]>, y: &[f32], dy: &[f32], dx: &mut [f32], width: usize) {
    if a == Activation::Softmax && width > 0 {
        // Read from `dy` directly: a copy into `dx` first was one more pass over lm-gru's
        // 20 MB output gradient, on one thread.
        for ((row, yr), dyr) in dx.chunks_mut(width).zip(y.chunks(width)).zip(dy.chunks(width)) {
            let dot = dot(dyr, yr);
            for ((d, y), g) in row.iter_mut().zip(yr).zip(dyr) {
                *d = y * (g - dot);
            }
        }
        return;
    }
    dx.copy_from_slice(dy);
    if width == 0 {
        return;
    }
    match a {
        Activation::Linear | Activation::Softmax => {}
        Activation::LogSoftmax => {
            for (row, yr) in dx.chunks_mut(width).zip(y.chunks(width)) {
                let sum = sum_map(row, |v| v);
                for (d, y) in row.iter_mut().zip(yr) {
                    *d -= y.exp() * sum;
                }
            }
        }
        _ if scale_by_output_grad(a, y, dx) => {}
        _ => {
            let x = x.expect("the input is kept when the gradient needs it");
            for ((d, x), y) in dx.iter_mut().zip(x).zip(y) {
                *d *= grad(a, *x, *y);
            }
        }
    }
}

/// Applies `a` in place to rows of length `width` (softmax acts per row).
pub fn apply(a: Activation, data: &mut [f32], width: usize) {
    match a {
        Activation::Linear => {}
        Activation::Softmax => simd::softmax_rows(data, width),
        Activation::LogSoftmax => {
            if width == 0 {
                return;
            }
            // log(softmax) computed as x - max - log(sum exp(x - max)).
            for row in data.chunks_mut(width) {
                let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let sum: f32 = row.iter().map(|v| (v - max).exp()).sum();
                let shift = max + sum.ln();
                for v in row.iter_mut() {
                    *v -= shift;
                }
            }
        }
        Activation::Sigmoid => simd::map_in_place(simd::Unary::Sigmoid, data),
        Activation::Tanh => simd::map_in_place(simd::Unary::Tanh, data),
        Activation::Relu => simd::map_in_place(simd::Unary::Relu, data),
        Activation::Exponential => simd::map_in_place(simd::Unary::Exp, data),
        _ => {
            for v in data.iter_mut() {
                *v = scalar(a, *v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_values() {
        // Values from the definitions, computed independently in f64.
        let cases: &[(Activation, f32, f64)] = &[
            (Activation::Sigmoid, 0.5, 1.0 / (1.0 + (-0.5f64).exp())),
            (Activation::HardSigmoid, 1.0, 4.0 / 6.0),
            (Activation::HardSigmoidKeras2, 1.0, 0.7),
            (Activation::Elu, -1.0, (-1.0f64).exp() - 1.0),
            (Activation::Softplus, 2.0, (1.0 + 2.0f64.exp()).ln()),
            (Activation::Gelu, 1.0, 0.841_344_746),
            (Activation::Gelu, -0.5, -0.154_268_776_040_4),
            // 0.5 (1 + tanh(√(2/π) · 1.044715)), computed by hand in f64.
            (Activation::GeluApproximate, 1.0, 0.841_191_990_608_3),
            (Activation::Mish, 1.0, 1.0 * (1.0 + 1.0f64.exp()).ln().tanh()),
            (Activation::LeakyRelu, -2.0, -0.4),
            (Activation::Softsign, 3.0, 0.75),
        ];
        for (a, x, want) in cases {
            let got = scalar(*a, *x) as f64;
            assert!((got - want).abs() < 1e-6, "{a:?}({x}) = {got}, want {want}");
        }
    }

    #[test]
    fn derivatives_match_central_differences() {
        for (a, _) in Activation::ALL {
            if a.is_axis_wise() {
                continue;
            }
            for x in [-2.7f32, -0.4, 0.3, 1.9, 4.2] {
                let h = 1e-3f64;
                let f = |v: f64| scalar(*a, v as f32) as f64;
                let fd = (f(x as f64 + h) - f(x as f64 - h)) / (2.0 * h);
                let g = grad(*a, x, scalar(*a, x)) as f64;
                assert!(
                    (g - fd).abs() < 2e-3 * (1.0 + fd.abs()),
                    "{a:?}'({x}) = {g}, finite difference {fd}"
                );
            }
        }
    }

    /// The activations whose gradient needs no input give it from the output alone (the
    /// backward pass then gets no input), equal to the central differences.
    #[test]
    fn gradients_from_the_output_alone_match_central_differences() {
        let xs = [-2.7f32, -0.4, 0.3, 1.9, 4.2];
        let mut checked = 0;
        for (a, _) in Activation::ALL {
            if a.is_axis_wise() || grad_needs_input(*a) || *a == Activation::Linear {
                continue;
            }
            let mut y = xs.to_vec();
            apply(*a, &mut y, xs.len());
            let dy = [1.0, -2.0, 0.5, 3.0, -1.0];
            let mut dx = [0.0; 5];
            backward(*a, None, &y, &dy, &mut dx, xs.len());
            for ((x, d), g) in xs.iter().zip(dy).zip(dx) {
                let h = 1e-3f64;
                let f = |v: f64| scalar(*a, v as f32) as f64;
                let fd = d as f64 * (f(*x as f64 + h) - f(*x as f64 - h)) / (2.0 * h);
                assert!((g as f64 - fd).abs() < 2e-3 * (1.0 + fd.abs()), "{a:?}'({x}) · {d} = {g}, not {fd}");
            }
            checked += 1;
        }
        assert_eq!(checked, 4, "relu, sigmoid, tanh and exponential");
    }

    #[test]
    fn softmax_rows_sum_to_one_and_are_shift_invariant() {
        let mut v = vec![1.0, 2.0, 3.0, 1001.0, 1002.0, 1003.0];
        apply(Activation::Softmax, &mut v, 3);
        for i in 0..3 {
            assert!((v[i] - v[i + 3]).abs() < 1e-6);
        }
        assert!((v[..3].iter().sum::<f32>() - 1.0).abs() < 1e-6);
    }
}
