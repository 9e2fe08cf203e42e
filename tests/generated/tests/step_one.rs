//! `step_one`: a batch-1 stateful model stepped on plain arrays, `&[f32; F]` in and
//! `&[f32; O]` out, gives what `step` gives on ndarray arrays.

use ndarray::{Array2, ArrayD, IxDyn};
use seqmodel_generated_tests::ex_stateful::Generator;
use seqmodel_generated_tests::one_step::OneStep;

fn features(t: usize) -> [f32; 8] {
    std::array::from_fn(|i| ((t * 8 + i) as f32 * 0.41).sin())
}

#[test]
fn plain_arrays_step_as_ndarray_arrays_do() {
    let mut arrays = Generator::random(9);
    let mut nd = arrays.clone();
    for t in 0..6 {
        let x = features(t);
        let want = nd.step(&Array2::from_shape_vec((1, 8), x.to_vec()).unwrap()).unwrap();
        let got: &[f32; 8] = arrays.step_one(&x).unwrap();
        assert_eq!(&got[..], want.as_slice().unwrap(), "step {t}");
    }
    // The state carries over, and resets like the model's.
    arrays.reset_states();
    nd.reset_states();
    let want = nd.step(&Array2::from_shape_vec((1, 8), features(0).to_vec()).unwrap()).unwrap();
    assert_eq!(&arrays.step_one(&features(0)).unwrap()[..], want.as_slice().unwrap());
}

#[test]
fn a_model_of_one_step_has_it_too_and_bad_values_are_errors() {
    let mut m = OneStep::random(2);
    let y: [f32; 8] = *m.step_one(&features(1)).unwrap();
    assert!(y.iter().all(|v| v.is_finite()) && y.iter().any(|v| *v != 0.0));
    let mut bad = features(2);
    bad[3] = f32::NAN;
    let e = m.step_one(&bad).unwrap_err().to_string();
    assert!(e.contains("NaN") || e.contains("finite"), "{e}");
}

/// The specialised plain-array step equals the interpreter stepping the same program with
/// the same weights (an implementation that shares no generated code).
#[test]
fn plain_array_steps_equal_the_interpreter() {
    let mut arrays = Generator::random(4);
    let mut interp = seqmodel::Model::new(Generator::program(), arrays.weights()).unwrap();
    for t in 0..8 {
        let x = features(t);
        let input = seqmodel::Tensor::F32(ArrayD::from_shape_vec(IxDyn(&[1, 1, 8]), x.to_vec()).unwrap());
        let want = interp.predict(&[input]).unwrap().remove(0);
        let got = arrays.step_one(&x).unwrap();
        for (g, w) in got.iter().zip(want.iter()) {
            assert!((g - w).abs() <= 1e-6, "step {t}: {g} vs {w}");
        }
    }
}

/// `step_one` (the step kernels) and `step` (the layers' forward pass) carry the same states:
/// alternating them on one model gives what `step` alone gives on another.
#[test]
fn plain_array_and_ndarray_steps_share_the_states() {
    let mut mixed = Generator::random(5);
    let mut nd = mixed.clone();
    for t in 0..8 {
        let x = features(t);
        let want = nd.step(&Array2::from_shape_vec((1, 8), x.to_vec()).unwrap()).unwrap();
        let got = if t % 2 == 0 {
            mixed.step_one(&x).unwrap().to_vec()
        } else {
            mixed
                .step(&Array2::from_shape_vec((1, 8), x.to_vec()).unwrap())
                .unwrap()
                .into_raw_vec_and_offset()
                .0
        };
        assert_eq!(&got[..], want.as_slice().unwrap(), "step {t}");
    }
}
