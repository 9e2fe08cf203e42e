seqmodel::seqmodel!("../../../../seqmodel/tests/ui/models/bad.seq");
fn main() {}
