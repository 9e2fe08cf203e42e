seqmodel::seqmodel!("../../../../seqmodel/tests/ui/models/good.seq");

fn main() {
    let mut ae = Autoencoder::random(3);
    let x = seqmodel::ndarray::Array3::<f32>::zeros((2, 7, 2));
    let y: seqmodel::ndarray::Array3<f32> = ae.predict(&x).unwrap();
    assert_eq!(y.shape(), &[2, 7, 2]);
    assert_eq!(Autoencoder::weight_specs().len(), 9);
}
