//! Keras's losses with the `sum_over_batch_size` reduction: the value and its gradient with
//! respect to the prediction.

use ndarray::ArrayD;

use crate::error::{Result, RuntimeError};
use crate::kernels::activation;
use crate::tensor::Tensor;

const EPS: f32 = 1e-7;

/// A loss function, by Keras's name.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Loss {
    /// `mse` / `mean_squared_error`.
    MeanSquaredError,
    /// `mae` / `mean_absolute_error`.
    MeanAbsoluteError,
    /// `binary_crossentropy`.
    BinaryCrossentropy {
        /// Predictions are logits.
        from_logits: bool,
    },
    /// `categorical_crossentropy`.
    CategoricalCrossentropy {
        /// Predictions are logits.
        from_logits: bool,
    },
    /// `sparse_categorical_crossentropy` (integer targets).
    SparseCategoricalCrossentropy {
        /// Predictions are logits.
        from_logits: bool,
    },
    /// `kl_divergence` / `kld` / Keras 2's `kullback_leibler_divergence`.
    KlDivergence,
    /// `huber` with `delta`.
    Huber {
        /// Where the loss turns linear.
        delta: f32,
    },
}

impl Loss {
    /// Looks a loss up by a Keras name (Keras 2 names accepted).
    ///
    /// ```
    /// use seqmodel_runtime::train::Loss;
    /// assert_eq!(Loss::from_name("kullback_leibler_divergence"), Some(Loss::KlDivergence));
    /// ```
    pub fn from_name(name: &str) -> Option<Loss> {
        Some(match name {
            "mse" | "mean_squared_error" | "MeanSquaredError" => Loss::MeanSquaredError,
            "mae" | "mean_absolute_error" | "MeanAbsoluteError" => Loss::MeanAbsoluteError,
            "binary_crossentropy" | "BinaryCrossentropy" => Loss::BinaryCrossentropy { from_logits: false },
            "categorical_crossentropy" | "CategoricalCrossentropy" => {
                Loss::CategoricalCrossentropy { from_logits: false }
            }
            "sparse_categorical_crossentropy" | "SparseCategoricalCrossentropy" => {
                Loss::SparseCategoricalCrossentropy { from_logits: false }
            }
            "kl_divergence" | "kld" | "kullback_leibler_divergence" | "KLDivergence" => Loss::KlDivergence,
            "huber" | "huber_loss" | "Huber" => Loss::Huber { delta: 1.0 },
            _ => return None,
        })
    }

    /// The batch loss and its gradient with respect to `pred`.
    pub fn value_and_grad(&self, pred: &ArrayD<f32>, target: &Tensor) -> Result<(f32, ArrayD<f32>)> {
        let width = *pred.shape().last().unwrap_or(&1);
        let rows = pred.len() / width.max(1);
        let p = pred.as_standard_layout();
        let p = p.as_slice().expect("standard layout");
        // Class targets write every element of the gradient; the others start from zeros.
        let mut grad = match target {
            Tensor::I32(_) => crate::pool::overwritten(p.len()),
            Tensor::F32(_) => crate::pool::zeros(p.len()),
        };
        let target = match target {
            Tensor::I32(ids) if matches!(self, Loss::SparseCategoricalCrossentropy { .. }) => {
                if ids.len() != rows {
                    return Err(shape_err(pred.shape(), ids.shape()));
                }
                Targets::Classes(ids.as_standard_layout())
            }
            Tensor::I32(_) => {
                return Err(RuntimeError::InvalidData(
                    "integer targets need sparse_categorical_crossentropy".into(),
                ));
            }
            // Class ids given as floats (Keras takes them): one per row, whole numbers.
            Tensor::F32(t) if matches!(self, Loss::SparseCategoricalCrossentropy { .. }) => {
                if t.len() != rows {
                    return Err(shape_err(pred.shape(), t.shape()));
                }
                let ids = t.mapv(|v| if v.fract() == 0.0 && v.abs() < 1e9 { v as i32 } else { -1 });
                if let Some(v) = t.iter().find(|v| v.fract() != 0.0 || v.abs() >= 1e9) {
                    return Err(RuntimeError::InvalidData(format!(
                        "sparse_categorical_crossentropy: target {v} is not a class id"
                    )));
                }
                Targets::Classes(ids.into())
            }
            Tensor::F32(t) => {
                if t.shape() != pred.shape() {
                    return Err(shape_err(pred.shape(), t.shape()));
                }
                Targets::Values(t.as_standard_layout())
            }
        };
        let total = self.rows_loss(p, &target, &mut grad, width, rows)?;
        let grad = ArrayD::from_shape_vec(pred.raw_dim(), grad).expect("same shape");
        Ok(((total / rows.max(1) as f64) as f32, grad))
    }

