//! Time-axis operations: slicing, single steps, padding, repetition, reversal.

use ndarray::{ArrayD, ArrayViewD, Axis, Slice};

use crate::error::{Result, RuntimeError};

/// Python-style slice `[start:end]` of the time axis (axis 1), with the length the checked
/// type expects (if it is known).
pub fn slice(
    x: ArrayViewD<'_, f32>,
    start: i64,
    end: Option<i64>,
    expected: Option<usize>,
) -> Result<ArrayViewD<'_, f32>> {
    let t = x.shape()[1] as i64;
    let norm = |i: i64| if i < 0 { (t + i).max(0) } else { i.min(t) };
    let s = norm(start);
    let e = end.map_or(t, norm);
    let len = (e - s).max(0) as usize;
    if len == 0 || expected.is_some_and(|want| want != len) {
        return Err(RuntimeError::Shape(format!(
            "time slice [{start}:{}] of a {t}-step sequence gives {len} steps{}",
            end.map_or(String::new(), |e| e.to_string()),
            expected.map_or(String::new(), |w| format!(", the model needs {w}"))
        )));
    }
    Ok(x.slice_axis_move(Axis(1), Slice::from(s as usize..e as usize)))
}

/// One time step `x[:, i]` (negative from the end).
pub fn step(x: ArrayViewD<'_, f32>, index: i64) -> Result<ArrayViewD<'_, f32>> {
    let t = x.shape()[1] as i64;
    let i = if index < 0 { t + index } else { index };
    if i < 0 || i >= t {
        return Err(RuntimeError::Shape(format!("step {index} is out of range for a {t}-step sequence")));
    }
    Ok(x.index_axis_move(Axis(1), i as usize))
}

/// Zero steps before and after: `x` into `out` (shaped with the padded time axis) at step
/// `left`.
pub fn pad_into(x: ArrayViewD<'_, f32>, left: usize, out: &mut ArrayD<f32>) {
    let t = x.shape()[1];
    out.fill(0.0);
    out.slice_axis_mut(Axis(1), Slice::from(left..left + t)).assign(&x);
}
