//! The docs stay true to the repository:
//!
//! - every relative link in `docs/STUDY_GUIDE.md` points at a path that
//!   exists (relative to `docs/`, as GitHub resolves it, or to the repository
//!   root), a `#anchor` into a Markdown file names one of its headings, and a
//!   link whose text is one identifier in backticks (`` [`hold_seats`](…) ``)
//!   points at a file that contains that identifier;
//! - the mermaid `erDiagram` of `docs/DESIGN.md` has an entity for every
//!   table that `migrations/*/up.sql`, applied in order, leaves behind, with
//!   exactly that table's columns;
//! - the Redis strategy's section of `docs/DESIGN.md` shows every `.lua`
//!   script of `crates/lock-redis/src` exactly as the code runs it.
//!
//! Plain string parsing, no dependencies: enough for the SQL and Markdown
//! this repository writes, and it fails loudly on what it does not follow.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root")
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

// ------------------------------------------------------------------ links

#[derive(Debug, PartialEq)]
struct Link {
    line: usize,
    text: String,
    target: String,
}

/// The `[text](target)` links (images too) and `[label]: target`
/// definitions of a Markdown text, outside fenced code blocks and code spans.
fn markdown_links(markdown: &str) -> Vec<Link> {
    let mut links = Vec::new();
    let mut fenced = false;
    for (n, line) in markdown.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix('[') {
            if let Some((label, target)) = rest.split_once("]:") {
                if !label.contains(']') {
                    links.push(Link {
                        line: n + 1,
                        text: label.to_owned(),
                        target: first_word(target),
                    });
                    continue;
                }
            }
        }
        inline_links(line, n + 1, &mut links);
    }
    links
}

