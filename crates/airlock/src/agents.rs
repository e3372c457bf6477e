//! Agent identities for the daemon (`airlock serve`), and `airlock agent add|rm|list|rotate-token`.
//!
//! What this guards against: another local user, or a compromised agent, using the daemon as someone else. Every
//! API call and proxy connection presents a bearer token; the token names one agent, and that agent may act only
//! within its own subtree (itself and its sub-agents) and only as far as its role allows.
//!
//! The store, `$AIRLOCK_HOME/agents.json`, holds each agent's name, role, parent and the SHA-256 of its token, never
//! the token: a token is 32 random bytes, so a plain hash cannot be reversed or guessed, and a copy of the file does
//! not let anyone in. A token is shown once, when it is made (`add`, `rotate-token`).
//!
//! ```json
//! {"version":1,"agents":[{"name":"coder","role":"agent","parent":null,"token_sha256":"<64 hex>",
//!   "created_ms":1700000000000,"token_rotated_ms":null}]}
//! ```
//!
//! The file is 0600 and written atomically (temp file, fsync, rename, directory fsync) under the vault's write lock
//! (`vault.lock`), so it never mixes with a concurrent writer and survives `kill -9`. A file that other users can
//! read or write, that another user owns, that is a symbolic link, or that does not parse is refused (exit 8) and
//! never overwritten. A missing file is an empty store.
//!
//! Entry points: [`AgentStore::load`], [`AgentStore::authenticate`] (constant-time against every stored hash),
//! [`AgentStore::can_act_for`], [`Role::allows`], and [`run`] for the CLI.

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use airlock_audit::event::activity;
use base64::Engine;
use serde::{Deserialize, Serialize};
use subtle::{ConditionallySelectable, ConstantTimeEq};
use zeroize::Zeroizing;

use crate::CliError;
use crate::audit::ChangeLog;
use crate::cli::{AgentArgs, AgentCommand, AgentRoleArg};
use crate::commands::Ctx;

/// The store's file name in `$AIRLOCK_HOME`.
pub(crate) const FILE: &str = "agents.json";
const VERSION: u32 = 1;
/// Every token starts with this, so that scanners (and people) can tell what it is.
pub(crate) const TOKEN_PREFIX: &str = "alk_";
const TOKEN_BYTES: usize = 32;
const MAX_NAME: usize = 64;
/// A store this large is not one `airlock agent` wrote.
const MAX_FILE_BYTES: u64 = 16 << 20;
const LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// What an agent may do at all; which objects it may touch is [`AgentStore::can_act_for`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Role {
    /// Everything, including secrets, lockdown and other agents.
    Admin,
    /// Runs, capabilities, guard, redact and policy explain, within its own subtree.
    Agent,
    /// Read-only: the audit log, health, metrics and listings.
    Auditor,
}

/// A kind of daemon operation, for [`Role::allows`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Permission {
    /// Secrets, lockdown, agents: admins only.
    Manage,
    /// Start and control runs, call capabilities, guard, redact, policy explain (in the caller's subtree).
    Act,
    /// Read the audit log and list everything.
    Audit,
}

impl Role {
    #[allow(dead_code)] // For parsing roles from the API; the CLI parses them with clap.
    pub(crate) const ALL: [Role; 3] = [Role::Admin, Role::Agent, Role::Auditor];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Agent => "agent",
            Role::Auditor => "auditor",
        }
    }

    #[allow(dead_code)] // For parsing roles from the API; the CLI parses them with clap.
    pub(crate) fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Whether an agent of this role may have a sub-agent of role `child`: never one that could do more than it.
    /// An admin may create any role, an agent an agent or an auditor, an auditor only an auditor.
    pub(crate) fn may_create(self, child: Role) -> bool {
        match self {
            Role::Admin => true,
            Role::Agent => matches!(child, Role::Agent | Role::Auditor),
            Role::Auditor => child == Role::Auditor,
        }
    }

    /// Whether this role may perform operations of kind `p` at all. (Health and metrics need only a valid token.)
    pub(crate) fn allows(self, p: Permission) -> bool {
        match self {
            Role::Admin => true,
            Role::Agent => p == Permission::Act,
            Role::Auditor => p == Permission::Audit,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<AgentRoleArg> for Role {
    fn from(r: AgentRoleArg) -> Role {
        match r {
            AgentRoleArg::Admin => Role::Admin,
            AgentRoleArg::Agent => Role::Agent,
            AgentRoleArg::Auditor => Role::Auditor,
        }
    }
}

/// Who a token belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Agent {
    pub(crate) name: String,
    pub(crate) role: Role,
    pub(crate) parent: Option<String>,
}

/// What `airlock agent list` shows: never a token or a hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct AgentInfo {
    pub(crate) name: String,
    pub(crate) role: Role,
    pub(crate) parent: Option<String>,
    pub(crate) created_ms: i64,
    pub(crate) token_rotated_ms: Option<i64>,
}

/// A bearer token, just made. Shown once; wiped from memory on drop; never printed by `Debug`.
pub(crate) struct Token(Zeroizing<String>);

impl Token {
    fn generate() -> Token {
        let raw = Zeroizing::new(airlock_crypto::random::bytes::<TOKEN_BYTES>());
        let mut s = Zeroizing::new(String::with_capacity(TOKEN_PREFIX.len() + 44));
        s.push_str(TOKEN_PREFIX);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(raw.as_slice(), &mut s);
        Token(s)
    }

