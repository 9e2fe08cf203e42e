seqmodel::seqmodel! {
    model M(a: [T, 8], b: [T, 6]) -> [T, 8] {
        Add()([a, b])
    }
}
fn main() {}
