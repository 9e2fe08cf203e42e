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
    /// Steps taken.
    pub iterations: u64,
    slots: HashMap<String, Vec<ArrayD<f32>>>,
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
            Rule::Adam { beta_1, .. } if !unit(beta_1) => bad("beta_1", beta_1),
            Rule::Adam { beta_2, .. } if !unit(beta_2) => bad("beta_2", beta_2),
            Rule::Adam { epsilon, .. } | Rule::RmsProp { epsilon, .. } | Rule::Adagrad { epsilon, .. }
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

    /// An optimizer with a rule and learning rate, no decay or clipping.
    pub fn new(rule: Rule, learning_rate: f32) -> Self {
        Optimizer {
            rule,
            learning_rate,
            decay: 0.0,
            clipnorm: None,
            clipvalue: None,
            global_clipnorm: None,
            iterations: 0,
            slots: HashMap::new(),
        }
    }

    /// Applies one step to every weight that has a gradient.
    pub fn apply(&mut self, weights: &mut crate::WeightStore, grads: &mut HashMap<String, ArrayD<f32>>) {
        self.apply_sparse_aware(weights, grads, &HashMap::new());
    }

    /// Like [`Optimizer::apply`], where `squares` gives, for weights whose gradient is sparse
    /// (an Embedding's rows), the sum over occurrences of each slice's square. Keras on
    /// TensorFlow squares the gathered slices before they are summed, so a token seen twice
    /// in a batch contributes `g₁² + g₂²`, not `(g₁ + g₂)²`, to the second moments.
    pub fn apply_sparse_aware(
        &mut self,
        weights: &mut crate::WeightStore,
        grads: &mut HashMap<String, ArrayD<f32>>,
        squares: &HashMap<String, ArrayD<f32>>,
    ) {
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
        let mut keys: Vec<&String> = grads.keys().collect();
        keys.sort();
        for key in keys {
            // Copied only when clipping changes it.
            let mut g = std::borrow::Cow::Borrowed(&grads[key]);
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
            let zeros = || ArrayD::<f32>::zeros(g.raw_dim());
            match self.rule {
                Rule::Sgd { momentum, nesterov } => {
                    if momentum == 0.0 {
                        w.zip_mut_with(g, |w, g| *w -= lr * g);
                    } else {
                        let s = self.slots.entry(key.clone()).or_insert_with(|| vec![zeros()]);
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
                    let s = self.slots.entry(key.clone()).or_insert_with(|| vec![zeros(), zeros(), zeros()]);
                    let lr_t = lr * (1.0 - beta_2.powi(t)).sqrt() / (1.0 - beta_1.powi(t));
                    let [m, v, v_max] = &mut s[..] else { unreachable!("Adam keeps three slots") };
                    // One pass over the weight, its gradient and the moments; the squared
                    // gradient is the sparse sum of squares where there is one.
                    let sparse = squares.get(key);
                    ndarray::Zip::from(&mut *w)
                        .and(m)
                        .and(v)
                        .and(v_max)
                        .and(g)
                        .and(sparse.unwrap_or(g))
                        .for_each(|w, m, v, v_max, g, sq| {
                            let g2 = if sparse.is_some() { *sq } else { g * g };
                            *m += (g - *m) * (1.0 - beta_1);
                            *v += (g2 - *v) * (1.0 - beta_2);
                            let denom = if amsgrad {
                                *v_max = v_max.max(*v);
                                *v_max
                            } else {
                                *v
                            };
                            *w -= lr_t * *m / (denom.sqrt() + epsilon);
                        });
                }
                Rule::RmsProp { rho, momentum, epsilon, centered } => {
                    let s = self.slots.entry(key.clone()).or_insert_with(|| vec![zeros(), zeros(), zeros()]);
                    let sq = squares.get(key).cloned().unwrap_or_else(|| g.mapv(|v| v * v));
                    s[0].zip_mut_with(&sq, |v, g2| *v = rho * *v + (1.0 - rho) * g2);
                    if centered {
                        s[2].zip_mut_with(g, |a, g| *a = rho * *a + (1.0 - rho) * g);
                    }
                    let mut inc = g.clone();
                    ndarray::Zip::from(&mut inc).and(&s[0]).and(&s[2]).for_each(|i, v, a| {
                        let denom = if centered { v - a * a } else { *v };
                        *i = lr * *i / (denom + epsilon).sqrt();
                    });
                    if momentum > 0.0 {
                        s[1].zip_mut_with(&inc, |m, i| *m = momentum * *m + i);
                        w.zip_mut_with(&s[1], |w, m| *w -= m);
                    } else {
                        w.zip_mut_with(&inc, |w, i| *w -= i);
                    }
                }
                Rule::Adagrad { initial_accumulator_value, epsilon } => {
                    let s = self
                        .slots
                        .entry(key.clone())
                        .or_insert_with(|| vec![ArrayD::from_elem(g.raw_dim(), initial_accumulator_value)]);
                    let sq = squares.get(key).cloned().unwrap_or_else(|| g.mapv(|v| v * v));
                    s[0].zip_mut_with(&sq, |a, g2| *a += g2);
                    ndarray::Zip::from(&mut *w)
                        .and(&s[0])
                        .and(g)
                        .for_each(|w, a, g| *w -= lr * g / (a + epsilon).sqrt());
                }
            }
        }
        self.iterations += 1;
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
