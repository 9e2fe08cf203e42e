// `no_std` code has its weights compiled in, so the option needs `weights`; the user's calls
// to the type are not further errors.
seqmodel::seqmodel!("../../../../tests/generated/models/tiny.seq", no_std);

fn main() {
    let mut m = Tiny::new();
    let _ = m.step(&[1.0, 2.0, 3.0]);
}
