// The build script of every crate whose tests need a service (`include!`d by each). Built with
// `TEST_DATABASE_URL` set (as `scripts/test` and CI do), the tests that need PostgreSQL run;
// with `LOCALSTRIPE_TESTS=1` (set by `scripts/test` when it starts localstripe), those that need
// localstripe; with `TEST_NATS_URL` (a nats-server with JetStream), those that need NATS.
// Built without, they are reported as ignored, never as passed.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(postgres_tests)");
    println!("cargo::rustc-check-cfg=cfg(localstripe_tests)");
    println!("cargo::rustc-check-cfg=cfg(nats_tests)");
    println!("cargo::rerun-if-env-changed=TEST_NATS_URL");
    println!("cargo::rerun-if-env-changed=TEST_DATABASE_URL");
    println!("cargo::rerun-if-env-changed=LOCALSTRIPE_TESTS");
    if std::env::var_os("TEST_DATABASE_URL").is_some_and(|url| !url.is_empty()) {
        println!("cargo::rustc-cfg=postgres_tests");
    }
    if std::env::var_os("TEST_NATS_URL").is_some_and(|url| !url.is_empty()) {
        println!("cargo::rustc-cfg=nats_tests");
    }
    if std::env::var_os("LOCALSTRIPE_TESTS").is_some_and(|on| on == "1") {
        println!("cargo::rustc-cfg=localstripe_tests");
    }
}
