//! Keras's optimizers with their exact update rules and defaults, plus Keras 2's `decay`
//! and the clipping options.

use std::collections::HashMap;

use ndarray::ArrayD;

/// Which update rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rule {
    /// `SGD(momentum, nesterov)`.
    Sgd {
        /// Momentum (0 = plain SGD).
        momentum: f32,
        /// Nesterov momentum.
        nesterov: bool,
    },
    /// `Adam(beta_1, beta_2, epsilon, amsgrad)`.
    Adam {
        /// First-moment decay.
        beta_1: f32,
        /// Second-moment decay.
        beta_2: f32,
        /// Added to the denominator.
        epsilon: f32,
        /// Keep the maximum of past second moments.
        amsgrad: bool,
    },
    /// `RMSprop(rho, momentum, epsilon, centered)`.
    RmsProp {
        /// Decay of the squared-gradient average.
        rho: f32,
        /// Momentum.
        momentum: f32,
        /// Added inside the square root.
        epsilon: f32,
        /// Subtract the squared mean gradient.
        centered: bool,
    },
    /// `Adagrad(initial_accumulator_value, epsilon)`.
    Adagrad {
        /// Starting value of the accumulators.
        initial_accumulator_value: f32,
        /// Added inside the square root.
        epsilon: f32,
    },
    /// `Adamax(beta_1, beta_2, epsilon)`: Adam with the infinity norm.
    Adamax {
        /// First-moment decay.
        beta_1: f32,
        /// Decay of the largest past gradient.
        beta_2: f32,
        /// Added to the denominator.
        epsilon: f32,
    },
    /// `Nadam(beta_1, beta_2, epsilon)`: Adam with Nesterov momentum (Keras's schedule of
    /// momentum, `beta_1 · (1 - 0.5 · 0.96^t)`).
    Nadam {
        /// First-moment decay.
        beta_1: f32,
        /// Second-moment decay.
        beta_2: f32,
        /// Added to the denominator.
        epsilon: f32,
    },
}

/// For weights whose gradient is sparse (an Embedding's rows), sums over the gathered
/// slices that Keras on TensorFlow takes before they are added up: a token seen twice in a
/// batch contributes `g₁² + g₂²` to Adam's, RMSprop's, Adagrad's and Nadam's second moments
/// (not `(g₁ + g₂)²`) and `|g₁| + |g₂|` to Adamax's largest gradient.
#[derive(Debug, Default)]
pub struct SparseSums {
    /// The sum of each slice's square, per weight key.
    pub squares: HashMap<String, ArrayD<f32>>,
    /// The sum of each slice's absolute value, per weight key (kept only for Adamax).
    pub abs: HashMap<String, ArrayD<f32>>,
}

/// An optimizer with its state (iteration count and slot variables per weight).
#[derive(Debug, Clone)]
pub struct Optimizer {
    /// The update rule.
    pub rule: Rule,
    /// Learning rate.
    pub learning_rate: f32,
    /// Keras 2 `decay`: `lr / (1 + decay · iterations)`.
    pub decay: f32,
    /// Clip each gradient to this L2 norm.
    pub clipnorm: Option<f32>,
    /// Clip each gradient element to `[-v, v]`.
    pub clipvalue: Option<f32>,
    /// Clip all gradients together to this global L2 norm.
    pub global_clipnorm: Option<f32>,
    /// Keras 3's decoupled `weight_decay` (any optimizer; AdamW's 0.004 by default): before
    /// each update a weight loses `weight · weight_decay · learning_rate`.
    pub weight_decay: Option<f32>,
    /// Steps taken.
    pub iterations: u64,
    slots: HashMap<String, Vec<ArrayD<f32>>>,
    /// Nadam's product of the momentum schedule over the steps taken.
    u_product: f32,
}

