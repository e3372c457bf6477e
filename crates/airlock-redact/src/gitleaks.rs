//! Importing gitleaks rule files.
//!
//! # Why
//! Teams that already scan with gitleaks have their in-house token formats written down as a `gitleaks.toml`.
//! [`import_gitleaks`] turns such a file into our [`RuleSpec`]s, so those rules mask output too, without anyone
//! rewriting them. Add the result with [`crate::RuleSet::add_imported`] (imported rules come without examples).
//!
//! # What maps to what
//! | gitleaks (keys are case-insensitive, as gitleaks reads them) | Airlock |
//! |---|---|
//! | `[[rules]] id` | `id`, lowercased, runs of other characters turned into one `-` (`AWS_Key` -> `aws-key`); a clash gets `-2`, `-3`, ... |
//! | (none) | `family`: the id's first `-` segment (`generic-api-key` -> `generic`, which ranks below specific rules) |
//! | `description` | `description` (the original id when empty) |
//! | `regex` (Go RE2) | `regex`, converted (see below) |
//! | `secretGroup` | the group is renamed `secret`; with no `secretGroup` and exactly one group, that group (as gitleaks does) |
//! | `entropy` | `entropy` |
//! | `keywords` | `keywords`; with none, the regex's literal prefixes (`ghp_` in `ghp_[0-9A-Za-z]{36}`), else the rule is skipped |
//! | allowlist `stopwords` (`[rules.allowlist]`, `[[rules.allowlists]]`, global `[allowlist]`/`[[allowlists]]` with or without `targetRules`) | `allow` |
//!
//! Skipped, each with a warning naming the rule: rules with only a `path` (they match file names; Airlock scans
//! streams), composite rules (`[[rules.required]]`), `skipReport` rules, regexes that do not convert or compile,
//! and rules with neither keywords nor a literal prefix of at least three bytes. Approximated, with a warning: a
//! `path` next to a `regex` (ignored: the regex applies everywhere), allowlist `regexes`, `paths` and `commits`
//! (ignored; an `AND` allowlist that has them loses its stopwords too, since its condition can never hold), and
//! unbounded repeats. `[extend]` (`useDefault`, `path`) is reported and not followed: gitleaks' own default rules
//! are not shipped with Airlock, whose built-in rules cover the same ground.
//!
//! # Two differences in meaning
//! - A gitleaks keyword only has to occur somewhere in the scanned fragment; an Airlock keyword must lie inside the
//!   match (it is what the prefilter windows around). Rules whose keywords are not part of what their regex
//!   matches will find nothing here.
//! - Airlock needs every match bounded by `max_len` (that bound makes streaming exact), so `+`, `*` and `{n,}`
//!   become `{1,N}`, `{0,N}` and `{n,max(n,N)}` with N = 256, lowered until the whole regex can match at most 1024
//!   bytes. A longer secret is then not found; the warning says which cap was used.
//!
//! # Go RE2 syntax
//! Mostly what the `regex` crate accepts. Converted: `\Q...\E` (quoted text), octal escapes (`\101`), `\C` (any
//! byte), `\<` and `\>` (literals in Go, word boundaries here), a `{` that does not start a repeat (a literal in
//! Go), a `[` inside a class and `&&`, `--`, `~~` there (literals in Go, nested classes and set operations here),
//! and non-ASCII text (Go matches code points; our regexes run over bytes, so outside a class a code point becomes
//! its UTF-8 bytes). Refused: Unicode classes (`\pL`) and non-ASCII characters inside a class, since matching is
//! ASCII-only.

use regex_syntax::ast::{self, Ast, GroupKind, RepetitionKind, RepetitionRange};
use regex_syntax::hir::literal::{ExtractKind, Extractor};
use regex_syntax::hir::{self, Hir, HirKind};
use toml::{Table, Value};

use crate::rule::{Category, MAX_MAX_LEN, RuleError, RuleSpec, compile_regex};

/// Once unbounded repeats are capped, an imported regex should match at most this many bytes.
const TARGET_MAX_LEN: usize = 1024;
/// Caps tried for unbounded repeats (`+`, `*`, `{n,}`), largest first.
const REPEAT_CAPS: &[u32] = &[256, 128, 64, 32, 16];
/// Shortest literal prefix taken as a keyword for a rule that has none.
const MIN_DERIVED_KEYWORD: usize = 3;
/// Most literal prefixes taken as keywords (`(?i)` multiplies them).
const MAX_DERIVED_KEYWORDS: usize = 64;

