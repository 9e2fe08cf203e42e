seqmodel::seqmodel! {
    model M(words: [T]) -> [T, 16] {
        words -> Embedding(100, 16)
    }
}
fn main() {}
