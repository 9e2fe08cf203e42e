seqmodel::seqmodel!("../../../../tests/generated/models/tiny.seq", weights = "../../../../tests/generated/models/tiny_misshaped.safetensors");

fn main() {
    let _ = Tiny::baked();
}