/// Converts a gitleaks configuration (`gitleaks.toml`) into rules.
///
/// Returns the rules and one warning per rule skipped or approximated (naming the rule, never quoting example
/// text), plus warnings about file-wide settings that are not followed. `file` names the file in errors. Errors:
/// the file is not TOML or not shaped like a gitleaks config ([`RuleError::Parse`]), or it has no `[[rules]]`
/// ([`RuleError::Empty`]). Every returned rule passes [`crate::RuleSet::add_imported`]'s checks on its own; ids may
/// still clash with rules already in the set.
pub fn import_gitleaks(file: &str, text: &str) -> Result<(Vec<RuleSpec>, Vec<String>), RuleError> {
    let parse_error = |reason: String| RuleError::Parse { file: file.to_string(), reason };
    let doc: Table = toml::from_str(text).map_err(|e| parse_error(e.message().to_string()))?;
    let mut warnings = Vec::new();

    if let Some(extend) = get(&doc, "extend") {
        let extend = extend.as_table().ok_or_else(|| parse_error("[extend] must be a table".into()))?;
        if get(extend, "usedefault").and_then(Value::as_bool) == Some(true) {
            warnings.push(
                "[extend] useDefault: gitleaks' default rules are not part of Airlock (its built-in rules cover \
                 the same ground); only this file's rules are imported"
                    .to_string(),
            );
        }
        for key in ["path", "url"] {
            if let Some(target) = get(extend, key).and_then(Value::as_str) {
                warnings.push(format!("[extend] {key} {target:?} is not followed: import that file on its own"));
            }
        }
        if get(extend, "disabledrules").is_some() {
            warnings.push("[extend] disabledRules applies to extended configs, which are not loaded: ignored".into());
        }
    }

    // Global allowlists: (target rule ids, or all rules when None; stopwords).
    let mut global: Vec<(Option<Vec<String>>, Vec<String>)> = Vec::new();
    for (i, allowlist) in tables(&doc, "allowlist", "allowlists").map_err(parse_error)?.into_iter().enumerate() {
        let mut notes = Vec::new();
        let stopwords = read_allowlist(allowlist, &mut notes)
            .map_err(|e| parse_error(format!("[[allowlists]] #{}: {e}", i + 1)))?;
        let targets = match get(allowlist, "targetrules") {
            None => None,
            Some(v) => {
                Some(strings(v).map_err(|e| parse_error(format!("[[allowlists]] #{} targetRules: {e}", i + 1)))?)
            }
        };
        if !notes.is_empty() {
            warnings.push(format!("global allowlist #{}: {}", i + 1, notes.join("; ")));
        }
        global.push((targets, stopwords));
    }

    let rules = tables(&doc, "rules", "rules").map_err(parse_error)?;
    if rules.is_empty() {
        return Err(RuleError::Empty { file: file.to_string() });
    }
    let mut specs: Vec<RuleSpec> = Vec::new();
    for (i, rule) in rules.into_iter().enumerate() {
        let Some(original) = get(rule, "id").and_then(Value::as_str).filter(|id| !id.trim().is_empty()) else {
            warnings.push(format!("gitleaks rule #{}: skipped: it has no id", i + 1));
            continue;
        };
        let mut allow: Vec<String> = global
            .iter()
            .filter(|(targets, _)| targets.as_ref().is_none_or(|t| t.iter().any(|x| x == original)))
            .flat_map(|(_, stopwords)| stopwords.iter().cloned())
            .collect();
        let mut notes = Vec::new();
        match convert_rule(original, rule, &mut allow, &mut notes) {
            Err(reason) => warnings.push(format!("gitleaks rule {original:?}: skipped: {reason}")),
            Ok(mut spec) => {
                let base = spec.id.clone();
                let mut n = 1;
                while specs.iter().any(|s| s.id == spec.id) {
                    n += 1;
                    let suffix = format!("-{n}");
                    spec.id = format!("{}{suffix}", truncate_id(&base, 64 - suffix.len()));
                }
                if spec.id != base {
                    notes.push(format!("id {:?} is taken: imported as {:?}", base, spec.id));
                }
                allow.sort();
                allow.dedup();
                spec.allow = allow;
                if !notes.is_empty() {
                    warnings.push(format!(
                        "gitleaks rule {original:?}: imported as {:?}, approximated: {}",
                        spec.id,
                        notes.join("; ")
                    ));
                }
                specs.push(spec);
            }
        }
    }
    Ok((specs, warnings))
}

