//! Functions against binaries: one function per `functions/src/bin/` file
//! and back, all built by cargo-lambda the same way (with the feature the
//! binaries need), with enough memory, and the sweep on its schedule.

use std::collections::BTreeSet;

use serde_json::json;

use super::model::{function, functions, resource, root, template};

/// `functions/src/bin/*.rs`, by name.
fn binaries() -> BTreeSet<String> {
    let dir = format!("{}/functions/src/bin", root());
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .map(|p| {
            p.file_stem()
                .expect("file name")
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

#[test]
fn every_lambda_binary_is_a_function_of_the_template_and_back() {
    let in_template: BTreeSet<String> = functions().into_iter().map(|f| f.binary).collect();
    assert_eq!(
        binaries(),
        in_template,
        "functions/src/bin/ and the template's functions differ"
    );
    assert_eq!(
        functions().len(),
        in_template.len(),
        "one function per binary"
    );
}

#[test]
fn functions_are_built_by_cargo_lambda_for_al2023_on_arm64_by_default() {
    let globals = &template()["Globals"]["Function"];
    assert_eq!(globals["Runtime"], "provided.al2023");
    assert_eq!(globals["Handler"], "bootstrap");
    assert_eq!(globals["CodeUri"], "../functions");
    assert_eq!(globals["Architectures"], json!([{ "Ref": "Architecture" }]));
    let arch = &template()["Parameters"]["Architecture"];
    assert_eq!(arch["Default"], "arm64");
    assert_eq!(arch["AllowedValues"], json!(["arm64", "x86_64"]));
    let default_memory = globals["MemorySize"].as_u64().expect("MemorySize");
    for f in functions() {
        let r = resource(&f.logical);
        assert_eq!(
            r["Metadata"]["BuildMethod"], "rust-cargolambda",
            "{}",
            f.logical
        );
        for key in ["Runtime", "Handler", "CodeUri", "Architectures"] {
            assert!(
                r["Properties"].get(key).is_none(),
                "{}: {key} comes from Globals",
                f.logical
            );
        }
        let memory = r["Properties"]["MemorySize"]
            .as_u64()
            .unwrap_or(default_memory);
        // Argon2id: 19 MiB per hash and CPU, which Lambda scales with memory.
        if matches!(f.binary.as_str(), "http_login" | "http_signup") {
            assert!(memory >= 1024, "{} hashes passwords: {memory} MB", f.binary);
        } else {
            assert!(memory >= 128, "{}", f.binary);
        }
    }
    // Behind API Gateway (29 s at most) or an event source mapping.
    for f in functions() {
        let t = resource(&f.logical)["Properties"]["Timeout"]
            .as_u64()
            .or_else(|| globals["Timeout"].as_u64())
            .expect("Timeout");
        let limit = match f.binary.as_str() {
            "sweep" => 60,
            "fanout" | "push" | "settle" => 120,
            _ => 29,
        };
        assert!(t <= limit, "{}: {t} s", f.binary);
    }
    let sweep = resource(&function("sweep").logical);
    let events = sweep["Properties"]["Events"]
        .as_object()
        .expect("sweep events");
    assert_eq!(events.len(), 1);
    let event = events.values().next().expect("one event");
    assert_eq!(event["Type"], "Schedule");
    assert_eq!(event["Properties"]["Schedule"], "rate(1 minute)");
}

#[test]
fn cargo_lambda_is_told_the_feature_the_binaries_need() {
    // `sam build` runs `cargo lambda build --bin NAME` and cannot pass
    // `--features`; cargo-lambda reads them from the package metadata.
    let path = format!("{}/functions/Cargo.toml", root());
    let manifest = std::fs::read_to_string(&path).expect("functions/Cargo.toml");
    let section = manifest
        .split("[package.metadata.lambda.build]")
        .nth(1)
        .expect("a [package.metadata.lambda.build] section");
    let features = section
        .lines()
        .find(|l| l.trim_start().starts_with("features"))
        .expect("features = [...]");
    assert!(features.contains("\"lambda\""), "{features}");
}
