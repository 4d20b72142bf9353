//! The server must not link any key backend: wallet keys exist only in the signer process.
//!
//! Walks `Cargo.lock` from `clawfirst-server` through every dependency and asserts that no
//! crate of the signer or its backends is reachable.

use std::collections::{BTreeMap, BTreeSet};

use super::support::TestResult;

/// Crates that hold or reach key material.
const FORBIDDEN: &[&str] = &["clawfirst-signer", "cryptoki", "argon2", "chacha20poly1305"];

fn lock_graph() -> Result<BTreeMap<String, Vec<String>>, Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.lock"))?;
    let lock: toml::Value = toml::from_str(&text)?;
    let mut graph: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for package in lock["package"].as_array().into_iter().flatten() {
        let name = package["name"].as_str().unwrap_or_default().to_owned();
        let deps = package
            .get("dependencies")
            .and_then(|d| d.as_array())
            .into_iter()
            .flatten()
            .filter_map(|d| d.as_str())
            .map(|d| d.split(' ').next().unwrap_or_default().to_owned());
        graph.entry(name).or_default().extend(deps);
    }
    Ok(graph)
}

fn reachable(graph: &BTreeMap<String, Vec<String>>, from: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![from.to_owned()];
    while let Some(name) = stack.pop() {
        if seen.insert(name.clone()) {
            stack.extend(graph.get(&name).into_iter().flatten().cloned());
        }
    }
    seen
}

#[test]
fn the_server_depends_on_no_key_backend() -> TestResult {
    let graph = lock_graph()?;
    let server = reachable(&graph, "clawfirst-server");
    assert!(
        server.contains("clawfirst-store"),
        "the walk must see the server's real tree"
    );
    for forbidden in FORBIDDEN {
        assert!(
            !server.contains(*forbidden),
            "clawfirst-server reaches {forbidden}"
        );
    }
    // And the check is able to fail: the signer does reach its backends.
    let signer = reachable(&graph, "clawfirst-signer");
    assert!(signer.contains("cryptoki") && signer.contains("argon2"));
    Ok(())
}
