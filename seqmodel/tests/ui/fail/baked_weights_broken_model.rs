// A model that does not check: only its own error, not one for each use of `baked()`.
seqmodel::seqmodel!("../../../../seqmodel/tests/ui/models/bad.seq", weights = "../../../../tests/generated/models/tiny.safetensors");

fn main() {
    let _ = Decoder::baked();
}
