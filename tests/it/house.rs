//! What the production server binary links: `rollcall-server` built without
//! its development features has no API Gateway stand-in, no Lambda runtime,
//! no AWS client it does not use and no testcontainers.

use std::process::Command;

/// The crates a build of the local server with `features` links.
fn linked(features: &[&str]) -> Vec<String> {
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml");
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.args(["tree", "--locked", "--offline", "--manifest-path", manifest])
        .args(["-p", "rollcall-local-server", "--no-default-features"])
        .args(["-e", "normal", "--prefix", "none", "--format", "{p}"]);
    if !features.is_empty() {
        cmd.args(["--features", &features.join(",")]);
    }
    let out = cmd.output().expect("cargo tree runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect();
    names.sort();
    names.dedup();
    names
}

#[test]
fn the_production_server_links_no_stand_in_lambda_or_test_tooling() {
    let never = [
        "lambda_http",
        "lambda_runtime",
        "aws-sdk-apigatewaymanagement",
        "testcontainers",
        "testcontainers-modules",
        "bollard",
    ];
    let redis_only = linked(&[]);
    for name in never.iter().chain(&["aws-config", "aws-sdk-dynamodb"]) {
        assert!(
            !redis_only.iter().any(|n| n == name),
            "{name} is linked: {redis_only:?}"
        );
    }
    let with_dynamodb = linked(&["dynamodb"]);
    for name in never {
        assert!(!with_dynamodb.iter().any(|n| n == name), "{name} is linked");
    }
    for name in ["aws-sdk-dynamodb", "aws-sdk-dynamodbstreams"] {
        assert!(with_dynamodb.iter().any(|n| n == name), "{name} is missing");
    }
}
