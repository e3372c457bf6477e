//! `policy check` findings: configurations that load but are probably wrong.
//!
//! Each lint names a specific mistake seen in real egress and sandbox configs: a permit that can never fire
//! (so the author believes something is allowed, or denied, that is not), a wildcard allow in production, a
//! secret that may go anywhere, a tool with no resource limits. Under strict profiles (`prod`, `test`) most
//! of them are errors and the config is refused.

use cedar_policy::{ActionConstraint, Effect, PrincipalConstraint, ResourceConstraint};

use crate::compile::Compiled;
use crate::error::{Diagnostic, Severity, SourceText};
use crate::model::{FsPattern, Model, is_broad_wildcard};
use crate::normalize::{HostName, HostPatternKind};
use crate::refs;

/// Runs every lint. Severity follows the profile: strict profiles make the lints marked strict errors.
pub fn lint(model: &Model, compiled: &Compiled, source: &SourceText) -> Vec<Diagnostic> {
    let strict = model.settings.lints_are_errors;
    let mut out = Vec::new();
    let mut wildcards = Vec::new();
    let mut push = |strict_lint: bool, code: &'static str, span: Option<std::ops::Range<usize>>, m: String| {
        let sev = if strict && strict_lint { Severity::Error } else { Severity::Warning };
        out.push(source.diag(sev, code, span, m));
    };

    for tool in model.tools.values() {
        let t = &tool.id;
        for rule in &tool.network {
            for h in &rule.hosts {
                match &h.value.host {
                    HostPatternKind::Exact(_) => {}
                    _ if is_broad_wildcard(&h.value) => push(
                        true,
                        "wildcard-host",
                        Some(h.span.clone()),
                        format!("tool {t} allows {}: that is every host or a whole top-level domain", h.value),
                    ),
                    // Subdomain wildcards are a convenience in development and an error in prod only, where the
                    // exact hosts should be known.
                    _ => {
                        let sev =
                            if model.profile == crate::Profile::Prod { Severity::Error } else { Severity::Warning };
                        wildcards.push(source.diag(
                            sev,
                            "wildcard-host",
                            Some(h.span.clone()),
                            format!("tool {t} allows the wildcard {}: in prod, list the exact hosts", h.value),
                        ));
                    }
                }
                if let HostPatternKind::Exact(name) = &h.value.host {
                    if model.block_private && is_private_literal(name) {
                        push(
                            true,
                            "unreachable-permit",
                            Some(h.span.clone()),
                            format!("tool {t} allows {}, but network.block_private forbids private addresses", h.value),
                        );
                    }
                    if let Some(d) = model
                        .network_deny
                        .iter()
                        .find(|d| d.value.matches(name, 443, true) || d.value.host == h.value.host)
                    {
                        push(
                            true,
                            "unreachable-permit",
                            Some(h.span.clone()),
                            format!("tool {t} allows {}, but network.deny entry {} forbids it", h.value, d.value),
                        );
                    }
                }
            }
        }
        if tool.declares_no_limits {
            push(
                true,
                "tool-without-limits",
                Some(tool.span.clone()),
                format!(
                    "tool {t} sets no limits and [limits] is empty: memory, cpu_seconds, wall_seconds, pids, open_files, output_bytes"
                ),
            );
        }
        if !model.agents.values().any(|a| a.tools.allows(t)) {
            push(
                true,
                "unreachable-permit",
                Some(tool.span.clone()),
                format!("no agent may use tool {t}, so none of its permits can ever apply"),
            );
        }
        for (verb, list) in [("read", &tool.fs_read), ("write", &tool.fs_write), ("exec", &tool.fs_exec)] {
            for a in &list.allow {
                let FsPattern::Subtree(allowed) = &a.value else { continue };
                // Only literal denies: whether a glob covers a whole subtree is not decidable from one path.
                let deny = tool
                    .fs_deny
                    .iter()
                    .chain(model.fs_deny.iter())
                    .find(|d| matches!(d.value, FsPattern::Subtree(_)) && d.value.covers(allowed));
                if let Some(d) = deny {
                    push(
                        true,
                        "unreachable-permit",
                        Some(a.span.clone()),
                        format!(
                            "tool {t} may {verb} {allowed}, but the deny entry {} covers all of it",
                            d.value.text()
                        ),
                    );
                }
            }
        }
        for p in &tool.exec_allow {
            match &p.value.resolved {
                None => push(
                    false,
                    "program-not-found",
                    Some(p.span.clone()),
                    format!("tool {t} allows program {:?}, which is not found on this machine", p.value.written),
                ),
                Some(r) => {
                    if let Some(d) = tool
                        .exec_deny
                        .iter()
                        .chain(model.exec_deny.iter())
                        .find(|d| d.value.resolved.as_deref() == Some(r) || d.value.name == p.value.name)
                    {
                        push(
                            true,
                            "unreachable-permit",
                            Some(p.span.clone()),
                            format!(
                                "tool {t} allows program {r}, but the exec deny entry {:?} forbids it",
                                d.value.written
                            ),
                        );
                    }
                }
            }
        }
        for s in &tool.secrets {
            let Some(meta) = model.secrets.get(&s.value) else { continue };
            let reachable = meta.hosts.iter().any(|pin| {
                tool.network.iter().flat_map(|r| r.hosts.iter()).any(|h| match (&h.value.host, &pin.value.host) {
                    (HostPatternKind::Exact(n), _) => pin.value.matches(n, 443, true) || pin.value.matches(n, 80, true),
                    (_, HostPatternKind::Exact(n)) => h.value.matches(n, 443, true) || h.value.matches(n, 80, true),
                    (a, b) => a == b,
                })
            });
            if !meta.hosts.is_empty() && !reachable {
                push(
                    true,
                    "unreachable-permit",
                    Some(s.span.clone()),
                    format!(
                        "tool {t} uses secret {}, but none of the secret's hosts is in the tool's network rules",
                        s.value
                    ),
                );
            }
        }
    }

    for s in model.secrets.values() {
        if s.hosts.is_empty() {
            push(
                true,
                "secret-unpinned",
                Some(s.span.clone()),
                format!("secret {} is pinned to no host, so it can never be sent: add hosts = [\"...\"]", s.name),
            );
        }
    }

    for sink in model.file.audit.sinks.iter().flatten() {
        if let Some(t) = &sink.token
            && refs::scan(t.get_ref()).map(|r| r.is_empty()).unwrap_or(false)
        {
            push(
                true,
                "literal-credential",
                Some(t.span()),
                "the webhook token is written literally: use ${secret:NAME} or ${env:VAR}".to_string(),
            );
        }
    }

    out.append(&mut wildcards);

    // A user forbid with an empty scope and no conditions forbids everything, so every permit is dead.
    for p in compiled.all.policies() {
        let id = p.id().to_string();
        let user = compiled.policy_origin(&id).is_some_and(|o| o.file != source.path);
        if user
            && p.effect() == Effect::Forbid
            && !p.has_non_scope_constraint()
            && matches!(p.principal_constraint(), PrincipalConstraint::Any)
            && matches!(p.action_constraint(), ActionConstraint::Any)
            && matches!(p.resource_constraint(), ResourceConstraint::Any)
        {
            let o = compiled.policy_origin(&id).expect("checked");
            out.push(Diagnostic {
                severity: if strict { Severity::Error } else { Severity::Warning },
                code: "unreachable-permit",
                file: o.file.clone(),
                line: o.line,
                column: o.column,
                message: format!("policy {id} forbids everything unconditionally, so no permit can ever apply"),
            });
        }
    }
    out.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    out
}

fn is_private_literal(h: &HostName) -> bool {
    match h {
        HostName::Ipv4(ip) => crate::engine::is_private((*ip).into()),
        HostName::Ipv6(ip) => crate::engine::is_private((*ip).into()),
        HostName::Domain(d) => d == "localhost" || d.ends_with(".localhost"),
    }
}
