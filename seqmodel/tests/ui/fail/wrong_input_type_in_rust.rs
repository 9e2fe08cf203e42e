seqmodel::seqmodel! {
    model M(words: [T] of i32) -> [T, 4] { words -> Embedding(10, 4) }
}
fn main() {
    let mut m = M::random(1);
    // Token ids are i32: passing floats is a Rust type error.
    let _ = m.predict(&seqmodel::ndarray::Array2::<f32>::zeros((1, 3)));
    // So is a sequence of ids without its batch axis: the inputs are rank-typed.
    let _ = m.predict(&seqmodel::ndarray::Array1::<i32>::zeros(3));
}