impl Optimizer {
    /// Checks the hyper-parameters: a finite, non-negative learning rate and decay, positive
    /// clip thresholds, decay rates in `[0, 1)` (momentum in `[0, 1]`), non-negative epsilons.
    pub fn validate(&self) -> crate::Result<()> {
        let bad = |what: &str, v: f32| {
            Err(crate::RuntimeError::InvalidData(format!("optimizer: {what} = {v} is not allowed")))
        };
        let unit = |v: f32| (0.0..1.0).contains(&v);
        if !self.learning_rate.is_finite() || self.learning_rate < 0.0 {
            return bad("learning_rate", self.learning_rate);
        }
        if !self.decay.is_finite() || self.decay < 0.0 {
            return bad("decay", self.decay);
        }
        if let Some(wd) = self.weight_decay.filter(|v| !v.is_finite() || *v < 0.0) {
            return bad("weight_decay", wd);
        }
        for (name, c) in [
            ("clipnorm", self.clipnorm),
            ("clipvalue", self.clipvalue),
            ("global_clipnorm", self.global_clipnorm),
        ] {
            if let Some(v) = c.filter(|v| !v.is_finite() || *v <= 0.0) {
                return bad(name, v);
            }
        }
        let eps_ok = |e: f32| e.is_finite() && e >= 0.0;
        match self.rule {
            Rule::Sgd { momentum, .. } if !(0.0..=1.0).contains(&momentum) => bad("momentum", momentum),
            Rule::Adam { beta_1, .. } | Rule::Adamax { beta_1, .. } | Rule::Nadam { beta_1, .. }
                if !unit(beta_1) =>
            {
                bad("beta_1", beta_1)
            }
            Rule::Adam { beta_2, .. } | Rule::Adamax { beta_2, .. } | Rule::Nadam { beta_2, .. }
                if !unit(beta_2) =>
            {
                bad("beta_2", beta_2)
            }
            Rule::Adam { epsilon, .. }
            | Rule::RmsProp { epsilon, .. }
            | Rule::Adagrad { epsilon, .. }
            | Rule::Adamax { epsilon, .. }
            | Rule::Nadam { epsilon, .. }
                if !eps_ok(epsilon) =>
            {
                bad("epsilon", epsilon)
            }
            Rule::RmsProp { rho, .. } if !unit(rho) => bad("rho", rho),
            Rule::RmsProp { momentum, .. } if !(0.0..=1.0).contains(&momentum) => bad("momentum", momentum),
            Rule::Adagrad { initial_accumulator_value: v, .. } if !v.is_finite() || v < 0.0 => {
                bad("initial_accumulator_value", v)
            }
            _ => Ok(()),
        }
    }

    /// `SGD(learning_rate)` with Keras's defaults (0.01, no momentum).
    pub fn sgd(learning_rate: f32) -> Self {
        Self::new(Rule::Sgd { momentum: 0.0, nesterov: false }, learning_rate)
    }

    /// `Adam(learning_rate)` with Keras's defaults (0.9, 0.999, 1e-7, no amsgrad).
    pub fn adam(learning_rate: f32) -> Self {
        Self::new(Rule::Adam { beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7, amsgrad: false }, learning_rate)
    }

    /// `RMSprop(learning_rate)` with Keras 3's defaults (rho 0.9, epsilon 1e-7).
    pub fn rmsprop(learning_rate: f32) -> Self {
        Self::new(Rule::RmsProp { rho: 0.9, momentum: 0.0, epsilon: 1e-7, centered: false }, learning_rate)
    }

    /// `Adagrad(learning_rate)` with Keras's defaults (accumulators 0.1, epsilon 1e-7).
    pub fn adagrad(learning_rate: f32) -> Self {
        Self::new(Rule::Adagrad { initial_accumulator_value: 0.1, epsilon: 1e-7 }, learning_rate)
    }

    /// `AdamW(learning_rate)` with Keras's defaults: Adam's, and a weight decay of 0.004.
    pub fn adamw(learning_rate: f32) -> Self {
        Optimizer { weight_decay: Some(0.004), ..Self::adam(learning_rate) }
    }

