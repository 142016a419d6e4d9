//! Copies the items of the command line's main.rs that its modules use (`ConvArgs` through
//! `parse_groups`) into OUT_DIR, so src/lib.rs compiles them exactly as the binary does.
fn main() {
    let main = "../crates/convkit-cli/src/main.rs";
    println!("cargo:rerun-if-changed={main}");
    let src = std::fs::read_to_string(main).expect("read main.rs");
    let start = src.find("#[derive(Args)]\nstruct ConvArgs").expect("ConvArgs in main.rs");
    let pg = src.find("fn parse_groups").expect("parse_groups in main.rs");
    let end = pg + src[pg..].find("\n}\n").expect("end of parse_groups") + 3;
    let out = std::path::Path::new(&std::env::var("OUT_DIR").unwrap()).join("cli_root.rs");
    std::fs::write(out, &src[start..end]).unwrap();
}
