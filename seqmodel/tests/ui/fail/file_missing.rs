seqmodel::seqmodel!("models/does_not_exist.seq");
fn main() {}