    /// `Adamax(learning_rate)` with Keras's defaults (0.9, 0.999, 1e-7).
    pub fn adamax(learning_rate: f32) -> Self {
        Self::new(Rule::Adamax { beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7 }, learning_rate)
    }

    /// `Nadam(learning_rate)` with Keras's defaults (0.9, 0.999, 1e-7).
    pub fn nadam(learning_rate: f32) -> Self {
        Self::new(Rule::Nadam { beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7 }, learning_rate)
    }

    /// An optimizer with a rule and learning rate, no decay or clipping.
    pub fn new(rule: Rule, learning_rate: f32) -> Self {
        Optimizer {
            rule,
            learning_rate,
            decay: 0.0,
            clipnorm: None,
            clipvalue: None,
            global_clipnorm: None,
            weight_decay: None,
            iterations: 0,
            slots: HashMap::new(),
            u_product: 1.0,
        }
    }

    /// Applies one step to every weight that has a gradient.
    pub fn apply(&mut self, weights: &mut crate::WeightStore, grads: &mut HashMap<String, ArrayD<f32>>) {
        self.apply_sparse_aware(weights, grads, &SparseSums::default());
    }

    /// Whether the update reads [`SparseSums::abs`] (Adamax).
    pub fn needs_abs_sums(&self) -> bool {
        matches!(self.rule, Rule::Adamax { .. })
    }

