//! The committed prost code (`src/pb/netsvr.rs`) must match `proto/netsvr.proto`.
//!
//! Regenerate with `NETSVR_REGENERATE=1 cargo test -p netsvr-protocol --test generated`.
//! protox compiles the .proto in Rust, so no `protoc` is needed anywhere.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

#[test]
fn generated_code_is_fresh() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fds = protox::compile([root.join("proto/netsvr.proto")], [root.join("proto")])
        .expect("proto/netsvr.proto compiles");
    let out = std::env::temp_dir().join(format!("netsvr-protocol-gen-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    prost_build::Config::new()
        .out_dir(&out)
        .bytes(["."])
        .btree_map(["."])
        .compile_fds(fds)
        .expect("prost-build generates code");
    let fresh = std::fs::read_to_string(out.join("netsvr.rs")).unwrap();
    let _ = std::fs::remove_dir_all(&out);
    let committed_path = root.join("src/pb/netsvr.rs");
    if std::env::var_os("NETSVR_REGENERATE").is_some() {
        std::fs::write(&committed_path, &fresh).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&committed_path).unwrap_or_default();
    assert!(
        committed == fresh,
        "src/pb/netsvr.rs is stale: run NETSVR_REGENERATE=1 cargo test -p netsvr-protocol --test generated"
    );
}
