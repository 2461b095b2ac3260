//! The tests that need PostgreSQL (or localstripe) run when built with it, and are reported as
//! ignored otherwise (see build-support/test_services.rs).
include!("../build-support/test_services.rs");
