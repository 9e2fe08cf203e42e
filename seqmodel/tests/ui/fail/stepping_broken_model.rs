// A stateful model with one sequence input keeps `step` while broken.
seqmodel::seqmodel! {
    model Stream(x: [T, 2]) -> [T, 3] where batch = 1 {
        x -> LSTM(8, stateful=true) -> Dense(3)
    }
}

fn main() {
    let mut m = Stream::random(1);
    let y: seqmodel::ndarray::Array2<f32> = m.step(&seqmodel::ndarray::Array2::zeros((1, 2))).unwrap();
    let _ = y.sum();
    m.reset_states();
}
