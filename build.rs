//! The build's time, for the daemon's clock check: a system clock reading
//! earlier than the binary was built is wrong (`clock::trust`). Taken from
//! `SOURCE_DATE_EPOCH` when set (reproducible builds), else now.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let built_s = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        });
    println!("cargo:rustc-env=DATALOG_RRD_BUILT_S={built_s}");
}