    /// The summed loss of the `rows` rows of `p` (`width` wide), their gradients (of the
    /// batch mean) written to `grad`.
    fn rows_loss(
        &self,
        p: &[f32],
        target: &Targets<'_>,
        grad: &mut [f32],
        width: usize,
        rows: usize,
    ) -> Result<f64> {
        // The mean over rows: every gradient is scaled by `1 / rows` where it is written.
        let inv_n = 1.0 / rows.max(1) as f32;
        let mut total = 0.0f64;
        match (self, target) {
            (Loss::SparseCategoricalCrossentropy { from_logits }, Targets::Classes(ids)) => {
                let ids = ids.as_slice().expect("standard layout");
                for (r, &id) in ids.iter().enumerate().take(rows) {
                    if id < 0 || id as usize >= width {
                        return Err(RuntimeError::InvalidData(format!(
                            "target class {id} outside 0..{width}"
                        )));
                    }
                    let row = &p[r * width..][..width];
                    let g = &mut grad[r * width..][..width];
                    let id = id as usize;
                    if *from_logits {
                        // The softmax written into the gradient's row, then made its gradient.
                        let lse = log_softmax_into(row, g);
                        total += (lse - row[id]) as f64;
                        for (j, g) in g.iter_mut().enumerate() {
                            *g = (*g - f32::from(j == id)) * inv_n;
                        }
                    } else {
                        let s = activation::sum_map(row, |v| v.clamp(EPS, 1.0 - EPS));
                        let q = row[id].clamp(EPS, 1.0 - EPS);
                        total += (s.ln() - q.ln()) as f64;
                        // Every class gets 1/s where the clamp passes its gradient, the
                        // target class also -1/p (one loop without a branch, then one entry).
                        let inv_s = 1.0 / s;
                        let scaled = inv_s * inv_n;
                        for (g, &v) in g.iter_mut().zip(row) {
                            *g = f32::from(v == v.clamp(EPS, 1.0 - EPS)) * scaled;
                        }
                        g[id] = f32::from(row[id] == q) * (inv_s - 1.0 / q) * inv_n;
                    }
                }
            }
            (loss, Targets::Values(t)) => {
                let t = t.as_slice().expect("standard layout");
                for r in 0..rows {
                    let row = &p[r * width..][..width];
                    let tr = &t[r * width..][..width];
                    let g = &mut grad[r * width..][..width];
                    total += row_loss(*loss, row, tr, g) as f64;
                    g.iter_mut().for_each(|v| *v *= inv_n);
                }
            }
            (_, Targets::Classes(_)) => unreachable!("class targets are checked to go with the sparse loss"),
        }
        Ok(total)
    }
}

