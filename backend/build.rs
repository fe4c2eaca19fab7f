//! Rebuilds banter when the web client it embeds (frontend/dist) changes:
//! the embedding macro reads that folder but cargo would not notice.
//!
//! A missing folder counts as changed on every build, so the (gitignored)
//! folder is created empty when absent: the build then embeds no client
//! (the page says how to build it) and reruns once Trunk fills it.
fn main() {
    let dist = std::path::Path::new("../frontend/dist");
    if !dist.exists() {
        let _ = std::fs::create_dir_all(dist);
    }
    println!("cargo:rerun-if-changed=../frontend/dist");
}