    /// The token's text, to print once.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// The hash a token is stored and compared as.
fn token_hash(token: &str) -> [u8; 32] {
    airlock_crypto::kdf::sha256(token.as_bytes())
}

/// One stored agent.
struct Entry {
    agent: Agent,
    token_sha256: [u8; 32],
    created_ms: i64,
    token_rotated_ms: Option<i64>,
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("agent", &self.agent)
            .field("token_sha256", &"<redacted>")
            .field("created_ms", &self.created_ms)
            .field("token_rotated_ms", &self.token_rotated_ms)
            .finish()
    }
}

/// The file's shape. Unknown fields are errors: a field this version does not understand could be one that
/// restricts an agent, and silently dropping it on the next write would widen what the agent may do.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OnDisk {
    version: u32,
    agents: Vec<OnDiskAgent>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OnDiskAgent {
    name: String,
    role: Role,
    parent: Option<String>,
    token_sha256: String,
    created_ms: i64,
    token_rotated_ms: Option<i64>,
}

/// The agents of one installation.
pub(crate) struct AgentStore {
    path: PathBuf,
    entries: Vec<Entry>,
}

impl fmt::Debug for AgentStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentStore").field("path", &self.path).field("entries", &self.entries).finish()
    }
}

/// Checks an agent name: 1 to 64 of `a-z 0-9 - _ .`, starting with a letter or digit. That is the policy's agent id
/// alphabet (airlock.toml `[agents.NAME]`) in lower case only, so every identity can be named in policy and no two
/// differ only in case. The message never repeats the name: a token pasted as a name must not be echoed.
pub(crate) fn check_name(name: &str) -> Result<(), CliError> {
    let bad = |reason: &str| {
        Err(CliError::input(format!("invalid agent name ({} characters): {reason}", name.chars().count())))
    };
    if name.is_empty() {
        return bad("must not be empty");
    }
    if name.len() > MAX_NAME {
        return bad(&format!("longer than {MAX_NAME} characters"));
    }
    let b = name.as_bytes();
    if !(b[0].is_ascii_lowercase() || b[0].is_ascii_digit()) {
        return bad("must start with a lower-case letter or a digit");
    }
    if !b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'-' | b'_' | b'.')) {
        return bad("may contain only a-z, 0-9, '-', '_' and '.'");
    }
    if name.starts_with(TOKEN_PREFIX) {
        return bad("this looks like an agent token, not a name; tokens are never passed as arguments");
    }
    if name.len() >= 32 && b.iter().all(u8::is_ascii_hexdigit) && b.iter().any(u8::is_ascii_digit) {
        return bad("this looks like a hash or a credential (a long hex string), not a name");
    }
    if let Some(p) = airlock_vault::formats::detect(b)
        && name.len() >= p.len.0
    {
        return bad(&format!("this looks like a {} credential, not a name", p.name));
    }
    Ok(())
}

fn not_found(message: String) -> CliError {
    CliError { code: 4, message }
}

fn conflict(message: String) -> CliError {
    CliError { code: 5, message }
}

pub(crate) fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// Parses and checks the file's text. Everything the store relies on is checked here, so that a hand-edited file
/// cannot smuggle in a cycle, a dangling parent, a sub-agent above its parent's role, or a malformed hash.
fn parse(text: &str) -> Result<Vec<Entry>, String> {
    let doc: OnDisk = serde_json::from_str(text).map_err(|e| format!("not a valid agents file: {e}"))?;
    if doc.version != VERSION {
        return Err(format!("unsupported version {} (this Airlock reads version {VERSION})", doc.version));
    }
    let mut entries = Vec::with_capacity(doc.agents.len());
    for (i, a) in doc.agents.into_iter().enumerate() {
        let at = format!("agents[{i}]");
        check_name(&a.name).map_err(|e| format!("{at}: {}", e.message))?;
        if let Some(p) = &a.parent {
            check_name(p).map_err(|e| format!("{at} ({}): parent: {}", a.name, e.message))?;
        }
        let h = a.token_sha256.as_bytes();
        if h.len() != 64 || !h.iter().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c)) {
            return Err(format!("{at} ({}): token_sha256 must be 64 lower-case hex digits", a.name));
        }
        let mut token_sha256 = [0u8; 32];
        hex::decode_to_slice(h, &mut token_sha256).map_err(|e| format!("{at} ({}): token_sha256: {e}", a.name))?;
        entries.push(Entry {
            agent: Agent { name: a.name, role: a.role, parent: a.parent },
            token_sha256,
            created_ms: a.created_ms,
            token_rotated_ms: a.token_rotated_ms,
        });
    }
    check_entries(&entries)?;
    Ok(entries)
}

