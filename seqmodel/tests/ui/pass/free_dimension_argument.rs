seqmodel::seqmodel! {
    /// `N` is determined by no input: `predict` takes it after the inputs.
    model OneToMany<N>(x: [8]) -> [N, 3] {
        x -> RepeatVector(N) -> LSTM(4, return_sequences=true) -> TimeDistributed(Dense(3))
    }
    /// Anonymous `_` dimensions (Keras's `None`) take whatever the graph needs: `Add`
    /// makes these two one, where two different names would be an error.
    model Anon(a: [_, 2], b: [_, 2]) -> [_, 2] { Add()([a, b]) }
}

fn main() {
    let mut m = OneToMany::random(1);
    let x = seqmodel::ndarray::Array2::<f32>::ones((2, 8));
    assert_eq!(m.predict(&x, 5).unwrap().shape(), &[2, 5, 3]);
    assert_eq!(m.predict(x.view(), 12).unwrap().shape(), &[2, 12, 3]);
    let mut a = Anon::random(1);
    let p = seqmodel::ndarray::Array3::<f32>::ones((1, 3, 2));
    assert_eq!(a.predict(&p, &p).unwrap(), &p * 2.0);
    let short = seqmodel::ndarray::Array3::<f32>::ones((1, 4, 2));
    assert!(a.predict(&p, &short).is_err(), "the two lengths must agree at run time");
}