    /// Like [`Optimizer::apply`], where `sparse` gives, for weights whose gradient is sparse
    /// (an Embedding's rows), the sums over occurrences that Keras on TensorFlow takes (see
    /// [`SparseSums`]).
    pub fn apply_sparse_aware(
        &mut self,
        weights: &mut crate::WeightStore,
        grads: &mut HashMap<String, ArrayD<f32>>,
        sparse: &SparseSums,
    ) {
        let squares = &sparse.squares;
        if let Some(max) = self.global_clipnorm {
            let norm =
                grads.values().flat_map(|g| g.iter()).map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt() as f32;
            if norm > max {
                for g in grads.values_mut() {
                    g.mapv_inplace(|v| v * max / norm);
                }
            }
        }
        let lr = self.learning_rate / (1.0 + self.decay * self.iterations as f32);
        let t = (self.iterations + 1) as i32;
        // Nadam's momentum schedule: this step's and the next's, and their products.
        let nadam_u = |beta_1: f32, step: i32| beta_1 * (1.0 - 0.5 * 0.96f32.powi(step));
        if let Rule::Nadam { beta_1, .. } = self.rule {
            self.u_product *= nadam_u(beta_1, t);
        }
        // Each weight's update reads only its own gradient and slots: any order will do.
        for (key, g) in grads.iter() {
            // Copied only when clipping changes it.
            let mut g = std::borrow::Cow::Borrowed(g);
            if let Some(max) = self.clipnorm {
                let norm = g.iter().map(|v| v * v).sum::<f32>().sqrt();
                if norm > max {
                    g.to_mut().mapv_inplace(|v| v * max / norm);
                }
            }
            if let Some(c) = self.clipvalue {
                g.to_mut().mapv_inplace(|v| v.clamp(-c, c));
            }
            let g = &*g;
            let Some(w) = weights.get_mut(key) else { continue };
            if let Some(wd) = self.weight_decay.filter(|wd| *wd != 0.0) {
                // Keras 3: after clipping, before the update, at the undecayed rate.
                let rate = self.learning_rate;
                w.mapv_inplace(|v| v - v * wd * rate);
            }
            let zeros = || ArrayD::<f32>::zeros(g.raw_dim());
            match self.rule {
                Rule::Sgd { momentum, nesterov } => {
                    if momentum == 0.0 {
                        w.zip_mut_with(g, |w, g| *w -= lr * g);
                    } else {
                        let s = slot_list(&mut self.slots, key, 1, &zeros);
                        let m = &mut s[0];
                        m.zip_mut_with(g, |m, g| *m = momentum * *m - lr * g);
                        if nesterov {
                            ndarray::Zip::from(&mut *w)
                                .and(&*m)
                                .and(g)
                                .for_each(|w, m, g| *w += momentum * m - lr * g);
                        } else {
                            w.zip_mut_with(m, |w, m| *w += m);
                        }
                    }
                }
                Rule::Adam { beta_1, beta_2, epsilon, amsgrad } => {
                    let s = slot_list(&mut self.slots, key, 3, &zeros);
                    let lr_t = lr * (1.0 - beta_2.powi(t)).sqrt() / (1.0 - beta_1.powi(t));
                    let [m, v, v_max] = &mut s[..] else { unreachable!("Adam keeps three slots") };
                    // The squared gradient is the sparse sum of squares where there is one.
                    let sq = squares.get(key).map(|q| q.as_standard_layout());
                    let g = g.as_standard_layout();
                    standard(w);
                    let step = AdamStep { beta_1, beta_2, epsilon, lr_t };
                    let (Some(ws), Some(ms), Some(vs), Some(vm), Some(gs)) = (
                        w.as_slice_mut(),
                        m.as_slice_mut(),
                        v.as_slice_mut(),
                        v_max.as_slice_mut(),
                        g.as_slice(),
                    ) else {
                        unreachable!("standard layouts: the weight made so, the slots and gradients built so")
                    };
                    let sq = sq.as_ref().map(|q| q.as_slice().expect("standard layout"));
                    adam(step, AdamSlices { w: ws, m: ms, v: vs, v_max: amsgrad.then_some(vm), g: gs, sq });
                }
                Rule::RmsProp { rho, momentum, epsilon, centered } => {
                    let s = slot_list(&mut self.slots, key, 3, &zeros);
                    add_squares(&mut s[0], g, squares.get(key), |v, g2| *v = rho * *v + (1.0 - rho) * g2);
                    if centered {
                        s[2].zip_mut_with(g, |a, g| *a = rho * *a + (1.0 - rho) * g);
                    }
                    let [v, m, a] = &mut s[..] else { unreachable!("RMSprop keeps three slots") };
                    let increment = |g: f32, v: f32, a: f32| {
                        let denom = if centered { v - a * a } else { v };
                        lr * g / (denom + epsilon).sqrt()
                    };
                    if momentum > 0.0 {
                        ndarray::Zip::from(&mut *m)
                            .and(g)
                            .and(&*v)
                            .and(&*a)
                            .for_each(|m, g, v, a| *m = momentum * *m + increment(*g, *v, *a));
                        w.zip_mut_with(m, |w, m| *w -= m);
                    } else {
                        ndarray::Zip::from(&mut *w)
                            .and(g)
                            .and(&*v)
                            .and(&*a)
                            .for_each(|w, g, v, a| *w -= increment(*g, *v, *a));
                    }
                }
                Rule::Adagrad { initial_accumulator_value, epsilon } => {
                    let s = slot_list(&mut self.slots, key, 1, &|| {
                        ArrayD::from_elem(g.raw_dim(), initial_accumulator_value)
                    });
                    add_squares(&mut s[0], g, squares.get(key), |a, g2| *a += g2);
                    ndarray::Zip::from(&mut *w)
                        .and(&s[0])
                        .and(g)
                        .for_each(|w, a, g| *w -= lr * g / (a + epsilon).sqrt());
                }
                Rule::Adamax { beta_1, beta_2, epsilon } => {
                    let s = slot_list(&mut self.slots, key, 2, &zeros);
                    let correction = 1.0 - beta_1.powi(t);
                    let [m, u] = &mut s[..] else { unreachable!("Adamax keeps two slots") };
                    m.zip_mut_with(g, |m, g| *m += (g - *m) * (1.0 - beta_1));
                    match sparse.abs.get(key) {
                        Some(a) => u.zip_mut_with(a, |u, a| *u = (beta_2 * *u).max(*a)),
                        None => u.zip_mut_with(g, |u, g| *u = (beta_2 * *u).max(g.abs())),
                    }
                    ndarray::Zip::from(&mut *w)
                        .and(&*m)
                        .and(&*u)
                        .for_each(|w, m, u| *w -= lr * m / (correction * (u + epsilon)));
                }
                Rule::Nadam { beta_1, beta_2, epsilon } => {
                    let s = slot_list(&mut self.slots, key, 2, &zeros);
                    let (u_t, u_next) = (nadam_u(beta_1, t), nadam_u(beta_1, t + 1));
                    let (u_product, u_product_next) = (self.u_product, self.u_product * u_next);
                    let beta_2_power = beta_2.powi(t);
                    let [m, v] = &mut s[..] else { unreachable!("Nadam keeps two slots") };
                    m.zip_mut_with(g, |m, g| *m += (g - *m) * (1.0 - beta_1));
                    add_squares(v, g, squares.get(key), |v, g2| *v += (g2 - *v) * (1.0 - beta_2));
                    ndarray::Zip::from(&mut *w).and(&*m).and(&*v).and(g).for_each(|w, m, v, g| {
                        let m_hat = u_next * m / (1.0 - u_product_next) + (1.0 - u_t) * g / (1.0 - u_product);
                        let v_hat = v / (1.0 - beta_2_power);
                        *w -= m_hat * lr / (v_hat.sqrt() + epsilon);
                    });
                }
            }
        }
        self.iterations += 1;
    }
}

