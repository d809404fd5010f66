//! mch-chain: the maternal and child health pathway ("一条链") for a region.
//!
//! Layout (ARCHITECTURE.md): feature folders (`identity`, `pregnancy`, `visits`, …) each with a
//! pure `model.rs`, `service.rs` (the only entry points) and `repo.rs` (its queries); `storage`
//! owns diesel; the adapters (`web`) only translate and call services.

pub mod app;
pub mod audit;
pub mod auth;
pub mod chart;
pub mod child;
pub mod cli;
pub mod conditions;
pub mod config;
pub mod couple;
pub mod demo;
pub mod error;
pub mod events;
pub mod facility;
pub mod fhir;
pub mod growth;
pub mod hl7;
pub mod identity;
pub mod ids;
pub mod immunizations;
pub mod observations;
pub mod policy;
pub mod pregnancy;
pub mod privacy;
pub mod reactions;
pub mod referral;
pub mod risk;
pub mod storage;
pub mod telemetry;
pub mod visits;
pub mod web;

pub use app::Application;

#[cfg(test)]
mod layout_tests {
    //! README "Feature order" is the rule; this test holds the code to it.

    use std::collections::HashMap;
    use std::path::{Path, PathBuf};

    /// Each module's line in the README block (0 = the bottom line), and the lines marked *one unit*.
    fn declared_order() -> (HashMap<String, usize>, Vec<bool>) {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
        let after = readme
            .split("**Feature order.**")
            .nth(1)
            .expect("README has a Feature order section");
        let block = after
            .split("```text\n")
            .nth(1)
            .and_then(|b| b.split("```").next())
            .unwrap();
        let mut level = HashMap::new();
        let mut one_unit = Vec::new();
        for (i, line) in block.lines().filter(|l| !l.trim().is_empty()).enumerate() {
            let (names, note) = line.split_once("  ").unwrap_or((line, ""));
            for n in names.split_whitespace() {
                assert!(
                    level.insert(n.to_string(), i).is_none(),
                    "{n} stands twice in the order"
                );
            }
            one_unit.push(note.contains("(one unit)"));
        }
        (level, one_unit)
    }

    /// The top-level modules a piece of code names through `crate::` paths (also `crate::{a, b}`).
    fn named_modules(code: &str) -> Vec<String> {
        let ident = |s: &str| -> String {
            s.chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect()
        };
        let mut out = Vec::new();
        for part in code.split("crate::").skip(1) {
            if let Some(group) = part.strip_prefix('{') {
                let inner = group.split('}').next().unwrap_or("");
                out.extend(inner.split(',').map(|i| ident(i.trim())).filter(|i| !i.is_empty()));
            } else {
                out.push(ident(part));
            }
        }
        out.retain(|m| !m.is_empty());
        out
    }

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                rust_files(&p, out);
            } else if p.extension().is_some_and(|e| e == "rs") {
                out.push(p);
            }
        }
    }

    #[test]
    fn modules_use_only_modules_below_them() {
        let (level, one_unit) = declared_order();
        let src = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src"));
        let mut files = Vec::new();
        rust_files(src, &mut files);
        let mut wrong = Vec::new();
        for f in files {
            let rel = f.strip_prefix(src).unwrap();
            let first = rel
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_string_lossy()
                .to_string();
            let module = first.trim_end_matches(".rs").to_string();
            if module == "lib" || module == "main" {
                continue;
            }
            let Some(&mine) = level.get(&module) else {
                wrong.push(format!("{module}: not placed in README's Feature order"));
                continue;
            };
            let text = std::fs::read_to_string(&f).unwrap();
            // Unit tests may reach anywhere (as in ../shared/tools/feature-graph.py).
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            for used in named_modules(code) {
                if used == module {
                    continue;
                }
                match level.get(&used) {
                    Some(&theirs) if theirs < mine || (theirs == mine && one_unit[mine]) => {}
                    Some(_) => wrong.push(format!("{} uses {used}, which is not below {module}", rel.display())),
                    None => wrong.push(format!("{} uses {used}, which is not in the order", rel.display())),
                }
            }
        }
        wrong.sort();
        wrong.dedup();
        assert!(wrong.is_empty(), "README Feature order broken:\n{}", wrong.join("\n"));
    }

    #[test]
    fn the_order_reader_sees_grouped_and_nested_paths() {
        let code = "use crate::{app, audit::service};\nlet x = crate::risk::model::X; // crate::web";
        assert_eq!(named_modules(code), ["app", "audit", "risk", "web"]);
        let (level, one_unit) = declared_order();
        assert!(level["identity"] < level["pregnancy"] && level["risk"] < level["referral"]);
        assert!(level["referral"] < level["chart"] && level["chart"] < level["web"]);
        assert!(one_unit[level["audit"]] && !one_unit[level["risk"]]);
    }
}
