//! Built with `TEST_DATABASE_URL` set (as `scripts/test` and CI do), the tests that need
//! PostgreSQL run; built without it they are reported as ignored, never as passed.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(postgres_tests)");
    println!("cargo::rerun-if-env-changed=TEST_DATABASE_URL");
    if std::env::var_os("TEST_DATABASE_URL").is_some_and(|url| !url.is_empty()) {
        println!("cargo::rustc-cfg=postgres_tests");
    }
}