/// The store's invariants: unique names and hashes, parents that exist, no cycles, no role above its parent's.
fn check_entries(entries: &[Entry]) -> Result<(), String> {
    let mut names = HashSet::new();
    let mut hashes = HashSet::new();
    for e in entries {
        if !names.insert(e.agent.name.as_str()) {
            return Err(format!("agent {} is listed twice", e.agent.name));
        }
        if !hashes.insert(e.token_sha256) {
            return Err(format!("agent {} has the same token hash as another agent", e.agent.name));
        }
    }
    let find = |n: &str| entries.iter().find(|e| e.agent.name == n);
    for e in entries {
        let Some(parent) = &e.agent.parent else { continue };
        let Some(p) = find(parent) else {
            return Err(format!("agent {} has parent {parent}, which is not in the file", e.agent.name));
        };
        if !p.agent.role.may_create(e.agent.role) {
            return Err(format!(
                "agent {} has role {}, above its parent {parent}'s role {}",
                e.agent.name, e.agent.role, p.agent.role
            ));
        }
        // Walk up: a chain longer than the number of agents loops.
        let mut cur = Some(parent.as_str());
        let mut steps = 0;
        while let Some(c) = cur {
            steps += 1;
            if c == e.agent.name || steps > entries.len() {
                return Err(format!("agent {} is its own ancestor (the parent chain loops)", e.agent.name));
            }
            cur = find(c).and_then(|x| x.agent.parent.as_deref());
        }
    }
    Ok(())
}

impl AgentStore {
    /// Where the store of `home` lives.
    pub(crate) fn file_path(home: &Path) -> PathBuf {
        home.join(FILE)
    }

    #[cfg(test)]
    fn empty(home: &Path) -> AgentStore {
        AgentStore { path: Self::file_path(home), entries: Vec::new() }
    }

