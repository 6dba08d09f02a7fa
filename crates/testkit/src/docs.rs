//! Checks that the design document shows code as the code is.

use std::path::PathBuf;

/// Panics unless `docs/DESIGN.md`, in its section `heading` (a `## ` line),
/// shows `sql` exactly, in a ```sql block; the message carries the block.
pub fn assert_design_shows_sql(heading: &str, what: &str, sql: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/DESIGN.md");
    let design = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let section = design
        .split_once(&format!("## {heading}\n"))
        .and_then(|(_, rest)| rest.split("\n## ").next())
        .unwrap_or_else(|| panic!("docs/DESIGN.md has no section '## {heading}'"));
    let block = format!("```sql\n{}\n```", sql.trim_end());
    assert!(
        section.contains(&block),
        "docs/DESIGN.md's section '{heading}' must show {what} as the code runs it:\n{block}"
    );
}
