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
    use seqmodel::ndarray::ArrayD;
    let mut m = Gen::random(7);
    let (a, b): (ArrayD<f32>, ArrayD<f32>) =
        m.predict(ArrayD::zeros(vec![1, 5, 2]), ArrayD::zeros(vec![1, 4]), 6).unwrap();
    let _ = (a, b, Gen::PARAMS, Gen::NAME);
    m.reset_states();
    let mut s = Gen::from_safetensors("w.safetensors").unwrap();
    let _ = s.run(ArrayD::zeros(vec![1, 5, 2]).view(), ArrayD::zeros(vec![1, 4]).view(), 6);
}
