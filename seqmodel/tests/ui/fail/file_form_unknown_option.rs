seqmodel::seqmodel!("../../../../tests/generated/models/tiny.seq", weight = "tiny.safetensors");

fn main() {}
