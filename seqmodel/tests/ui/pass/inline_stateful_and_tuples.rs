seqmodel::seqmodel! {
    /// Stateful generation, one step per call.
    model Gen(x: [T, 3]) -> [T, 3] where batch = 1 {
        x -> LSTM(3, stateful=true, return_sequences=true)
    }
    model States(x: [T, 3]) -> ([4], [4], [4]) {
        o, h, c = LSTM(4, return_state=true)(x);
        (o, h, c)
    }
}

fn main() {
    let mut g = Gen::random(1);
    let step = seqmodel::ndarray::ArrayD::<f32>::ones(seqmodel::ndarray::IxDyn(&[1, 1, 3]));
    let a = g.predict(step.clone()).unwrap();
    let b = g.predict(step.clone()).unwrap();
    assert_ne!(a, b, "the state carries over");
    g.reset_states();
    assert_eq!(g.predict(step).unwrap(), a);
    let mut s = States::random(2);
    let (o, h, _c) = s.predict(seqmodel::ndarray::ArrayD::zeros(seqmodel::ndarray::IxDyn(&[2, 5, 3]))).unwrap();
    assert_eq!(o, h);
}
