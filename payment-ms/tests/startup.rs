//! Each missing or malformed setting stops payment-ms at start with one line naming it.

use std::process::Command;

#[test]
fn each_missing_or_bad_setting_is_named_in_one_line() {
    let token = ("INTERNAL_TOKEN", "a-token-that-must-not-be-printed");
    let cases: [(&[(&str, &str)], &str); 9] = [
        (
            &[("APP_PROFILE", "prod")],
            "payment-ms: INTERNAL_TOKEN is required in the prod profile",
        ),
        (
            &[
                ("APP_PROFILE", "prod"),
                token,
                ("DATABASE_URL", "mysql://x"),
            ],
            "payment-ms: DATABASE_URL is invalid",
        ),
        (
            &[
                ("APP_PROFILE", "prod"),
                token,
                ("PAYMENT_PROVIDER", "paypal"),
            ],
            "payment-ms: PAYMENT_PROVIDER is invalid",
        ),
        (
            &[("APP_PROFILE", "prod"), token, ("PAYMENT_TTL", "soon")],
            "payment-ms: PAYMENT_TTL is invalid",
        ),
        (
            &[
                ("APP_PROFILE", "prod"),
                token,
                ("WEBHOOK_ALLOWED_CIDRS", "10.0.0.0/99"),
            ],
            "payment-ms: WEBHOOK_ALLOWED_CIDRS is invalid",
        ),
        (
            &[
                ("APP_PROFILE", "prod"),
                token,
                ("WEBHOOK_RETRY_SCHEDULE", "5s,later"),
            ],
            "payment-ms: WEBHOOK_RETRY_SCHEDULE is invalid",
        ),
        (
            &[
                ("APP_PROFILE", "prod"),
                token,
                ("N8N_WEBHOOK_URL", "https://n8n.example/webhook/x"),
            ],
            "payment-ms: N8N_WEBHOOK_SECRET is invalid: is required when N8N_WEBHOOK_URL is set",
        ),
        // Production never takes payments with the mock provider by default.
        (
            &[("APP_PROFILE", "prod"), token],
            "payment-ms: PAYMENT_PROVIDER is required in the prod profile: stripe",
        ),
        (
            &[("APP_PROFILE", "prod"), token, ("PAYMENT_PROVIDER", "mock")],
            "payment-ms: PAYMENT_PROVIDER is invalid: mock moves no money; in the prod profile it needs MOCK_PROVIDER_ENABLED=true",
        ),
    ];
    for (envs, expected) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_payment-ms"))
            .env_clear()
            .envs(envs.iter().copied())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(
            stderr.starts_with(expected),
            "{stderr} should start with {expected}"
        );
        assert!(!stderr.contains(token.1));
    }
}

/// Asked for by name in production, the mock provider starts, and says loudly what it means.
#[test]
fn the_mock_provider_in_production_is_announced() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/p.db?mode=rwc", dir.path().display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_payment-ms"))
        .env_clear()
        .envs([
            ("APP_PROFILE", "prod"),
            ("INTERNAL_TOKEN", "a-token-that-must-not-be-printed"),
            ("PAYMENT_PROVIDER", "mock"),
            ("MOCK_PROVIDER_ENABLED", "true"),
            ("DATABASE_URL", url.as_str()),
            ("PAYMENT_MS_ADDR", "127.0.0.1:0"),
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut announced = false;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if line.contains("MOCK PROVIDER ENABLED IN PRODUCTION") {
            announced = line.contains("WARN");
        }
        if line.contains("payment-ms listening") {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        announced,
        "the warning was not logged before the service listened"
    );
}
