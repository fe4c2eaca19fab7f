//! Rebuilds banter when the web client it embeds (frontend/dist) changes:
//! the embedding macro reads that folder but cargo would not notice.
fn main() {
    println!("cargo:rerun-if-changed=../frontend/dist");
}