/// Converts one `[[rules]]` table. `allow` holds the global stopwords that apply and receives the rule's own;
/// `notes` receives approximations. `Err` is why the rule is skipped.
fn convert_rule(
    original: &str,
    rule: &Table,
    allow: &mut Vec<String>,
    notes: &mut Vec<String>,
) -> Result<RuleSpec, String> {
    let id = sanitize_id(original);
    if id.is_empty() {
        return Err("its id has no letters or digits".into());
    }
    let text = |key: &str| -> Result<Option<String>, String> {
        match get(rule, key) {
            None => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("{key} must be a string")),
        }
    };
    let path = text("path")?;
    let Some(go_regex) = text("regex")? else {
        return Err(if path.is_some() {
            "a path-only rule (it matches file names; Airlock scans streams, not files)".into()
        } else {
            "it has no regex".into()
        });
    };
    if path.is_some() {
        notes.push("its path condition is ignored: the regex applies to every stream".into());
    }
    if get(rule, "skipreport").and_then(Value::as_bool) == Some(true) {
        return Err("skipReport: gitleaks never reports it on its own".into());
    }
    if get(rule, "required").is_some_and(|r| r.as_array().is_none_or(|a| !a.is_empty())) {
        return Err(
            "a composite rule ([[rules.required]]): the nearby companion matches it needs cannot be checked".into()
        );
    }
    let secret_group = match get(rule, "secretgroup") {
        None => 0,
        Some(Value::Integer(n)) => u32::try_from(*n).map_err(|_| format!("secretGroup {n} is not a group index"))?,
        Some(_) => return Err("secretGroup must be an integer".into()),
    };
    let entropy = match get(rule, "entropy") {
        None => None,
        Some(Value::Float(f)) => Some(*f),
        Some(Value::Integer(n)) => Some(*n as f64),
        Some(_) => return Err("entropy must be a number".into()),
    };
    // gitleaks' 0 is "no floor".
    let entropy = match entropy.filter(|&e| e != 0.0) {
        Some(e) if !(0.0..=8.0).contains(&e) => return Err(format!("entropy {e} is outside 0..=8 bits per byte")),
        e => e,
    };
    let mut keywords = Vec::new();
    if let Some(v) = get(rule, "keywords") {
        for k in strings(v).map_err(|e| format!("keywords: {e}"))? {
            if k.is_empty() || !k.is_ascii() {
                notes.push(format!("keyword {k:?} dropped (keywords are non-empty ASCII)"));
            } else if !keywords.contains(&k.to_ascii_lowercase()) {
                keywords.push(k.to_ascii_lowercase());
            }
        }
    }
    for list in tables(rule, "allowlist", "allowlists")? {
        allow.extend(read_allowlist(list, notes)?);
    }

    let converted = convert_regex(&go_regex, secret_group)?;
    if let Some(cap) = converted.capped {
        notes.push(format!("unbounded repeats capped at {cap} (a longer secret is not found)"));
    }
    if keywords.is_empty() {
        match literal_prefixes(&converted.hir) {
            Some(prefixes) => keywords = prefixes,
            None => {
                return Err(format!(
                    "no keywords, and the regex has no literal prefix of {MIN_DERIVED_KEYWORD}+ bytes to use as one \
                     (Airlock's prefilter needs a keyword)"
                ));
            }
        }
    }
    let description = match text("description")? {
        Some(d) if !d.trim().is_empty() => d,
        _ => format!("{original} (imported from a gitleaks config)"),
    };
    let family = id.split('-').next().unwrap_or(&id).to_string();
    Ok(RuleSpec {
        id,
        family,
        category: Category::Secret,
        description,
        keywords,
        regex: converted.pattern,
        check: None,
        entropy,
        max_len: Some(converted.max_len.max(1)),
        multiline: converted.multiline,
        keep_prefix: 0,
        placeholders: true,
        allow: Vec::new(),
        positive: Vec::new(),
        negative: Vec::new(),
    })
}

/// A case-insensitive key lookup: gitleaks reads its config through Viper, which ignores key case.
fn get<'a>(table: &'a Table, key: &str) -> Option<&'a Value> {
    table.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v)
}

