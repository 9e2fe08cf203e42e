seqmodel::seqmodel! {
    model M(x: [8]) -> [4] {
        x -> Dense(4, activation="rleu")
    }
}
fn main() {}
