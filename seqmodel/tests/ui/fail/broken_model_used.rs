// The stand-in of a broken model has the API it would have had (constructors, `predict` and
// `run` with its inputs and free dimensions, `step` for a stateful model, `PARAMS`), so code
// calling it reports nothing beyond the model's own error.
seqmodel::seqmodel! {
    model Gen<N>(x: [T, 2], z: [4]) -> ([N, 1], [3]) where batch = 1 {
        h = x -> LSTM(8, stateful=true, return_sequences=true) -> Dense(1);
        (RepeatVector(N)(z) -> LSTM(2, return_sequences=true) -> Dense(1), h -> LSTM(3, return_sequences=true))
    }
}

fn main() {
    use seqmodel::ndarray::{Array2, Array3};
    let mut m = Gen::random(7);
    let (x, z) = (Array3::zeros((1, 5, 2)), Array2::zeros((1, 4)));
    let (a, b): (Array3<f32>, Array2<f32>) = m.predict(&x, &z, 6).unwrap();
    let _ = (a, b, Gen::PARAMS, Gen::NAME);
    m.reset_states();
    let mut s = Gen::from_safetensors("w.safetensors").unwrap();
    let _ = s.run(x.view(), z.view(), 6);
    let (mut a, mut b) = (Array3::zeros((1, 6, 1)), Array2::zeros((1, 3)));
    let _ = s.predict_into(&x, &z, 6, (&mut a, &mut b));
}