    /// Reads `$AIRLOCK_HOME/agents.json`; a missing file is an empty store. Refuses (exit 8) a file that other users
    /// can read or write, that another user owns, that is not a regular file (a symbolic link included), that sits
    /// in a home others can write to, or that does not parse.
    pub(crate) fn load(home: &Path) -> Result<AgentStore, CliError> {
        use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
        let path = Self::file_path(home);
        let shown = path.display();
        let file = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(AgentStore { path, entries: Vec::new() });
            }
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(CliError::input(format!("{shown} is a symbolic link; refusing to follow it")));
            }
            Err(e) => return Err(CliError { code: 1, message: format!("open {shown}: {e}") }),
        };
        airlock_vault::file::check_home(home)?;
        let meta = file.metadata().map_err(|e| CliError { code: 1, message: format!("stat {shown}: {e}") })?;
        if !meta.is_file() {
            return Err(CliError::input(format!("{shown} is not a regular file; refusing it")));
        }
        let mode = meta.mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(airlock_vault::VaultError::InsecurePermissions {
                path,
                mode,
                expected: "0600: only its owner may read or write it (chmod 600)",
            }
            .into());
        }
        let me = nix::unistd::geteuid().as_raw();
        if meta.uid() != me {
            return Err(CliError::input(format!(
                "{shown} is owned by uid {}, not by this user (uid {me}); refusing it",
                meta.uid()
            )));
        }
        if meta.len() > MAX_FILE_BYTES {
            return Err(CliError::input(format!("{shown} is {} bytes, too large to be an agents file", meta.len())));
        }
        let mut text = String::new();
        (&file)
            .take(MAX_FILE_BYTES)
            .read_to_string(&mut text)
            .map_err(|e| CliError::input(format!("read {shown}: {e}")))?;
        let entries =
            parse(&text).map_err(|m| CliError::input(format!("{shown}: {m}; the file was left unchanged")))?;
        Ok(AgentStore { path, entries })
    }

    /// Loads the store under the write lock, applies `change`, and writes the result (only if `change` succeeds).
    pub(crate) fn update<T>(
        home: &Path,
        change: impl FnOnce(&mut AgentStore) -> Result<T, CliError>,
    ) -> Result<T, CliError> {
        let _lock = airlock_vault::file::WriteLock::acquire(home, LOCK_TIMEOUT).map_err(|e| match e {
            airlock_vault::VaultError::Busy { waited } => CliError {
                code: 7,
                message: format!("{FILE} is busy: another Airlock process held the write lock for {waited:?}"),
            },
            e => e.into(),
        })?;
        // A writer killed mid-write leaves a temp file; the lock makes sure it is not one being written now.
        airlock_vault::file::remove_stale_temps(home);
        let mut store = AgentStore::load(home)?;
        let out = change(&mut store)?;
        store.save()?;
        Ok(out)
    }

    fn save(&self) -> Result<(), CliError> {
        let doc = OnDisk {
            version: VERSION,
            agents: self
                .entries
                .iter()
                .map(|e| OnDiskAgent {
                    name: e.agent.name.clone(),
                    role: e.agent.role,
                    parent: e.agent.parent.clone(),
                    token_sha256: hex::encode(e.token_sha256),
                    created_ms: e.created_ms,
                    token_rotated_ms: e.token_rotated_ms,
                })
                .collect(),
        };
        let mut text = serde_json::to_string_pretty(&doc).expect("serialisable");
        text.push('\n');
        airlock_vault::file::write_atomic(&self.path, text.as_bytes())?;
        Ok(())
    }

    /// The agent `bearer` belongs to. The presented token's SHA-256 is compared with every stored hash in constant
    /// time, with no early exit, and only then is the match (if any) picked: how long this takes says nothing about
    /// which agent, if any, a guess came close to.
    pub(crate) fn authenticate(&self, bearer: &str) -> Option<&Agent> {
        let presented = Zeroizing::new(token_hash(bearer));
        let mut found = subtle::Choice::from(0);
        let mut index = 0u64;
        for (i, e) in self.entries.iter().enumerate() {
            let hit = e.token_sha256.ct_eq(&*presented);
            index.conditional_assign(&(i as u64), hit);
            found |= hit;
        }
        if bool::from(found) { self.entries.get(index as usize).map(|e| &e.agent) } else { None }
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Agent> {
        self.entry(name).map(|e| &e.agent)
    }

    fn entry(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.agent.name == name)
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The direct sub-agents of `name`, in the order they were added.
    pub(crate) fn children(&self, name: &str) -> Vec<String> {
        self.entries.iter().filter(|e| e.agent.parent.as_deref() == Some(name)).map(|e| e.agent.name.clone()).collect()
    }

    /// Every agent below `name` (children, their children, ...), nearest first; not `name` itself.
    pub(crate) fn descendants(&self, name: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut seen: HashSet<String> = HashSet::from([name.to_string()]);
        let mut queue = VecDeque::from([name.to_string()]);
        while let Some(n) = queue.pop_front() {
            for c in self.children(&n) {
                if seen.insert(c.clone()) {
                    out.push(c.clone());
                    queue.push_back(c);
                }
            }
        }
        out
    }

    /// Whether `actor` may act on what belongs to `subject` (its runs, its sub-agents): `subject` is `actor` or one
    /// of its descendants. An admin may act for anyone. An actor not in the store may act for no one.
    pub(crate) fn can_act_for(&self, actor: &str, subject: &str) -> bool {
        let Some(a) = self.get(actor) else { return false };
        if a.role == Role::Admin || subject == actor {
            return true;
        }
        // Walk up from the subject; the store has no cycles, and the bound keeps it so.
        let mut cur = self.get(subject).and_then(|s| s.parent.as_deref());
        for _ in 0..self.entries.len() {
            match cur {
                Some(p) if p == actor => return true,
                Some(p) => cur = self.get(p).and_then(|x| x.parent.as_deref()),
                None => return false,
            }
        }
        false
    }

    /// Checks that `add` would succeed (name, parent, role, uniqueness), without changing anything.
    pub(crate) fn check_add(&self, name: &str, role: Role, parent: Option<&str>) -> Result<(), CliError> {
        check_name(name)?;
        if let Some(p) = parent {
            check_name(p).map_err(|e| CliError::input(format!("--parent: {}", e.message)))?;
        }
        if self.get(name).is_some() {
            return Err(conflict(format!("agent {name} already exists")));
        }
        if let Some(p) = parent {
            let Some(pa) = self.get(p) else {
                return Err(not_found(format!("no agent named {p} (the --parent); see `airlock agent list`")));
            };
            if !pa.role.may_create(role) {
                return Err(CliError::input(format!(
                    "a sub-agent cannot exceed its parent: {p} has role {}, so {name} cannot have role {role}",
                    pa.role
                )));
            }
        }
        Ok(())
    }

    /// Adds an agent and returns its token (the only time it exists outside the caller's memory is when printed).
    pub(crate) fn add(&mut self, name: &str, role: Role, parent: Option<&str>, now_ms: i64) -> Result<Token, CliError> {
        self.check_add(name, role, parent)?;
        let token = Token::generate();
        self.entries.push(Entry {
            agent: Agent { name: name.to_string(), role, parent: parent.map(str::to_string) },
            token_sha256: token_hash(token.expose()),
            created_ms: now_ms,
            token_rotated_ms: None,
        });
        Ok(token)
    }

    /// Removes `name` and returns what was removed. An agent with sub-agents is removed only with `cascade`, and
    /// then with its whole subtree (its name first).
    pub(crate) fn remove(&mut self, name: &str, cascade: bool) -> Result<Vec<String>, CliError> {
        let removed = self.check_remove(name, cascade)?;
        self.entries.retain(|e| !removed.contains(&e.agent.name));
        Ok(removed)
    }

    /// What `remove` would remove, or why it would refuse, without changing anything.
    pub(crate) fn check_remove(&self, name: &str, cascade: bool) -> Result<Vec<String>, CliError> {
        check_name(name)?;
        if self.get(name).is_none() {
            return Err(not_found(format!("no agent named {name}")));
        }
        let below = self.descendants(name);
        if !below.is_empty() && !cascade {
            return Err(conflict(format!(
                "agent {name} has sub-agents ({}); remove them first, or pass --cascade to remove them too",
                self.children(name).join(", ")
            )));
        }
        let mut removed = vec![name.to_string()];
        removed.extend(below);
        Ok(removed)
    }

    /// Gives `name` a new token; the old one stops matching at once.
    pub(crate) fn rotate(&mut self, name: &str, now_ms: i64) -> Result<Token, CliError> {
        check_name(name)?;
        let token = Token::generate();
        let e = self
            .entries
            .iter_mut()
            .find(|e| e.agent.name == name)
            .ok_or_else(|| not_found(format!("no agent named {name}")))?;
        e.token_sha256 = token_hash(token.expose());
        e.token_rotated_ms = Some(now_ms);
        Ok(token)
    }

    /// Every agent, in the order they were added: never a token or a hash.
    pub(crate) fn list(&self) -> Vec<AgentInfo> {
        self.entries
            .iter()
            .map(|e| AgentInfo {
                name: e.agent.name.clone(),
                role: e.agent.role,
                parent: e.agent.parent.clone(),
                created_ms: e.created_ms,
                token_rotated_ms: e.token_rotated_ms,
            })
            .collect()
    }
}