/// The `n` slot variables of weight `key`, made with `init` the first time (the key is
/// copied only then).
fn slot_list<'s>(
    slots: &'s mut HashMap<String, Vec<ArrayD<f32>>>,
    key: &str,
    n: usize,
    init: &dyn Fn() -> ArrayD<f32>,
) -> &'s mut Vec<ArrayD<f32>> {
    if !slots.contains_key(key) {
        slots.insert(key.to_owned(), (0..n).map(|_| init()).collect());
    }
    slots.get_mut(key).expect("inserted above")
}

/// Folds the squared gradient into `acc` with `f(acc, g²)`: the sparse sum of squares where
/// there is one (see [`SparseSums`]), else `g`'s squares, computed as they are read.
fn add_squares(
    acc: &mut ArrayD<f32>,
    g: &ArrayD<f32>,
    sparse: Option<&ArrayD<f32>>,
    f: impl Fn(&mut f32, f32),
) {
    match sparse {
        Some(q) => acc.zip_mut_with(q, |a, q| f(a, *q)),
        None => acc.zip_mut_with(g, |a, g| f(a, g * g)),
    }
}

/// Makes `w` standard-layout (a weight set from a transposed view, say) so that its
/// update runs on a slice.
fn standard(w: &mut ArrayD<f32>) {
    if !w.is_standard_layout() {
        *w = w.as_standard_layout().into_owned();
    }
}

/// Adam's constants for one step.
#[derive(Debug, Clone, Copy)]
struct AdamStep {
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    /// The learning rate with both bias corrections.
    lr_t: f32,
}

/// Weights from this many elements update on the helper threads too (a weight's update is a
/// pass over five arrays, bound by memory: lm-gru's 1.28 M-element Dense kernel and
/// Embedding table took about 2 ms each on one thread).
const PARALLEL_MIN_ELEMENTS: usize = 1 << 18;

/// One weight's slices for [`adam`]: the weight, its moments (`v_max` with amsgrad), its
/// gradient and, where it is a sparse sum of squares, the squared gradient.
struct AdamSlices<'a> {
    w: &'a mut [f32],
    m: &'a mut [f32],
    v: &'a mut [f32],
    v_max: Option<&'a mut [f32]>,
    g: &'a [f32],
    sq: Option<&'a [f32]>,
}