/// The tables under `single` (one table, the deprecated form) and `plural` (an array of tables).
fn tables<'a>(doc: &'a Table, single: &str, plural: &str) -> Result<Vec<&'a Table>, String> {
    let mut out = Vec::new();
    for (key, value) in doc.iter() {
        if !(key.eq_ignore_ascii_case(single) || key.eq_ignore_ascii_case(plural)) {
            continue;
        }
        match value {
            Value::Table(t) => out.push(t),
            Value::Array(items) => {
                for item in items {
                    out.push(item.as_table().ok_or_else(|| format!("[[{key}]] must hold tables"))?);
                }
            }
            _ => return Err(format!("{key} must be a table or an array of tables")),
        }
    }
    Ok(out)
}

fn strings(value: &Value) -> Result<Vec<String>, String> {
    let items = value.as_array().ok_or("must be an array of strings")?;
    items
        .iter()
        .map(|v| v.as_str().map(str::to_string).ok_or_else(|| "must be an array of strings".to_string()))
        .collect()
}

/// The stopwords of one allowlist (empty ones dropped: they would allow everything), noting what is not imported.
fn read_allowlist(list: &Table, notes: &mut Vec<String>) -> Result<Vec<String>, String> {
    let list_of = |key: &str| -> Result<Vec<String>, String> {
        get(list, key).map_or(Ok(Vec::new()), |v| strings(v).map_err(|e| format!("allowlist {key}: {e}")))
    };
    let stopwords: Vec<String> = list_of("stopwords")?.into_iter().filter(|s| !s.is_empty()).collect();
    let regexes = !list_of("regexes")?.is_empty();
    let paths = !list_of("paths")?.is_empty();
    let commits = !list_of("commits")?.is_empty();
    if regexes {
        notes.push("allowlist regexes are not supported (only stopwords are imported)".into());
    }
    if paths || commits {
        notes.push("allowlist paths and commits do not apply to streams: ignored".into());
    }
    let and = get(list, "condition")
        .and_then(Value::as_str)
        .is_some_and(|c| matches!(c.to_ascii_uppercase().as_str(), "AND" | "&&"));
    if and && (regexes || paths || commits) && !stopwords.is_empty() {
        notes.push("an AND allowlist's stopwords are dropped: its other conditions cannot be checked".into());
        return Ok(Vec::new());
    }
    Ok(stopwords)
}

/// `AWS_Access-Key` -> `aws-access-key`: lowercase, runs of anything but `[a-z0-9]` become one `-`, at most 64.
fn sanitize_id(raw: &str) -> String {
    let mut out = String::new();
    for c in raw.chars().map(|c| c.to_ascii_lowercase()) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    truncate_id(&out, 64)
}

fn truncate_id(id: &str, max: usize) -> String {
    id[..id.len().min(max)].trim_end_matches('-').to_string()
}

/// A regex converted to our syntax and limits.
struct Converted {
    pattern: String,
    hir: Hir,
    max_len: usize,
    multiline: bool,
    /// The cap put on unbounded repeats, if there were any.
    capped: Option<u32>,
}

/// Converts a gitleaks regex: Go syntax to ours, the secret group named `secret`, repeats bounded. `Err` says why
/// it cannot be used.
fn convert_regex(go: &str, secret_group: u32) -> Result<Converted, String> {
    let rust = go_to_rust_syntax(go)?;
    let mut tree = ast::parse::ParserBuilder::new()
        .build()
        .parse(&rust)
        .map_err(|e| format!("regex does not parse: {}", e.kind()))?;
    let groups = count_groups(&tree);
    let target = match secret_group {
        // gitleaks: with no secretGroup, a regex with exactly one group reports that group.
        0 if groups == 1 => Some(1),
        0 => None,
        n if n <= groups => Some(n),
        n => return Err(format!("secretGroup {n}, but the regex has {groups} capture groups")),
    };
    name_secret_group(&mut tree, target);
    let caps: &[u32] = if has_unbounded(&tree) { REPEAT_CAPS } else { &[0] };
    let mut reason = String::new();
    for (i, &cap) in caps.iter().enumerate() {
        let mut bounded = tree.clone();
        if cap > 0 {
            bound_repeats(&mut bounded, cap);
        }
        let mut pattern = String::new();
        ast::print::Printer::new().print(&bounded, &mut pattern).map_err(|_| "regex does not print".to_string())?;
        let hir = regex_syntax::ParserBuilder::new()
            .unicode(false)
            .utf8(false)
            .build()
            .parse(&pattern)
            .map_err(|e| format!("regex does not compile: {}", syntax_error(&e)))?;
        let Some(longest) = hir.properties().maximum_len() else {
            reason = "regex has no upper bound on its match length".into();
            continue;
        };
        let last = i + 1 == caps.len();
        if longest > MAX_MAX_LEN {
            reason = format!("regex can match {longest} bytes, more than Airlock's limit of {MAX_MAX_LEN}");
            continue;
        }
        if longest > TARGET_MAX_LEN && !last {
            continue;
        }
        let regex = compile_regex(&pattern)?;
        if regex.is_match(b"".as_slice()) {
            return Err("regex matches the empty string".into());
        }
        let multiline = can_match_newline(&hir);
        return Ok(Converted { pattern, hir, max_len: longest, multiline, capped: (cap > 0).then_some(cap) });
    }
    Err(reason)
}