/// `airlock agent …`.
pub(crate) fn run(ctx: &Ctx, a: AgentArgs) -> Result<(), CliError> {
    match a.command {
        AgentCommand::Add { name, role, parent } => {
            let role = Role::from(role);
            // Refuse what cannot work before unlocking anything; `update` checks again under the lock.
            AgentStore::load(&ctx.home)?.check_add(&name, role, parent.as_deref())?;
            let audit = change_log(ctx)?;
            let now = now_ms();
            let token = AgentStore::update(&ctx.home, |s| s.add(&name, role, parent.as_deref(), now))?;
            let under = parent.as_ref().map(|p| format!(", sub-agent of {p}")).unwrap_or_default();
            audit.record(activity::CREATE, "agent", &name, format!("agent {name} added (role {role}{under})"))?;
            print_token(ctx, &Agent { name, role, parent }, &token, "Added");
        }
        AgentCommand::Rm { name, cascade } => {
            // Refuse what cannot work before unlocking anything; `update` checks again under the lock.
            AgentStore::load(&ctx.home)?.check_remove(&name, cascade)?;
            let audit = change_log(ctx)?;
            let removed = AgentStore::update(&ctx.home, |s| s.remove(&name, cascade))?;
            let message = match &removed[1..] {
                [] => format!("agent {name} removed"),
                below => format!("agent {name} removed with its sub-agents {}", below.join(", ")),
            };
            audit.record(activity::DELETE, "agent", &name, message)?;
            ctx.print(&serde_json::json!({ "removed": removed }), || {
                format!("Removed {}; {} token(s) no longer work\n", removed.join(", "), removed.len())
            });
        }
        AgentCommand::List => {
            let list = AgentStore::load(&ctx.home)?.list();
            ctx.print(&list, || table(&list));
        }
        AgentCommand::RotateToken { name } => {
            let agent = {
                check_name(&name)?;
                let store = AgentStore::load(&ctx.home)?;
                store.get(&name).cloned().ok_or_else(|| not_found(format!("no agent named {name}")))?
            };
            let audit = change_log(ctx)?;
            let now = now_ms();
            let token = AgentStore::update(&ctx.home, |s| s.rotate(&name, now))?;
            audit.record(
                activity::UPDATE,
                "agent",
                &name,
                format!("agent {name}: token rotated; the old one no longer works"),
            )?;
            print_token(ctx, &agent, &token, "Rotated the token of");
        }
    }
    Ok(())
}

/// The audit log for an agent change, opened before the change (fail closed). It needs the vault: the log's signing
/// key is derived from it.
fn change_log(ctx: &Ctx) -> Result<ChangeLog, CliError> {
    let mut vault = ctx.open_unlocked()?;
    ChangeLog::open(ctx, &mut vault)
}

/// Prints a new token, once, to stdout only.
fn print_token(ctx: &Ctx, agent: &Agent, token: &Token, verb: &str) {
    if ctx.json {
        #[derive(Serialize)]
        struct Shown<'a> {
            name: &'a str,
            role: Role,
            parent: Option<&'a str>,
            token: &'a str,
        }
        let shown =
            Shown { name: &agent.name, role: agent.role, parent: agent.parent.as_deref(), token: token.expose() };
        let text = Zeroizing::new(serde_json::to_string_pretty(&shown).expect("serialisable"));
        println!("{}", text.as_str());
    } else {
        let under = agent.parent.as_ref().map(|p| format!(", sub-agent of {p}")).unwrap_or_default();
        println!(
            "{verb} agent {} (role {}{under}). Its bearer token is below; it is shown only this once and cannot be \
             shown again (only its hash is stored):",
            agent.name, agent.role
        );
        println!("{}", token.expose());
    }
}

fn table(list: &[AgentInfo]) -> String {
    if list.is_empty() {
        return "No agents.\n".into();
    }
    let mut rows = vec![["NAME".to_string(), "ROLE".into(), "PARENT".into(), "CREATED".into(), "TOKEN ROTATED".into()]];
    for a in list {
        rows.push([
            a.name.clone(),
            a.role.to_string(),
            a.parent.clone().unwrap_or_else(|| "-".into()),
            format_time(a.created_ms),
            a.token_rotated_ms.map(format_time).unwrap_or_else(|| "never".into()),
        ]);
    }
    crate::commands::aligned(&rows)
}