/// Adam's update of one weight and its moments in one pass, in chunks on the helper threads
/// when the weight is large. Each element's arithmetic is Keras's and the same whatever the
/// split.
fn adam(step: AdamStep, s: AdamSlices<'_>) {
    let threads = if s.w.len() >= PARALLEL_MIN_ELEMENTS { crate::num_threads() } else { 1 };
    if threads <= 1 {
        return adam_chunk(step, s);
    }
    let AdamSlices { w, m, v, v_max, g, sq } = s;
    let per = w.len().div_ceil(threads);
    let mut v_max = v_max.map(|x| x.chunks_mut(per));
    let mut sq = sq.map(|x| x.chunks(per));
    let chunks = w.chunks_mut(per).zip(m.chunks_mut(per)).zip(v.chunks_mut(per)).zip(g.chunks(per));
    let jobs = chunks.map(|(((w, m), v), g)| {
        let (v_max, sq) = (v_max.as_mut().and_then(Iterator::next), sq.as_mut().and_then(Iterator::next));
        let chunk = AdamSlices { w, m, v, v_max, g, sq };
        move || adam_chunk(step, chunk)
    });
    crate::parallel::run_jobs(threads, jobs);
}

/// [`adam`] on one chunk, on this thread.
fn adam_chunk(step: AdamStep, s: AdamSlices<'_>) {
    let AdamSlices { w, m, v, v_max, g, sq } = s;
    let n = w.len();
    let (m, v, g) = (&mut m[..n], &mut v[..n], &g[..n]);
    // One loop per case, so that none branches per element.
    match (sq, v_max) {
        (Some(q), Some(vm)) => adam_loop::<true>(step, (w, m, v, &mut vm[..n]), g, |i| q[i]),
        (Some(q), None) => adam_loop::<false>(step, (w, m, v, &mut []), g, |i| q[i]),
        (None, Some(vm)) => adam_loop::<true>(step, (w, m, v, &mut vm[..n]), g, |i| g[i] * g[i]),
        (None, None) => adam_loop::<false>(step, (w, m, v, &mut []), g, |i| g[i] * g[i]),
    }
}

