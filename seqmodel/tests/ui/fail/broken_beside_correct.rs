// A broken model beside a correct one: the correct one is generated in full and its use
// compiles; the only error is the broken model's own.
seqmodel::seqmodel! {
    model Good(x: [T, 3]) -> [2] {
        x -> LSTM(4) -> Dense(2)
    }
    model Broken(x: [T, 3]) -> [T, 2] {
        x -> LSTM(4) -> Dense(2)
    }
}

fn main() {
    let mut m = Good::random(1);
    let y = m.predict(&seqmodel::ndarray::Array3::zeros((1, 5, 3))).unwrap();
    assert_eq!(y.shape(), &[1, 2]);
    let _: usize = Good::PARAMS;
}
