//! Models cross threads: the interpreter's and a generated type are `Send + Sync`, and one
//! model cloned onto several threads gives every thread the same numbers as one thread.

use seqmodel::ndarray::Array3;
use seqmodel::{Model, Tensor, WeightStore};
use seqmodel_generated_tests::ex_encoder_decoder::EncoderDecoder;

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn models_are_send_and_sync() {
    assert_send_sync::<Model>();
    assert_send_sync::<EncoderDecoder>();
    assert_send_sync::<WeightStore>();
    assert_send_sync::<seqmodel::train::Trainer>();
}

#[test]
fn clones_on_several_threads_agree_with_one_thread() {
    let m = EncoderDecoder::random(5);
    let x = Array3::from_shape_fn((3, 12, 4), |(i, t, f)| ((i * 7 + t * 3 + f) as f32 * 0.05).sin());
    let want = m.clone().predict(&x).unwrap();
    let program = EncoderDecoder::program();
    let interp = Model::new(program, m.weights()).unwrap();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let (mut g, mut i, x) = (m.clone(), interp.clone(), x.clone());
                s.spawn(move || {
                    (g.predict(&x).unwrap(), i.predict(&[Tensor::F32(x.into_dyn())]).unwrap().remove(0))
                })
            })
            .collect();
        for h in handles {
            let (g, i) = h.join().unwrap();
            assert_eq!(g, want, "a generated clone on another thread");
            let d = i.iter().zip(want.iter()).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            assert!(d <= 1e-6, "the interpreter on another thread: {d}");
        }
    });
}
