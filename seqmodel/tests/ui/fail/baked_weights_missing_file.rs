seqmodel::seqmodel!("../../../../tests/generated/models/tiny.seq", weights = "models/no_such.safetensors");

fn main() {
    let _ = Tiny::baked();
}
