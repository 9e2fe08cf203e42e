// A model that is not stepped one time step per call has no `no_std` code: the error is on the
// option and names the model.
seqmodel::seqmodel!(
    "../../../../tests/generated/models/tiny.seq",
    weights = "../../../../tests/generated/models/tiny.safetensors",
    no_std
);

fn main() {
    let _ = Tiny::new();
}
