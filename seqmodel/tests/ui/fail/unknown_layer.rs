seqmodel::seqmodel! {
    model M(x: [T, 8]) -> [4] {
        x -> LSMT(4)
    }
}
fn main() {}
