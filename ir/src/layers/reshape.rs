//! Reshaping: `Permute`, `Reshape`, `Flatten` (the batch axis never moves).

use super::literal::literal_struct;
use super::{LayerAttrs, WeightVar};

/// The most axes (besides the batch) a reshaping layer handles.
pub const MAX_RANK: usize = 4;

/// `Permute(dims)`: output axis `i` is input axis `perm[i]` (0-based, without the batch).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PermuteAttrs {
    /// Number of axes (without the batch).
    pub rank: usize,
    /// The permutation; entries past `rank` are unused.
    pub perm: [usize; MAX_RANK],
}
literal_struct!(PermuteAttrs { rank, perm });

/// `Reshape(target_shape)`: the same values in row-major order under a new shape; one entry
/// may be `-1` (whatever is left).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReshapeAttrs {
    /// Number of axes of the target (without the batch).
    pub rank: usize,
    /// The target shape; entries past `rank` are unused.
    pub target: [i64; MAX_RANK],
}
literal_struct!(ReshapeAttrs { rank, target });

impl ReshapeAttrs {
    /// The output shape (without the batch) for an input of `size` values per item, or
    /// `None` when the target does not hold exactly `size` values.
    ///
    /// ```
    /// use seqmodel_ir::ReshapeAttrs;
    /// let r = ReshapeAttrs { rank: 2, target: [-1, 2, 0, 0] };
    /// assert_eq!(r.shape_for(24), Some(vec![12, 2]));
    /// assert_eq!(r.shape_for(5), None);
    /// ```
    pub fn shape_for(&self, size: usize) -> Option<Vec<usize>> {
        let t = &self.target[..self.rank.min(MAX_RANK)];
        let known: usize = t.iter().filter(|d| **d >= 0).map(|d| *d as usize).product();
        let out: Vec<usize> = match t.iter().filter(|d| **d < 0).count() {
            0 => t.iter().map(|d| *d as usize).collect(),
            1 if known > 0 && size.is_multiple_of(known) => {
                t.iter().map(|d| if *d < 0 { size / known } else { *d as usize }).collect()
            }
            _ => return None,
        };
        (out.iter().product::<usize>() == size).then_some(out)
    }
}

/// `Flatten`: every axis but the batch into one.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FlattenAttrs {}
literal_struct!(FlattenAttrs {});

macro_rules! weightless {
    ($($ty:ty => $class:literal),*) => {$(
        impl LayerAttrs for $ty {
            const KERAS: &'static [(&'static str, &'static [WeightVar])] = &[($class, &[])];

            fn class_name(&self) -> &'static str {
                $class
            }

            fn weight_shape(&self, _: &WeightVar) -> Option<Vec<usize>> {
                None
            }
        }
    )*};
}
/// `UpSampling1D(size)`: each step repeated `size` times, `[T, C]` → `[T·size, C]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UpSamplingAttrs {
    /// How many times each step is repeated.
    pub size: usize,
}
literal_struct!(UpSamplingAttrs { size });

weightless!(
    PermuteAttrs => "Permute",
    ReshapeAttrs => "Reshape",
    FlattenAttrs => "Flatten",
    UpSamplingAttrs => "UpSampling1D"
);
