//! The time-axis layers (`Cropping1D` and time slices, single steps, `ZeroPadding1D`,
//! `RepeatVector`): their forward and backward passes.

use ndarray::{ArrayD, ArrayViewD, Axis, IxDyn, Slice};

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
    let (s, e) = slice_bounds(t, start, end);
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
    let i = step_index(t, index);
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

/// The steps `[s, e)` that `[start:end]` selects of `t` steps (Python's rules).
fn slice_bounds(t: i64, start: i64, end: Option<i64>) -> (i64, i64) {
    let norm = |i: i64| if i < 0 { (t + i).max(0) } else { i.min(t) };
    (norm(start), end.map_or(t, norm))
}

/// The step that `index` names of `t` steps (negative from the end).
fn step_index(t: i64, index: i64) -> i64 {
    if index < 0 { t + index } else { index }
}

/// The gradient of [`slice`]'s input (shaped `x_shape`): `dy` at the selected steps.
pub fn slice_backward(x_shape: &[usize], start: i64, end: Option<i64>, dy: &ArrayD<f32>) -> ArrayD<f32> {
    let (s, e) = slice_bounds(x_shape[1] as i64, start, end);
    let mut dx = ArrayD::zeros(IxDyn(x_shape));
    dx.slice_axis_mut(Axis(1), Slice::from(s as usize..e as usize)).assign(dy);
    dx
}

/// The gradient of [`step`]'s input: `dy` at the selected step.
pub fn step_backward(x_shape: &[usize], index: i64, dy: &ArrayD<f32>) -> ArrayD<f32> {
    let i = step_index(x_shape[1] as i64, index) as usize;
    let mut dx = ArrayD::zeros(IxDyn(x_shape));
    dx.index_axis_mut(Axis(1), i).assign(dy);
    dx
}

/// The gradient of [`pad_into`]'s input of `t` steps: `dy` without the padding.
pub fn pad_backward(t: usize, left: usize, dy: &ArrayD<f32>) -> ArrayD<f32> {
    dy.slice_axis(Axis(1), Slice::from(left..left + t)).to_owned()
}

/// The gradient of `RepeatVector`'s input: `dy` summed over the repeated steps.
pub fn repeat_backward(dy: &ArrayD<f32>) -> ArrayD<f32> {
    // Summed step by step into a pooled buffer (the trainer gives it back).
    let shape = ndarray::RemoveAxis::remove_axis(&dy.raw_dim(), Axis(1));
    let n = ndarray::Dimension::size(&shape);
    let mut dx = ArrayD::from_shape_vec(shape.clone(), crate::pool::zeros(n)).expect("sized");
    for step in dy.axis_iter(Axis(1)) {
        dx += &step;
    }
    dx
}