fn inline_links(line: &str, number: usize, links: &mut Vec<Link>) {
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    let mut in_code = false;
    while i < chars.len() {
        match chars[i] {
            '`' => in_code = !in_code,
            '[' if !in_code => {
                // The matching `]`, skipping backticked text and nested brackets.
                let (mut j, mut depth, mut code) = (i + 1, 1, false);
                while j < chars.len() {
                    match chars[j] {
                        '`' => code = !code,
                        '[' if !code => depth += 1,
                        ']' if !code => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
                if j + 1 < chars.len() && chars[j + 1] == '(' {
                    let start = j + 2;
                    let (mut k, mut depth) = (start, 1);
                    while k < chars.len() {
                        match chars[k] {
                            '(' => depth += 1,
                            ')' => {
                                depth -= 1;
                                if depth == 0 {
                                    break;
                                }
                            }
                            _ => {}
                        }
                        k += 1;
                    }
                    let text: String = chars[i + 1..j].iter().collect();
                    let target: String = chars[start..k.min(chars.len())].iter().collect();
                    links.push(Link {
                        line: number,
                        text,
                        target: first_word(&target),
                    });
                    i = k;
                } else {
                    // Not a link: look inside the brackets for one.
                    i += 1;
                    continue;
                }
            }
            _ => {}
        }
        i += 1;
    }
}

/// The destination without an optional `"title"`, and without `<…>`.
fn first_word(target: &str) -> String {
    let word = target.split_whitespace().next().unwrap_or("");
    word.trim_start_matches('<')
        .trim_end_matches('>')
        .to_owned()
}

fn is_external(target: &str) -> bool {
    let lower = target.to_ascii_lowercase();
    ["http://", "https://", "mailto:", "ftp://"]
        .iter()
        .any(|scheme| lower.starts_with(scheme))
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces
/// to hyphens; a repeated heading gets `-1`, `-2`, ….
fn heading_anchors(markdown: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut anchors = BTreeSet::new();
    let mut fenced = false;
    for line in markdown.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            fenced = !fenced;
            continue;
        }
        if fenced || !trimmed.starts_with('#') {
            continue;
        }
        let title = trimmed.trim_start_matches('#');
        if !title.starts_with(' ') {
            continue;
        }
        let slug: String = title
            .trim()
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let count = seen.entry(slug.clone()).or_insert(0);
        anchors.insert(if *count == 0 {
            slug.clone()
        } else {
            format!("{slug}-{count}")
        });
        *count += 1;
    }
    anchors
}

/// `` `Type::method` ``, `` `function()` `` or `` `macro!` `` as the whole
/// link text: the names it is made of.
fn identifiers_in(text: &str) -> Option<Vec<String>> {
    let code = text.strip_prefix('`')?.strip_suffix('`')?;
    let code = code
        .strip_suffix("()")
        .or_else(|| code.strip_suffix('!'))
        .unwrap_or(code);
    let parts: Vec<String> = code.split("::").map(str::to_owned).collect();
    let is_ident = |p: &String| {
        let mut chars = p.chars();
        matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    parts.iter().all(is_ident).then_some(parts)
}

/// What is wrong with one link, if anything.
fn check_link(root: &Path, docs: &Path, guide: &str, link: &Link) -> Option<String> {
    let target = link.target.as_str();
    if target.is_empty() {
        return Some("empty link target".into());
    }
    if is_external(target) {
        return None;
    }
    let (path, anchor) = match target.split_once('#') {
        Some((p, a)) => (p, Some(a)),
        None => (target, None),
    };
    if path.is_empty() {
        let anchor = anchor.unwrap_or_default();
        return (!heading_anchors(guide).contains(anchor))
            .then(|| format!("no heading #{anchor} in STUDY_GUIDE.md"));
    }
    let path = path.split('?').next().unwrap_or(path);
    let Some(resolved) = [docs.join(path), root.join(path)]
        .into_iter()
        .find(|p| p.exists())
    else {
        return Some(format!(
            "{path} exists neither under docs/ nor under the repository root"
        ));
    };
    if let Some(anchor) = anchor {
        if resolved.extension().is_some_and(|e| e == "md")
            && !heading_anchors(&read(&resolved)).contains(anchor)
        {
            return Some(format!("{path} has no heading for #{anchor}"));
        }
    }
    if let Some(names) = identifiers_in(&link.text) {
        if resolved.is_file() {
            let source = read(&resolved);
            if let Some(missing) = names.iter().find(|n| !source.contains(n.as_str())) {
                return Some(format!("{path} does not contain `{missing}`"));
            }
        }
    }
    None
}

#[test]
fn every_link_in_the_study_guide_points_at_something_that_exists() {
    let root = repo_root();
    let docs = root.join("docs");
    let guide = read(&docs.join("STUDY_GUIDE.md"));
    let links = markdown_links(&guide);
    let local = links.iter().filter(|l| !is_external(&l.target)).count();
    assert!(
        local >= 20,
        "STUDY_GUIDE.md should link to the code it explains; found only {local} local links"
    );
    let broken: Vec<String> = links
        .iter()
        .filter_map(|link| {
            check_link(&root, &docs, &guide, link).map(|why| {
                format!(
                    "docs/STUDY_GUIDE.md:{}: [{}]({}): {why}",
                    link.line, link.text, link.target
                )
            })
        })
        .collect();
    assert!(
        broken.is_empty(),
        "{} broken links:\n{}",
        broken.len(),
        broken.join("\n")
    );
}

#[test]
fn link_parsing_follows_markdown() {
    let md = "\
See [the lock](../crates/lock-redis/src/lib.rs#L10) and ![img](a.png \"title\").
`[not](a-link)` and [`hold_seats`](x.rs), [outer [inner]](y.md).
```
[fenced](nope.md)
```
[ref]: ../README.md
";
    let links = markdown_links(md);
    let targets: Vec<_> = links.iter().map(|l| l.target.as_str()).collect();
    assert_eq!(
        targets,
        [
            "../crates/lock-redis/src/lib.rs#L10",
            "a.png",
            "x.rs",
            "y.md",
            "../README.md"
        ]
    );
    assert_eq!(
        identifiers_in("`PessimisticSeatLock::hold_seats`"),
        Some(vec!["PessimisticSeatLock".into(), "hold_seats".into()])
    );
    assert_eq!(identifiers_in("`cargo test -p x`"), None);
    assert_eq!(identifiers_in("`release_locks.lua`"), None);
    let anchors = heading_anchors("# A B\n## Idempotency: `processed_events`\n## A B\n");
    assert!(anchors.contains("a-b") && anchors.contains("a-b-1"));
    assert!(anchors.contains("idempotency-processed_events"));
}

// ------------------------------------------------------------------ ERD

/// Tables and their columns, in creation order.
type Schema = BTreeMap<String, Vec<String>>;

/// The schema `migrations/*/up.sql` leave behind, applied in directory order.
fn migrated_schema(root: &Path) -> Schema {
    let mut dirs: Vec<PathBuf> = fs::read_dir(root.join("migrations"))
        .expect("migrations/")
        .map(|e| e.expect("a migrations entry").path())
        .filter(|p| p.join("up.sql").is_file())
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty(), "no migrations/*/up.sql found");
    let mut schema = Schema::new();
    for dir in dirs {
        apply_sql(&mut schema, &read(&dir.join("up.sql")));
    }
    schema
}

fn apply_sql(schema: &mut Schema, sql: &str) {
    for statement in statements(&strip_comments(sql)) {
        apply_statement(schema, &statement);
    }
}

fn strip_comments(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("--") {
            rest = after.find('\n').map_or("", |i| &after[i..]);
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.find("*/").map_or("", |i| &after[i + 2..]);
        } else if rest.starts_with('\'') {
            // A string literal, copied whole ('' is an escaped quote).
            let end = rest[1..]
                .match_indices('\'')
                .map(|(i, _)| i + 2)
                .find(|&i| !rest[i..].starts_with('\''))
                .unwrap_or(rest.len());
            out.push_str(&rest[..end]);
            rest = &rest[end..];
        } else {
            let c = rest.chars().next().expect("not empty");
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// Splits on `sep` outside parentheses and string literals.
fn split_top_level(text: &str, sep: char) -> Vec<String> {
    let (mut parts, mut current) = (Vec::new(), String::new());
    let (mut depth, mut quoted) = (0i32, false);
    for c in text.chars() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            c if c == sep && depth == 0 && !quoted => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    parts.push(current);
    parts
        .into_iter()
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|p| !p.is_empty())
        .collect()
}

fn statements(sql: &str) -> Vec<String> {
    split_top_level(sql, ';')
}

/// A table or column name: unquoted, lower case, without its schema.
fn name(token: &str) -> String {
    let last = token.rsplit('.').next().unwrap_or(token);
    last.trim_matches('"').to_lowercase()
}

/// Drops the leading keywords `words` (case-insensitive) from `tokens`.
fn skip<'a>(mut tokens: &'a [&'a str], words: &[&str]) -> &'a [&'a str] {
    for word in words {
        match tokens.first() {
            Some(t) if t.eq_ignore_ascii_case(word) => tokens = &tokens[1..],
            _ => return tokens,
        }
    }
    tokens
}

fn upper(tokens: &[&str], n: usize) -> Vec<String> {
    tokens
        .iter()
        .take(n)
        .map(|t| t.to_ascii_uppercase())
        .collect()
}

fn apply_statement(schema: &mut Schema, statement: &str) {
    let tokens: Vec<&str> = statement.split_whitespace().collect();
    let head = upper(&tokens, 2);
    match head.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["CREATE", "TABLE"] | ["CREATE", "UNLOGGED"] => {
            let rest = skip(&tokens[1..], &["UNLOGGED"]);
            let rest = skip(skip(rest, &["TABLE"]), &["IF", "NOT", "EXISTS"]);
            let table = name(rest[0].split('(').next().unwrap_or(rest[0]));
            let open = statement.find('(').expect("CREATE TABLE without (");
            let close = statement.rfind(')').expect("CREATE TABLE without )");
            let columns = split_top_level(&statement[open + 1..close], ',')
                .iter()
                .filter_map(|item| {
                    let first = item.split_whitespace().next()?;
                    let constraint = [
                        "CONSTRAINT",
                        "PRIMARY",
                        "UNIQUE",
                        "FOREIGN",
                        "CHECK",
                        "EXCLUDE",
                        "LIKE",
                    ]
                    .iter()
                    .any(|k| first.eq_ignore_ascii_case(k));
                    (!constraint).then(|| name(first))
                })
                .collect();
            schema.insert(table, columns);
        }
        ["ALTER", "TABLE"] => {
            let rest = skip(skip(&tokens[2..], &["IF", "EXISTS"]), &["ONLY"]);
            let mut table = name(rest[0]);
            for action in split_top_level(&rest[1..].join(" "), ',') {
                let words: Vec<&str> = action.split_whitespace().collect();
                let verb = upper(&words, 2);
                let verb: Vec<&str> = verb.iter().map(String::as_str).collect();
                let columns = schema.entry(table.clone()).or_default();
                match verb[..] {
                    ["ADD", "CONSTRAINT" | "PRIMARY" | "UNIQUE" | "FOREIGN" | "CHECK" | "EXCLUDE"] =>
                        {}
                    ["ADD", ..] => {
                        let w = skip(skip(&words[1..], &["COLUMN"]), &["IF", "NOT", "EXISTS"]);
                        columns.push(name(w[0]));
                    }
                    ["DROP", "CONSTRAINT"] => {}
                    ["DROP", ..] => {
                        let w = skip(skip(&words[1..], &["COLUMN"]), &["IF", "EXISTS"]);
                        let dropped = name(w[0]);
                        columns.retain(|c| *c != dropped);
                    }
                    ["RENAME", "TO"] => {
                        let columns = schema.remove(&table).unwrap_or_default();
                        table = name(words[2]);
                        schema.insert(table.clone(), columns);
                    }
                    ["RENAME", ..] => {
                        let w = skip(&words[1..], &["COLUMN"]);
                        if w.len() >= 3 && w[1].eq_ignore_ascii_case("TO") {
                            let (from, to) = (name(w[0]), name(w[2]));
                            for c in columns.iter_mut().filter(|c| **c == from) {
                                c.clone_from(&to);
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        ["DROP", "TABLE"] => {
            let rest = skip(&tokens[2..], &["IF", "EXISTS"]);
            for table in rest.join(" ").split(',') {
                if let Some(t) = table.split_whitespace().next() {
                    schema.remove(&name(t));
                }
            }
        }
        _ => {}
    }
}

/// The entities of the first mermaid `erDiagram` in `markdown`, with their
/// attribute names.
fn er_diagram(markdown: &str) -> Option<Schema> {
    let mut lines = markdown.lines();
    loop {
        let line = lines.next()?;
        if line.trim_start().starts_with("```mermaid") {
            let first = lines.by_ref().map(str::trim).find(|l| !l.is_empty())?;
            if first == "erDiagram" {
                break;
            }
        }
    }
    let mut entities = Schema::new();
    let mut current: Option<String> = None;
    for line in lines {
        let line = line.trim();
        if line.starts_with("```") {
            break;
        }
        if line.is_empty() || line.starts_with("%%") {
            continue;
        }
        if let Some(entity) = &current {
            if line == "}" {
                current = None;
            } else if let Some(column) = line.split_whitespace().nth(1) {
                entities
                    .get_mut(entity)
                    .expect("entity")
                    .push(column.trim_end_matches(',').to_lowercase());
            }
        } else if let Some(head) = line.strip_suffix('{') {
            let entity = head.split(['[', ' ']).next().unwrap_or(head).trim();
            entities.insert(entity.to_lowercase(), Vec::new());
            current = Some(entity.to_lowercase());
        }
    }
    Some(entities)
}

#[test]
fn the_erd_lists_every_table_and_column_of_the_migrations() {
    let root = repo_root();
    let migrated = migrated_schema(&root);
    let design = read(&root.join("docs/DESIGN.md"));
    let erd =
        er_diagram(&design).expect("docs/DESIGN.md has a ```mermaid block starting with erDiagram");

    let mut problems = Vec::new();
    for (table, columns) in &migrated {
        let Some(listed) = erd.get(table) else {
            problems.push(format!("table {table} is not an entity of the ERD"));
            continue;
        };
        for column in columns {
            if !listed.contains(column) {
                problems.push(format!("{table}.{column} is missing from the ERD"));
            }
        }
        for column in listed {
            if !columns.contains(column) {
                problems.push(format!(
                    "{table}.{column} is in the ERD but not in the migrated schema"
                ));
            }
        }
    }
    for entity in erd.keys().filter(|e| !migrated.contains_key(*e)) {
        problems.push(format!(
            "entity {entity} is in the ERD but no migration creates it"
        ));
    }
    assert!(
        problems.is_empty(),
        "docs/DESIGN.md's erDiagram disagrees with migrations/*/up.sql:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_migrated_schema_follows_every_migration() {
    let schema = migrated_schema(&repo_root());
    assert!(schema.len() >= 10, "{schema:?}");
    let schedules = &schema["concert_schedules"];
    assert!(schedules.contains(&"total_seats".to_owned()));
    assert!(
        !schedules.contains(&"available_seats".to_owned()),
        "migration 2 drops concert_schedules.available_seats"
    );
    let outbox = &schema["outbox"];
    for column in ["payload", "published_at", "claimed_by", "claimed_until"] {
        assert!(
            outbox.contains(&column.to_owned()),
            "outbox.{column}: {outbox:?}"
        );
    }
}

#[test]
fn sql_parsing_follows_create_alter_and_drop() {
    let mut schema = Schema::new();
    apply_sql(
        &mut schema,
        "-- a comment; with a semicolon
         CREATE TABLE IF NOT EXISTS public.\"t\" (
             id BIGSERIAL PRIMARY KEY,
             note TEXT NOT NULL DEFAULT 'a, b; -- c',
             n INTEGER CHECK (n IN (1, 2)),
             CONSTRAINT t_n UNIQUE (n),
             PRIMARY KEY (id)
         );
         CREATE TABLE gone (x INT);
         /* block; comment */
         ALTER TABLE t ADD COLUMN a TEXT, ADD b INT, DROP COLUMN IF EXISTS note,
             ADD CONSTRAINT t_a UNIQUE (a);
         ALTER TABLE ONLY t RENAME COLUMN n TO m;
         DROP TABLE IF EXISTS gone CASCADE;",
    );
    assert_eq!(
        schema,
        Schema::from([(
            "t".to_owned(),
            vec!["id".into(), "m".into(), "a".into(), "b".into()]
        )])
    );
    let erd = er_diagram(
        "x\n```mermaid\nerDiagram\n    t {\n        bigserial id PK\n        text a \"note\"\n    }\n    t ||--o{ u : has\n```\n",
    )
    .unwrap();
    assert_eq!(
        erd,
        Schema::from([("t".to_owned(), vec!["id".into(), "a".into()])])
    );
}

// ------------------------------------------------------------------ scripts

#[test]
fn design_md_shows_every_script_the_redis_strategy_runs() {
    let root = repo_root();
    let design = read(&root.join("docs/DESIGN.md"));
    let section = design
        .split_once("## The Redis strategy\n")
        .and_then(|(_, rest)| rest.split("\n## ").next())
        .expect("docs/DESIGN.md has a section '## The Redis strategy'");
    let dir = root.join("crates/lock-redis/src");
    let mut scripts: Vec<PathBuf> = fs::read_dir(&dir)
        .expect("crates/lock-redis/src")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "lua"))
        .collect();
    scripts.sort();
    assert!(!scripts.is_empty(), "no .lua scripts in {}", dir.display());
    let missing: Vec<String> = scripts
        .iter()
        .filter(|script| {
            let body = format!("```lua\n{}\n```", read(script).trim_end());
            !section.contains(&body)
        })
        .map(|script| script.display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "docs/DESIGN.md's Redis section must show these scripts as they are, in a ```lua block:\n{}",
        missing.join("\n")
    );
}