/// Keras's Adam on each element: `m += (g - m)(1 - β₁)`, `v += (g² - v)(1 - β₂)`, with
/// amsgrad `v_max = max(v_max, v)`, and `w -= lr_t · m / (√v + ε)` (√v_max with amsgrad);
/// the squared gradient given by `second`.
#[inline(always)]
fn adam_loop<const AMSGRAD: bool>(
    step: AdamStep,
    (w, m, v, v_max): (&mut [f32], &mut [f32], &mut [f32], &mut [f32]),
    g: &[f32],
    second: impl Fn(usize) -> f32,
) {
    let AdamStep { beta_1, beta_2, epsilon, lr_t } = step;
    let n = w.len();
    let (m, v, g) = (&mut m[..n], &mut v[..n], &g[..n]);
    for i in 0..n {
        m[i] += (g[i] - m[i]) * (1.0 - beta_1);
        v[i] += (second(i) - v[i]) * (1.0 - beta_2);
        let denom = if AMSGRAD {
            v_max[i] = v_max[i].max(v[i]);
            v_max[i]
        } else {
            v[i]
        };
        w[i] -= lr_t * m[i] / (denom.sqrt() + epsilon);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One Adam step from the published algorithm, written out by hand.
    #[test]
    fn adam_first_step_moves_by_the_learning_rate() {
        let mut w = crate::WeightStore::new();
        w.insert("w", ArrayD::from_elem(ndarray::IxDyn(&[2]), 1.0));
        let mut g = HashMap::from([(
            "w".to_string(),
            ArrayD::from_shape_vec(ndarray::IxDyn(&[2]), vec![0.5, -2.0]).unwrap(),
        )]);
        let mut opt = Optimizer::adam(0.1);
        opt.apply(&mut w, &mut g);
        // m = 0.1 g, v = 0.001 g², lr_t = 0.1·sqrt(0.001)/0.1 → step = lr·g/|g| (up to ε).
        let got = w.get("w").unwrap();
        assert!((got[[0]] - 0.9).abs() < 1e-5 && (got[[1]] - 1.1).abs() < 1e-5, "{got}");
    }

    /// Three Adam steps on a weight large enough to be updated in chunks on two threads,
    /// with and without amsgrad and a sparse sum of squares, equal the algorithm written out
    /// in f64, on one thread and two.
    #[test]
    fn adam_in_chunks_follows_the_algorithm() {
        let n = PARALLEL_MIN_ELEMENTS + 7;
        let value = |i: usize, s: usize| (((i * 31 + s * 17) % 97) as f32 - 48.0) / 50.0;
        for amsgrad in [false, true] {
            for sparse in [false, true] {
                for threads in [1, 2] {
                    crate::set_num_threads(threads);
                    let mut store = crate::WeightStore::new();
                    store.insert("w", ArrayD::from_shape_fn(ndarray::IxDyn(&[n]), |i| value(i[0], 0)));
                    let mut opt =
                        Optimizer::new(Rule::Adam { beta_1: 0.9, beta_2: 0.9, epsilon: 1e-7, amsgrad }, 0.01);
                    let (mut w, mut m, mut v, mut vm): (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>) = (
                        (0..n).map(|i| value(i, 0) as f64).collect(),
                        vec![0.0; n],
                        vec![0.0; n],
                        vec![0.0; n],
                    );
                    for t in 1..=3 {
                        let g: Vec<f32> =
                            (0..n).map(|i| value(i, t) * if t == 2 { 0.1 } else { 1.0 }).collect();
                        let sq: Vec<f32> = g.iter().map(|x| x * x * 1.5).collect();
                        let to_array =
                            |x: &[f32]| ArrayD::from_shape_vec(ndarray::IxDyn(&[n]), x.to_vec()).unwrap();
                        let mut grads = HashMap::from([("w".to_string(), to_array(&g))]);
                        let squares = if sparse {
                            HashMap::from([("w".to_string(), to_array(&sq))])
                        } else {
                            HashMap::new()
                        };
                        opt.apply_sparse_aware(
                            &mut store,
                            &mut grads,
                            &SparseSums { squares, abs: HashMap::new() },
                        );
                        let lr_t =
                            0.01 * (1.0 - 0.9f64.powi(t as i32)).sqrt() / (1.0 - 0.9f64.powi(t as i32));
                        for i in 0..n {
                            let (gi, g2) =
                                (g[i] as f64, if sparse { sq[i] as f64 } else { (g[i] as f64).powi(2) });
                            m[i] = 0.9 * m[i] + 0.1 * gi;
                            v[i] = 0.9 * v[i] + 0.1 * g2;
                            vm[i] = vm[i].max(v[i]);
                            let denom = if amsgrad { vm[i] } else { v[i] };
                            w[i] -= lr_t * m[i] / (denom.sqrt() + 1e-7);
                        }
                    }
                    crate::set_num_threads(0);
                    let got = store.get("w").unwrap();
                    for (i, (got, want)) in got.iter().zip(&w).enumerate() {
                        let err = (*got as f64 - want).abs();
                        assert!(
                            err < 1e-5,
                            "amsgrad {amsgrad}, sparse {sparse}, {threads} threads: w[{i}] {got} vs {want}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn decay_and_clipping() {
        let mut w = crate::WeightStore::new();
        w.insert("w", ArrayD::from_elem(ndarray::IxDyn(&[1]), 0.0));
        let mut opt = Optimizer::sgd(1.0);
        opt.decay = 1.0;
        opt.clipvalue = Some(0.5);
        for _ in 0..2 {
            let mut g = HashMap::from([("w".to_string(), ArrayD::from_elem(ndarray::IxDyn(&[1]), 3.0))]);
            opt.apply(&mut w, &mut g);
        }
        // step 1: lr 1, clipped g 0.5 → -0.5; step 2: lr 1/2 → -0.25.
        assert!((w.get("w").unwrap()[[0]] + 0.75).abs() < 1e-6);
    }
}
