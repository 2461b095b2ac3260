//! End-to-end tests of the gateway: a real gateway and payment-ms per test, driven over HTTP:
//! who may call (JWT, keys, roles), the errors at the edge, connections, limits and operations,
//! and the API document. payment-ms's own behaviour is tested in `payment-ms/tests/api/`.

mod auth;
mod conformance;
mod connections;
mod errors;
mod keys;
mod openapi;
mod operations;
