seqmodel::seqmodel! {
    model M(words: [T] of i32) -> [T, 4] { words -> Embedding(10, 4) }
}
fn main() {
    let mut m = M::random(1);
    // Token ids are i32: passing floats is a Rust type error.
    let _ = m.predict(seqmodel::ndarray::ArrayD::<f32>::zeros(seqmodel::ndarray::IxDyn(&[1, 3])));
}
