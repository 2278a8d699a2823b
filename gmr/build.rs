//! Records the target triple and the build profile so the `Package` section can show them.
fn main() {
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".to_owned());
    let profile = std::env::var("PROFILE").unwrap_or_else(|_| "unknown".to_owned());
    println!("cargo:rustc-env=GMR_BUILD_TARGET={target}");
    println!("cargo:rustc-env=GMR_BUILD_PROFILE={profile}");
    println!("cargo:rerun-if-changed=build.rs");
}
