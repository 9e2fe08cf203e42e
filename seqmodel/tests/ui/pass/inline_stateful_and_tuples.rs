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
    let step = seqmodel::ndarray::Array3::<f32>::ones((1, 1, 3));
    let a = g.predict(&step).unwrap();
    let b = g.predict(&step).unwrap();
    assert_ne!(a, b, "the state carries over");
    g.reset_states();
    assert_eq!(g.predict(&step).unwrap(), a);
    // One step at a time: `[batch, features]` in, the time axis dropped.
    g.reset_states();
    let one: seqmodel::ndarray::Array2<f32> = g.step(&seqmodel::ndarray::Array2::ones((1, 3))).unwrap();
    assert_eq!(one, a.index_axis(seqmodel::ndarray::Axis(1), 0));
    let mut s = States::random(2);
    let (o, h, _c): (seqmodel::ndarray::Array2<f32>, _, _) =
        s.predict(&seqmodel::ndarray::Array3::zeros((2, 5, 3))).unwrap();
    assert_eq!(o, h);
}