/// The error without the pattern and the caret diagram `Display` draws.
fn syntax_error(e: &regex_syntax::Error) -> String {
    match e {
        regex_syntax::Error::Parse(p) => p.kind().to_string(),
        regex_syntax::Error::Translate(t) => t.kind().to_string(),
        other => other.to_string(),
    }
}

/// Rewrites Go RE2 syntax that the `regex` crate reads differently or not at all (see the module documentation).
fn go_to_rust_syntax(go: &str) -> Result<String, String> {
    let chars: Vec<char> = go.chars().collect();
    let mut out = String::with_capacity(go.len() + 8);
    let mut i = 0;
    let mut in_class = false;
    // Just after `[` or `[^`, where `]` is a literal.
    let mut class_start = false;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            let Some(&e) = chars.get(i + 1) else { return Err("regex ends with a backslash".into()) };
            i += 2;
            class_start = false;
            match e {
                'Q' if !in_class => {
                    let rest: String = chars[i..].iter().collect();
                    let (quoted, used) = match rest.find("\\E") {
                        Some(end) => (&rest[..end], rest[..end].chars().count() + 2),
                        None => (rest.as_str(), rest.chars().count()),
                    };
                    for q in quoted.chars() {
                        push_literal(&mut out, q);
                    }
                    i += used;
                }
                'C' if !in_class => out.push_str("(?s:.)"),
                '<' | '>' => out.push(e),
                'p' | 'P' => return Err("Unicode classes (\\p) are not supported: matching is ASCII".into()),
                '0'..='7' => {
                    // Go: `\0` and `\1`-`\7` followed by another octal digit start an octal escape of up to three
                    // digits; a lone `\1`-`\7` is a backreference, which RE2 does not have.
                    let mut value = e.to_digit(8).unwrap_or(0);
                    let mut digits = 1;
                    while digits < 3 && chars.get(i).is_some_and(|d| d.is_digit(8)) {
                        value = value * 8 + chars[i].to_digit(8).unwrap_or(0);
                        i += 1;
                        digits += 1;
                    }
                    if e != '0' && digits == 1 {
                        return Err("backreferences are not supported".into());
                    }
                    push_code_point(&mut out, value, in_class)?;
                }
                'x' => {
                    let (value, used) = hex_escape(&chars[i..])?;
                    i += used;
                    push_code_point(&mut out, value, in_class)?;
                }
                _ => {
                    out.push('\\');
                    out.push(e);
                }
            }
            continue;
        }
        if in_class {
            match c {
                ']' if !class_start => {
                    in_class = false;
                    out.push(']');
                }
                '[' => {
                    // `[:alpha:]` is an ASCII class in both; any other `[` is a literal in Go.
                    let rest: String = chars[i..].iter().take(12).collect();
                    match rest.strip_prefix("[:").and_then(|r| r.find(":]").map(|end| &r[..end])) {
                        Some(name)
                            if !name.is_empty()
                                && name.trim_start_matches('^').chars().all(|n| n.is_ascii_alphabetic()) =>
                        {
                            out.push_str("[:");
                            out.push_str(name);
                            out.push_str(":]");
                            i += name.chars().count() + 4;
                            class_start = false;
                            continue;
                        }
                        _ => out.push_str("\\["),
                    }
                }
                '&' | '~' | '-' if chars.get(i + 1) == Some(&c) => {
                    // Set operations here, two literals in Go.
                    out.push('\\');
                    out.push(c);
                    out.push('\\');
                    out.push(c);
                    i += 1;
                }
                '&' | '~' => {
                    out.push('\\');
                    out.push(c);
                }
                c if !c.is_ascii() => {
                    return Err("a character class holds non-ASCII characters (matching is over bytes)".into());
                }
                _ => out.push(c),
            }
            class_start = false;
            i += 1;
            continue;
        }
        match c {
            '[' => {
                in_class = true;
                class_start = true;
                out.push('[');
                if chars.get(i + 1) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
            }
            '{' => {
                if let Some(len) = go_repeat_len(&chars[i..]) {
                    out.extend(&chars[i..i + len]);
                    i += len;
                    continue;
                }
                out.push_str("\\{");
            }
            '}' => out.push_str("\\}"),
            c if !c.is_ascii() => push_literal(&mut out, c),
            _ => out.push(c),
        }
        i += 1;
    }
    if in_class {
        return Err("a character class is not closed".into());
    }
    Ok(out)
}

