seqmodel::seqmodel!("../../../../tests/generated/models/tiny.seq", weights = "../../../../tests/generated/models/tiny.safetensors");

fn main() {
    // The weights are in the program: y = x @ [[1, 0], [0, 1], [1, 1]] + [0.5, -0.5].
    let mut m = Tiny::baked();
    let x = seqmodel::ndarray::array![[1.0f32, 2.0, 3.0], [0.0, -1.0, 0.5]];
    let y: seqmodel::ndarray::Array2<f32> = m.predict(&x).unwrap();
    assert_eq!(y, seqmodel::ndarray::array![[4.5f32, 4.5], [1.0, -1.0]]);
    assert!(Tiny::BAKED_WEIGHTS.len() > 32);
}