fn format_time(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map(|t| format!("{t:.0}")).unwrap_or_else(|_| ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn home() -> tempfile::TempDir {
        let t = tempfile::tempdir().expect("temp dir");
        std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        t
    }

    /// A store with admin `root`, agent `lead` (child of root), agent `worker` and auditor `watch` (children of
    /// lead), and a separate agent `other`; with every token.
    fn tree() -> (AgentStore, Vec<(String, Token)>) {
        let mut s = AgentStore::empty(Path::new("/nonexistent"));
        let mut tokens = Vec::new();
        for (name, role, parent) in [
            ("root", Role::Admin, None),
            ("lead", Role::Agent, Some("root")),
            ("worker", Role::Agent, Some("lead")),
            ("watch", Role::Auditor, Some("lead")),
            ("other", Role::Agent, None),
        ] {
            let t = s.add(name, role, parent, 1000).unwrap_or_else(|e| panic!("add {name}: {}", e.message));
            tokens.push((name.to_string(), t));
        }
        (s, tokens)
    }

    #[test]
    fn names_follow_the_policy_alphabet_in_lower_case() {
        for ok in ["a", "0", "coder", "coder-2", "sub_agent.v1", &"a".repeat(64)] {
            assert!(check_name(ok).is_ok(), "{ok:?} should be valid");
        }
        let long = "a".repeat(65);
        let hash = hex::encode(token_hash("a token"));
        for bad in [
            "",
            &long,
            "Coder",
            "-x",
            ".x",
            "_x",
            "a b",
            "a/b",
            "a:b",
            "é",
            "alk_abc",
            &hash,
            "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        ] {
            let e = check_name(bad).expect_err(bad);
            assert_eq!(e.code, 8, "{bad:?}");
            if bad.len() > 3 {
                assert!(!e.message.contains(bad), "the message repeats the name: {}", e.message);
            }
        }
    }

    #[test]
    fn roles_never_create_a_child_above_themselves() {
        use Role::*;
        let allowed = |p: Role, c: Role| p.may_create(c);
        assert!(allowed(Admin, Admin) && allowed(Admin, Agent) && allowed(Admin, Auditor));
        assert!(!allowed(Agent, Admin) && allowed(Agent, Agent) && allowed(Agent, Auditor));
        assert!(!allowed(Auditor, Admin) && !allowed(Auditor, Agent) && allowed(Auditor, Auditor));
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
            assert_eq!(serde_json::to_string(&r).unwrap(), format!("\"{r}\""));
        }
        assert_eq!(Role::parse("root"), None);
        assert!(Admin.allows(Permission::Manage) && Admin.allows(Permission::Act) && Admin.allows(Permission::Audit));
        assert!(!Agent.allows(Permission::Manage) && Agent.allows(Permission::Act) && !Agent.allows(Permission::Audit));
        assert!(!Auditor.allows(Permission::Manage) && !Auditor.allows(Permission::Act));
        assert!(Auditor.allows(Permission::Audit));
    }

    #[test]
    fn tokens_are_prefixed_random_base64url_and_never_in_debug() {
        let a = Token::generate();
        let b = Token::generate();
        assert_ne!(a.expose(), b.expose());
        let body = a.expose().strip_prefix(TOKEN_PREFIX).expect("prefix");
        assert_eq!(body.len(), 43, "32 bytes, base64url without padding");
        assert!(body.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(body).unwrap();
        assert_eq!(decoded.len(), 32);
        assert_eq!(format!("{a:?}"), "Token(<redacted>)");
    }

    #[test]
    fn authenticate_finds_the_agent_of_each_token() {
        let (s, tokens) = tree();
        for (name, t) in &tokens {
            let a = s.authenticate(t.expose()).unwrap_or_else(|| panic!("{name}'s token"));
            assert_eq!(&a.name, name);
        }
        assert_eq!(s.authenticate(tokens[1].1.expose()).unwrap().parent.as_deref(), Some("root"));
        assert!(AgentStore::empty(Path::new("/x")).authenticate(tokens[0].1.expose()).is_none());
    }

    /// The attack: present a token close to a real one, or derived from what the store holds. Every guess fails.
    #[test]
    fn guess_an_agent_token() {
        let (mut s, tokens) = tree();
        let real = tokens[2].1.expose().to_string();
        let mut guesses: Vec<String> = Vec::new();
        // One character changed, at every position.
        for i in 0..real.len() {
            let mut b = real.clone().into_bytes();
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            guesses.push(String::from_utf8(b).unwrap());
        }
        // Every proper prefix, and the token with something after it.
        for n in 0..real.len() {
            guesses.push(real[..n].to_string());
        }
        guesses.extend([format!("{real}x"), format!("{real}\n"), format!(" {real}"), format!("Bearer {real}")]);
        guesses.push(real.to_uppercase());
        // The stored hash itself, in the forms it could be copied from the file.
        let stored = hex::encode(s.entry("worker").unwrap().token_sha256);
        guesses.extend([stored.clone(), stored.to_uppercase(), format!("{TOKEN_PREFIX}{stored}")]);
        guesses.extend([String::new(), TOKEN_PREFIX.to_string(), "\0".repeat(47)]);
        for g in &guesses {
            assert!(s.authenticate(g).is_none(), "guess {g:?} authenticated");
        }
        // A removed agent's token and a rotated-away token stop working too.
        let other = tokens[4].1.expose().to_string();
        s.remove("other", false).unwrap();
        assert!(s.authenticate(&other).is_none());
        s.rotate("worker", 2000).unwrap();
        assert!(s.authenticate(&real).is_none());
    }

    #[test]
    fn rotate_replaces_the_token_and_records_when() {
        let (mut s, tokens) = tree();
        let old = &tokens[1].1;
        let new = s.rotate("lead", 5000).unwrap();
        assert!(s.authenticate(old.expose()).is_none(), "the old token must stop working at once");
        assert_eq!(s.authenticate(new.expose()).unwrap().name, "lead");
        let info = s.list().into_iter().find(|a| a.name == "lead").unwrap();
        assert_eq!((info.created_ms, info.token_rotated_ms), (1000, Some(5000)));
        assert_eq!(s.rotate("nobody", 1).unwrap_err().code, 4);
    }

    #[test]
    fn subtree_and_acting_for_others() {
        let (s, _) = tree();
        assert_eq!(s.descendants("root"), ["lead", "worker", "watch"]);
        assert_eq!(s.descendants("lead"), ["worker", "watch"]);
        assert!(s.descendants("worker").is_empty());
        assert!(s.descendants("nobody").is_empty());
        assert_eq!(s.children("lead"), ["worker", "watch"]);
        // Itself and its descendants.
        assert!(s.can_act_for("lead", "lead") && s.can_act_for("lead", "worker") && s.can_act_for("lead", "watch"));
        // Not its parent, a sibling, an unrelated agent, or someone unknown.
        assert!(!s.can_act_for("lead", "root") && !s.can_act_for("worker", "watch"));
        assert!(!s.can_act_for("worker", "lead") && !s.can_act_for("lead", "other"));
        assert!(!s.can_act_for("lead", "nobody"));
        // An admin acts for anyone; an unknown actor for no one, not even itself.
        assert!(s.can_act_for("root", "other") && s.can_act_for("root", "nobody"));
        assert!(!s.can_act_for("nobody", "nobody") && !s.can_act_for("nobody", "worker"));
    }

    #[test]
    fn add_refuses_duplicates_unknown_parents_and_escalation() {
        let (mut s, _) = tree();
        assert_eq!(s.add("lead", Role::Agent, None, 1).unwrap_err().code, 5);
        let e = s.add("new", Role::Agent, Some("ghost"), 1).unwrap_err();
        assert_eq!(e.code, 4, "{}", e.message);
        assert!(e.message.contains("ghost"));
        let e = s.add("boss", Role::Admin, Some("lead"), 1).unwrap_err();
        assert_eq!(e.code, 8, "{}", e.message);
        assert!(e.message.contains("cannot exceed"), "{}", e.message);
        assert_eq!(s.add("w2", Role::Agent, Some("watch"), 1).unwrap_err().code, 8);
        assert_eq!(s.add("Bad", Role::Agent, None, 1).unwrap_err().code, 8);
        assert_eq!(s.add("ok", Role::Agent, Some("Bad"), 1).unwrap_err().code, 8);
        assert_eq!(s.list().len(), 5, "nothing was added");
    }

    #[test]
    fn remove_refuses_a_parent_unless_cascading() {
        let (mut s, tokens) = tree();
        let e = s.remove("lead", false).unwrap_err();
        assert_eq!(e.code, 5);
        assert!(e.message.contains("worker, watch") && e.message.contains("--cascade"), "{}", e.message);
        assert_eq!(s.list().len(), 5);
        assert_eq!(s.remove("lead", true).unwrap(), ["lead", "worker", "watch"]);
        let names: Vec<_> = s.list().into_iter().map(|a| a.name).collect();
        assert_eq!(names, ["root", "other"]);
        assert!(s.authenticate(tokens[2].1.expose()).is_none());
        assert_eq!(s.remove("lead", true).unwrap_err().code, 4);
        assert_eq!(s.remove("other", false).unwrap(), ["other"]);
    }

    #[test]
    fn save_and_load_round_trip_with_only_hashes_on_disk() {
        let h = home();
        let tokens = AgentStore::update(h.path(), |s| {
            Ok(vec![s.add("root", Role::Admin, None, 7)?, s.add("kid", Role::Auditor, Some("root"), 8)?])
        })
        .unwrap();
        let path = AgentStore::file_path(h.path());
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let text = std::fs::read_to_string(&path).unwrap();
        for t in &tokens {
            assert!(!text.contains(t.expose()), "a token reached the file");
            assert!(text.contains(&hex::encode(token_hash(t.expose()))));
        }
        let s = AgentStore::load(h.path()).unwrap();
        assert_eq!(s.authenticate(tokens[1].expose()).unwrap().name, "kid");
        assert_eq!(s.get("kid").unwrap().role, Role::Auditor);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["version"], 1);
        assert_eq!(v["agents"][1]["parent"], "root");
        assert_eq!(v["agents"][0]["parent"], serde_json::Value::Null);
        assert_eq!(v["agents"][0]["token_rotated_ms"], serde_json::Value::Null);
        for t in &tokens {
            let shown = format!("{s:?}");
            assert!(!shown.contains(t.expose()) && !shown.contains(&hex::encode(token_hash(t.expose()))), "{shown}");
        }
    }

    #[test]
    fn a_missing_file_is_an_empty_store() {
        let h = home();
        assert!(AgentStore::load(h.path()).unwrap().is_empty());
        assert!(AgentStore::load(&h.path().join("not-made-yet")).unwrap().is_empty());
    }

    fn write_file(h: &Path, text: &str, mode: u32) -> PathBuf {
        let p = AgentStore::file_path(h);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    const HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

    fn one(extra: &str) -> String {
        format!(
            r#"{{"version":1,"agents":[{{"name":"a","role":"agent","parent":null,"token_sha256":"{HASH}","created_ms":1,"token_rotated_ms":null{extra}}}]}}"#
        )
    }

    #[test]
    fn a_file_others_can_read_or_write_is_refused() {
        let h = home();
        for mode in [0o644, 0o640, 0o604, 0o620, 0o602] {
            write_file(h.path(), &one(""), mode);
            let e = AgentStore::load(h.path()).unwrap_err();
            assert_eq!(e.code, 8, "mode {mode:o}");
            assert!(e.message.contains("chmod 600"), "{}", e.message);
        }
        write_file(h.path(), &one(""), 0o600);
        assert!(AgentStore::load(h.path()).is_ok());
        // Nor does a change go through: the file is left as it was.
        std::fs::set_permissions(AgentStore::file_path(h.path()), std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(AgentStore::update(h.path(), |s| s.add("b", Role::Agent, None, 1)).unwrap_err().code, 8);
        assert_eq!(std::fs::read_to_string(AgentStore::file_path(h.path())).unwrap(), one(""));
    }

    #[test]
    fn a_home_others_can_write_is_refused() {
        let h = home();
        write_file(h.path(), &one(""), 0o600);
        std::fs::set_permissions(h.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        assert_eq!(AgentStore::load(h.path()).unwrap_err().code, 8);
    }

    #[test]
    fn a_symlink_is_refused() {
        let h = home();
        let real = h.path().join("elsewhere.json");
        std::fs::write(&real, one("")).unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::symlink(&real, AgentStore::file_path(h.path())).unwrap();
        let e = AgentStore::load(h.path()).unwrap_err();
        assert_eq!(e.code, 8);
        assert!(e.message.contains("symbolic link"), "{}", e.message);
    }

    #[test]
    fn a_file_owned_by_another_user_is_refused() {
        let h = home();
        let p = write_file(h.path(), &one(""), 0o600);
        if std::os::unix::fs::chown(&p, Some(54321), None).is_err() {
            eprintln!("notice: cannot chown (not root); skipping");
            return;
        }
        let e = AgentStore::load(h.path()).unwrap_err();
        assert_eq!(e.code, 8);
        assert!(e.message.contains("owned by uid 54321"), "{}", e.message);
    }

    #[test]
    fn a_corrupt_or_inconsistent_file_is_refused_and_left_unchanged() {
        let h = home();
        let bad_hash = one("").replace(HASH, &"A".repeat(64));
        let short_hash = one("").replace(HASH, "00");
        let wrong_version = one("").replace("\"version\":1", "\"version\":2");
        let bad_role = one("").replace("\"agent\"", "\"superuser\"");
        let bad_name = one("").replace("\"a\"", "\"A\"");
        let dangling = one("").replace("null,\"token_sha256\"", "\"ghost\",\"token_sha256\"");
        let agent = |n: &str, role: &str, parent: &str, hash: char| {
            format!(
                r#"{{"name":"{n}","role":"{role}","parent":{parent},"token_sha256":"{}","created_ms":1,"token_rotated_ms":null}}"#,
                hash.to_string().repeat(64)
            )
        };
        let file = |agents: &[String]| format!(r#"{{"version":1,"agents":[{}]}}"#, agents.join(","));
        let cycle = file(&[agent("x", "agent", "\"y\"", '1'), agent("y", "agent", "\"x\"", '2')]);
        let own_parent = file(&[agent("x", "agent", "\"x\"", '1')]);
        let twice = file(&[agent("x", "agent", "null", '1'), agent("x", "agent", "null", '2')]);
        let same_hash = file(&[agent("x", "agent", "null", '1'), agent("y", "agent", "null", '1')]);
        let escalated = file(&[agent("x", "auditor", "null", '1'), agent("y", "admin", "\"x\"", '2')]);
        let cases = [
            ("not json", "{".to_string()),
            ("empty", String::new()),
            ("unknown field", one(",\"may_do_anything\":true")),
            ("unknown top-level field", one("").replacen('{', "{\"extra\":1,", 1)),
            ("missing field", one("").replace(",\"created_ms\":1", "")),
            ("bad hash", bad_hash),
            ("short hash", short_hash),
            ("version", wrong_version),
            ("role", bad_role),
            ("name", bad_name),
            ("dangling parent", dangling),
            ("cycle", cycle),
            ("own parent", own_parent),
            ("listed twice", twice),
            ("shared hash", same_hash),
            ("escalation", escalated),
        ];
        for (what, text) in cases {
            let p = write_file(h.path(), &text, 0o600);
            let e = AgentStore::load(h.path()).unwrap_err();
            assert_eq!(e.code, 8, "{what}: {}", e.message);
            assert!(e.message.contains(&p.display().to_string()), "{what}: the message names the file: {}", e.message);
            let e = AgentStore::update(h.path(), |s| s.add("b", Role::Agent, None, 1)).unwrap_err();
            assert_eq!(e.code, 8, "{what}");
            assert_eq!(std::fs::read_to_string(&p).unwrap(), text, "{what}: the file was changed");
        }
    }

    #[test]
    fn a_failed_change_writes_nothing() {
        let h = home();
        AgentStore::update(h.path(), |s| s.add("a", Role::Agent, None, 1)).unwrap();
        let before = std::fs::read(AgentStore::file_path(h.path())).unwrap();
        assert_eq!(AgentStore::update(h.path(), |s| s.add("a", Role::Agent, None, 2)).unwrap_err().code, 5);
        assert_eq!(std::fs::read(AgentStore::file_path(h.path())).unwrap(), before);
    }

    #[test]
    fn the_table_shows_no_secrets() {
        let (s, tokens) = tree();
        let t = table(&s.list());
        assert!(t.starts_with("NAME"), "{t}");
        assert!(t.contains("worker") && t.contains("auditor") && t.contains("never"), "{t}");
        for (_, tok) in &tokens {
            assert!(!t.contains(tok.expose()) && !t.contains(&hex::encode(token_hash(tok.expose()))[..16]));
        }
        assert_eq!(table(&[]), "No agents.\n");
    }
}