/// The targets of a batch, in standard layout.
enum Targets<'a> {
    /// Class ids, one per row (sparse categorical cross-entropy).
    Classes(ndarray::CowArray<'a, i32, ndarray::IxDyn>),
    /// Values shaped like the predictions.
    Values(ndarray::CowArray<'a, f32, ndarray::IxDyn>),
}

fn shape_err(p: &[usize], t: &[usize]) -> RuntimeError {
    RuntimeError::Shape(format!("targets of shape {t:?} do not fit predictions of shape {p:?}"))
}

/// The log of the sum of `exp(row)`, with the softmax of `row` written to `out`.
fn log_softmax_into(row: &[f32], out: &mut [f32]) -> f32 {
    let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let s = activation::sum_map(row, |v| (v - m).exp());
    let lse = m + s.ln();
    for (o, v) in out.iter_mut().zip(row) {
        *o = (v - lse).exp();
    }
    lse
}

/// The loss of one row (mean or sum over the last axis, as Keras) and its gradient.
fn row_loss(loss: Loss, p: &[f32], t: &[f32], g: &mut [f32]) -> f32 {
    let w = p.len() as f32;
    match loss {
        Loss::MeanSquaredError => {
            let mut s = 0.0;
            for j in 0..p.len() {
                let d = p[j] - t[j];
                s += d * d;
                g[j] = 2.0 * d / w;
            }
            s / w
        }
        Loss::MeanAbsoluteError => {
            let mut s = 0.0;
            for j in 0..p.len() {
                let d = p[j] - t[j];
                s += d.abs();
                g[j] = if d > 0.0 {
                    1.0
                } else if d < 0.0 {
                    -1.0
                } else {
                    0.0
                } / w;
            }
            s / w
        }
        Loss::Huber { delta } => {
            let mut s = 0.0;
            for j in 0..p.len() {
                let d = p[j] - t[j];
                if d.abs() <= delta {
                    s += 0.5 * d * d;
                    g[j] = d / w;
                } else {
                    s += delta * (d.abs() - 0.5 * delta);
                    g[j] = delta * d.signum() / w;
                }
            }
            s / w
        }
        Loss::KlDivergence => {
            let mut s = 0.0;
            for j in 0..p.len() {
                let tc = t[j].clamp(EPS, 1.0);
                let q = p[j].clamp(EPS, 1.0);
                s += tc * (tc / q).ln();
                g[j] = if p[j] == q { -tc / q } else { 0.0 };
            }
            s
        }
        Loss::BinaryCrossentropy { from_logits } => {
            let mut s = 0.0;
            for j in 0..p.len() {
                if from_logits {
                    let x = p[j];
                    s += x.max(0.0) - x * t[j] + (-x.abs()).exp().ln_1p();
                    g[j] = (1.0 / (1.0 + (-x).exp()) - t[j]) / w;
                } else {
                    let q = p[j].clamp(EPS, 1.0 - EPS);
                    s += -(t[j] * q.ln() + (1.0 - t[j]) * (1.0 - q).ln());
                    g[j] = if p[j] == q { (-t[j] / q + (1.0 - t[j]) / (1.0 - q)) / w } else { 0.0 };
                }
            }
            s / w
        }
        Loss::CategoricalCrossentropy { from_logits } => {
            if from_logits {
                // The softmax written into `g`, then made the gradient.
                let lse = log_softmax_into(p, g);
                let ts: f32 = t.iter().sum();
                let mut s = 0.0;
                for j in 0..p.len() {
                    s += t[j] * (lse - p[j]);
                    g[j] = g[j] * ts - t[j];
                }
                s
            } else {
                // Keras (TF backend): p / sum(p), clipped, then -sum(t log p).
                let sum: f32 = p.iter().sum();
                let mut s = 0.0;
                // The gradient of the normalised q first, in `g`.
                for j in 0..p.len() {
                    let q = p[j] / sum;
                    let qc = q.clamp(EPS, 1.0 - EPS);
                    s -= t[j] * qc.ln();
                    g[j] = if q == qc { -t[j] / qc } else { 0.0 };
                }
                let dot: f32 = (0..p.len()).map(|j| g[j] * p[j]).sum::<f32>() / (sum * sum);
                for g in g.iter_mut() {
                    *g = *g / sum - dot;
                }
                s
            }
        }
        Loss::SparseCategoricalCrossentropy { .. } => unreachable!("handled with integer targets"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::IxDyn;

    fn logits() -> ArrayD<f32> {
        ArrayD::from_shape_vec(
            IxDyn(&[2, 3, 4]),
            (0..24).map(|i| ((i * 7 % 11) as f32 - 5.0) * 0.3).collect(),
        )
        .unwrap()
    }

    /// The mean of `-log softmax(row)[id]` over the rows, in f64.
    fn reference(x: &[f32], ids: &[usize], width: usize) -> f64 {
        let rows = x.chunks(width).zip(ids);
        let sum: f64 = rows
            .map(|(row, &id)| {
                let lse = row.iter().map(|v| (*v as f64).exp()).sum::<f64>().ln();
                lse - row[id] as f64
            })
            .sum();
        sum / ids.len() as f64
    }

    #[test]
    fn sparse_crossentropy_from_logits_matches_its_definition_and_finite_differences() {
        let x = logits();
        let ids = [3usize, 0, 2, 1, 1, 3];
        let targets =
            Tensor::I32(ArrayD::from_shape_vec(IxDyn(&[2, 3]), ids.map(|i| i as i32).to_vec()).unwrap());
        let loss = Loss::SparseCategoricalCrossentropy { from_logits: true };
        let (value, grad) = loss.value_and_grad(&x, &targets).unwrap();
        let xs = x.as_slice().unwrap();
        assert!((value as f64 - reference(xs, &ids, 4)).abs() < 1e-6);
        for k in 0..xs.len() {
            let h = 1e-3f32;
            let (mut up, mut down) = (xs.to_vec(), xs.to_vec());
            up[k] += h;
            down[k] -= h;
            let fd = (reference(&up, &ids, 4) - reference(&down, &ids, 4)) / (2.0 * h as f64);
            assert!((grad.as_slice().unwrap()[k] as f64 - fd).abs() < 1e-4, "element {k}");
        }
    }

    #[test]
    fn class_ids_given_as_floats_count_as_ids_and_fractions_are_refused() {
        let x = logits();
        let loss = Loss::SparseCategoricalCrossentropy { from_logits: true };
        let ints = Tensor::I32(ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![3, 0, 2, 1, 1, 3]).unwrap());
        let floats =
            Tensor::F32(ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![3.0, 0.0, 2.0, 1.0, 1.0, 3.0]).unwrap());
        let (a, ga) = loss.value_and_grad(&x, &ints).unwrap();
        let (b, gb) = loss.value_and_grad(&x, &floats).unwrap();
        assert_eq!((a, ga), (b, gb));
        let half =
            Tensor::F32(ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![3.0, 0.5, 2.0, 1.0, 1.0, 3.0]).unwrap());
        let err = loss.value_and_grad(&x, &half).unwrap_err().to_string();
        assert!(err.contains("0.5 is not a class id"), "{err}");
        let out_of_range =
            Tensor::F32(ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![3.0, 4.0, 2.0, 1.0, 1.0, 3.0]).unwrap());
        let err = loss.value_and_grad(&x, &out_of_range).unwrap_err().to_string();
        assert!(err.contains("target class 4 outside 0..4"), "{err}");
    }
}