/// The length of a Go repeat operator (`{n}`, `{n,}`, `{n,m}`) starting at `s[0] == '{'`, if it is one.
fn go_repeat_len(s: &[char]) -> Option<usize> {
    let mut i = 1;
    let digits = |i: &mut usize| {
        let start = *i;
        while s.get(*i).is_some_and(char::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    if digits(&mut i) == 0 {
        return None;
    }
    if s.get(i) == Some(&',') {
        i += 1;
        digits(&mut i);
    }
    (s.get(i) == Some(&'}')).then_some(i + 1)
}

/// `\xHH` or `\x{H...}` (after the `x`): the code point and the characters used.
fn hex_escape(s: &[char]) -> Result<(u32, usize), String> {
    let bad = || "a malformed \\x escape".to_string();
    if s.first() == Some(&'{') {
        let end = s.iter().position(|&c| c == '}').ok_or_else(bad)?;
        let hex: String = s[1..end].iter().collect();
        Ok((u32::from_str_radix(&hex, 16).map_err(|_| bad())?, end + 1))
    } else {
        let hex: String = s.iter().take(2).collect();
        if hex.len() != 2 {
            return Err(bad());
        }
        Ok((u32::from_str_radix(&hex, 16).map_err(|_| bad())?, 2))
    }
}

/// A code point as Go means it: ASCII as itself, anything above as its UTF-8 bytes (outside a class only).
fn push_code_point(out: &mut String, value: u32, in_class: bool) -> Result<(), String> {
    let c = char::from_u32(value).ok_or("an escape names no character")?;
    if c.is_ascii() {
        out.push_str(&format!("\\x{value:02X}"));
        Ok(())
    } else if in_class {
        Err("a character class holds non-ASCII characters (matching is over bytes)".into())
    } else {
        push_literal(out, c);
        Ok(())
    }
}

/// A literal character: escaped if it is a metacharacter, as its UTF-8 bytes (one group) if it is not ASCII.
fn push_literal(out: &mut String, c: char) {
    if c.is_ascii() {
        out.push_str(&regex_syntax::escape(c.encode_utf8(&mut [0; 4])));
    } else {
        out.push_str("(?:");
        for b in c.encode_utf8(&mut [0; 4]).bytes() {
            out.push_str(&format!("\\x{b:02X}"));
        }
        out.push(')');
    }
}

fn count_groups(tree: &Ast) -> u32 {
    match tree {
        Ast::Group(g) => u32::from(!matches!(g.kind, GroupKind::NonCapturing(_))) + count_groups(&g.ast),
        Ast::Repetition(r) => count_groups(&r.ast),
        Ast::Alternation(a) => a.asts.iter().map(count_groups).sum(),
        Ast::Concat(c) => c.asts.iter().map(count_groups).sum(),
        _ => 0,
    }
}

/// Names capture group `target` (1-based) `secret`, and renames any other group called `secret` so that only the
/// target is read as the secret.
fn name_secret_group(tree: &mut Ast, target: Option<u32>) {
    match tree {
        Ast::Group(g) => {
            let span = g.span;
            match &mut g.kind {
                GroupKind::CaptureIndex(index) if Some(*index) == target => {
                    let name = ast::CaptureName { span, name: "secret".into(), index: *index };
                    g.kind = GroupKind::CaptureName { starts_with_p: true, name };
                }
                GroupKind::CaptureName { name, .. } if Some(name.index) == target => name.name = "secret".into(),
                GroupKind::CaptureName { name, .. } if name.name == "secret" => {
                    name.name = format!("gitleaks_group_{}", name.index);
                }
                _ => {}
            }
            name_secret_group(&mut g.ast, target);
        }
        Ast::Repetition(r) => name_secret_group(&mut r.ast, target),
        Ast::Alternation(a) => a.asts.iter_mut().for_each(|x| name_secret_group(x, target)),
        Ast::Concat(c) => c.asts.iter_mut().for_each(|x| name_secret_group(x, target)),
        _ => {}
    }
}

fn has_unbounded(tree: &Ast) -> bool {
    match tree {
        Ast::Repetition(r) => {
            matches!(
                r.op.kind,
                RepetitionKind::ZeroOrMore
                    | RepetitionKind::OneOrMore
                    | RepetitionKind::Range(RepetitionRange::AtLeast(_))
            ) || has_unbounded(&r.ast)
        }
        Ast::Group(g) => has_unbounded(&g.ast),
        Ast::Alternation(a) => a.asts.iter().any(has_unbounded),
        Ast::Concat(c) => c.asts.iter().any(has_unbounded),
        _ => false,
    }
}

/// `*` -> `{0,cap}`, `+` -> `{1,cap}`, `{n,}` -> `{n,max(n,cap)}`; laziness kept.
fn bound_repeats(tree: &mut Ast, cap: u32) {
    match tree {
        Ast::Repetition(r) => {
            let range = match r.op.kind {
                RepetitionKind::ZeroOrMore => Some(RepetitionRange::Bounded(0, cap)),
                RepetitionKind::OneOrMore => Some(RepetitionRange::Bounded(1, cap)),
                RepetitionKind::Range(RepetitionRange::AtLeast(n)) => Some(RepetitionRange::Bounded(n, n.max(cap))),
                _ => None,
            };
            if let Some(range) = range {
                r.op.kind = RepetitionKind::Range(range);
            }
            bound_repeats(&mut r.ast, cap);
        }
        Ast::Group(g) => bound_repeats(&mut g.ast, cap),
        Ast::Alternation(a) => a.asts.iter_mut().for_each(|x| bound_repeats(x, cap)),
        Ast::Concat(c) => c.asts.iter_mut().for_each(|x| bound_repeats(x, cap)),
        _ => {}
    }
}

/// Can a match contain `\n`? Then the rule must be multi-line, or the engine's per-line windows would cut it.
fn can_match_newline(h: &Hir) -> bool {
    match h.kind() {
        HirKind::Empty | HirKind::Look(_) => false,
        HirKind::Literal(hir::Literal(bytes)) => bytes.contains(&b'\n'),
        HirKind::Class(hir::Class::Bytes(c)) => c.ranges().iter().any(|r| r.start() <= b'\n' && b'\n' <= r.end()),
        HirKind::Class(hir::Class::Unicode(c)) => c.ranges().iter().any(|r| r.start() <= '\n' && '\n' <= r.end()),
        HirKind::Repetition(r) => r.max != Some(0) && can_match_newline(&r.sub),
        HirKind::Capture(c) => can_match_newline(&c.sub),
        HirKind::Concat(v) | HirKind::Alternation(v) => v.iter().any(can_match_newline),
    }
}

/// The literals every match starts with, lowercased, if there is a small set of them at least
/// [`MIN_DERIVED_KEYWORD`] bytes long (`ghp_` for `ghp_[0-9A-Za-z]{36}`).
fn literal_prefixes(h: &Hir) -> Option<Vec<String>> {
    let seq = Extractor::new().kind(ExtractKind::Prefix).extract(h);
    let mut out: Vec<String> = Vec::new();
    for lit in seq.literals()? {
        let bytes = lit.as_bytes();
        if bytes.len() < MIN_DERIVED_KEYWORD || !bytes.is_ascii() {
            return None;
        }
        let k = String::from_utf8(bytes.to_ascii_lowercase()).ok()?;
        if !out.contains(&k) {
            out.push(k);
        }
    }
    (!out.is_empty() && out.len() <= MAX_DERIVED_KEYWORDS).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convert(go: &str) -> String {
        go_to_rust_syntax(go).unwrap_or_else(|e| panic!("{go}: {e}"))
    }

    #[test]
    fn go_only_syntax_is_rewritten() {
        assert_eq!(convert(r"\Qa.b*\Ec"), r"a\.b\*c");
        assert_eq!(convert(r"\Q(unterminated"), r"\(unterminated");
        assert_eq!(convert(r"\101\0"), r"\x41\x00");
        assert_eq!(convert(r"a\<b\>"), "a<b>");
        assert_eq!(convert(r"x{2}y{1,}z{3,4}"), r"x{2}y{1,}z{3,4}");
        assert_eq!(convert(r"\${name}"), r"\$\{name\}");
        assert_eq!(convert(r"a{,3}"), r"a\{,3\}");
        assert_eq!(convert(r"[[a-z]"), r"[\[a-z]");
        assert_eq!(convert(r"[[:alpha:]_]"), r"[[:alpha:]_]");
        assert_eq!(convert(r"[a&&b~~c--d]"), r"[a\&\&b\~\~c\-\-d]");
        assert_eq!(convert(r"[]a]"), r"[]a]");
        assert_eq!(convert(r"[^]a]"), r"[^]a]");
        assert_eq!(convert("é+"), r"(?:\xC3\xA9)+");
        assert_eq!(convert(r"\xe9\x{41}"), r"(?:\xC3\xA9)\x41");
        assert_eq!(convert(r"\C"), "(?s:.)");
    }

    #[test]
    fn go_syntax_we_cannot_express_is_refused() {
        for bad in [r"\pL+", r"\p{Greek}", r"(a)\1", "[é]", r"[\xe9]", r"[abc", "abc\\"] {
            assert!(go_to_rust_syntax(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn converted_regexes_compile_and_mean_what_go_meant() {
        for (go, hay, expect) in [
            (r"\Qghp_\E[0-9a-z]{4}", "ghp_ab12", true),
            (r"key\<", "key<", true),
            (r"\${token}", "${token}", true),
            (r"[[a]+", "[a[", true),
            (r"caf\xe9", "café", true),
        ] {
            let rust = convert(go);
            let re = compile_regex(&rust).unwrap_or_else(|e| panic!("{go} -> {rust}: {e}"));
            assert_eq!(re.is_match(hay.as_bytes()), expect, "{go} -> {rust} on {hay}");
        }
    }

    #[test]
    fn secret_groups_are_named_and_repeats_bounded() {
        let c = convert_regex(r"(?i)(key)\s*=\s*([a-z0-9]+)", 2).unwrap();
        assert_eq!(c.pattern, r"(?i)(key)\s{0,256}=\s{0,256}(?P<secret>[a-z0-9]{1,256})");
        assert_eq!(c.capped, Some(256));
        assert_eq!(c.max_len, 3 + 256 + 1 + 256 + 256);
        let c = convert_regex(r"tok_([a-z]{8})", 0).unwrap();
        assert_eq!(c.pattern, r"tok_(?P<secret>[a-z]{8})", "a lone group is the secret, as in gitleaks");
        assert_eq!(c.capped, None);
        let c = convert_regex(r"(a)(?P<secret>b)", 0).unwrap();
        assert_eq!(c.pattern, r"(a)(?P<gitleaks_group_2>b)", "two groups and no secretGroup: the whole match");
        assert!(convert_regex(r"(a)", 2).is_err());
        assert!(convert_regex(r"a*", 0).is_err(), "matches the empty string");
        let nested = convert_regex(r"(?:x[a-z]+)+", 0).unwrap();
        assert!(nested.max_len <= TARGET_MAX_LEN && nested.capped.is_some_and(|c| c < 256));
    }

    #[test]
    fn literal_prefixes_become_keywords() {
        let hir = |p: &str| regex_syntax::ParserBuilder::new().unicode(false).utf8(false).build().parse(p).unwrap();
        assert_eq!(literal_prefixes(&hir(r"\bghp_[0-9a-z]{36}")), Some(vec!["ghp_".to_string()]));
        assert_eq!(literal_prefixes(&hir(r"(?i)(?:xoxb|xoxp)-[0-9]{10}")), Some(vec!["xoxb-".into(), "xoxp-".into()]));
        assert_eq!(literal_prefixes(&hir(r"[a-z]{3}_x")), None);
        assert_eq!(literal_prefixes(&hir(r"ab[0-9a-z]")), None, "too short to be a useful keyword");
    }

    #[test]
    fn ids_are_sanitized() {
        assert_eq!(sanitize_id("AWS_Access-Key"), "aws-access-key");
        assert_eq!(sanitize_id("  --Weird..ID!!  "), "weird-id");
        assert_eq!(sanitize_id("___"), "");
        assert_eq!(sanitize_id(&"a".repeat(70)).len(), 64);
    }
}
