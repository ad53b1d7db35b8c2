//! Compiles `proto/` with protox (no system protoc needed) into tonic/prost code and a file
//! descriptor set for gRPC reflection.

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_root = "../../proto";
    let proto_file = "../../proto/burnbox/v1/secrets.proto";
    println!("cargo:rerun-if-changed={proto_root}");

    let descriptors = protox::compile([proto_file], [proto_root])?;
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("burnbox_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure().compile_fds(descriptors)?;
    Ok(())
}
