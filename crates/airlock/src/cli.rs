//! Command-line grammar. Secret values never appear here: they come from stdin or a prompt.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(name = "airlock", version, about = "The security boundary between an AI agent and the world")]
pub struct Cli {
    /// State directory (default: $AIRLOCK_HOME, else $XDG_DATA_HOME/airlock, else ~/.local/share/airlock).
    #[arg(long, global = true)]
    pub home: Option<PathBuf>,
    /// Read the vault passphrase from this file (mode 0600). Otherwise $AIRLOCK_PASSPHRASE, then a prompt.
    #[arg(long, global = true)]
    pub passphrase_file: Option<PathBuf>,
    /// Use this key file for a `keyfile` slot instead of the path recorded in the vault.
    #[arg(long, global = true)]
    pub keyfile: Option<PathBuf>,
    /// Machine-readable output (and JSON errors on stderr).
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a new encrypted vault.
    Init(InitArgs),
    /// Store, list, rotate, pin and remove secrets.
    #[command(subcommand)]
    Secret(SecretCommand),
    /// Rotate the data key or replace the unlock keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Show the vault's state (works while locked; more once unlocked).
    Status,
    /// The whole boundary in one command, on a throwaway home: vault, sandboxed tool, broker, guard, redaction,
    /// audit log. Exits non-zero if any step does not behave as shown.
    Demo(DemoArgs),
    /// The demo's stand-in for an agent's tool: it runs inside the sandbox and does one thing (an HTTP request
    /// through the sandbox's proxy, a file read, an environment lookup), printing one JSON line.
    #[command(hide = true)]
    DemoTool(DemoToolArgs),
    /// Validate, lint and explain the policy in airlock.toml.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Verify, read, export and prove the tamper-evident audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Run the egress broker in the foreground: an HTTP(S) proxy that applies policy to every request.
    Proxy(ProxyArgs),
    /// The local CA the broker signs intercepted hosts' certificates with.
    #[command(subcommand)]
    Ca(CaCommand),
    /// Run a command in the sandbox: namespaces, Landlock, seccomp, limits, egress only through the broker.
    Run(Box<RunArgs>),
    /// Show the sandboxed runs on this machine, as a tree of parent and child runs.
    Ps(PsArgs),
    /// Stop runs: TERM, then KILL after the grace period.
    Kill(KillArgs),
    /// Freeze runs (cgroup freezer, else SIGSTOP) until `airlock resume`.
    Pause(SelectRuns),
    /// Thaw paused runs.
    Resume(SelectRuns),
    /// The global kill switch: kill every run and refuse all egress and new runs until `--lift`.
    Lockdown(LockdownArgs),
    /// Mask secrets and personal data in text: a filter from FILEs (or stdin) to stdout.
    Redact(RedactArgs),
    /// Find secrets in files and directories; report as a table, JSON or SARIF.
    ScanSecrets(ScanSecretsArgs),
    /// Assess text for prompt injection: risk, verdict (allow, flag, block) and the evidence.
    Scan(ScanArgs),
    /// Mark untrusted text for a model's context (stdin to stdout).
    Spotlight(SpotlightArgs),
    /// Run the daemon: the vault unlocked once, the audit writer, and the local HTTP API on a Unix socket (and,
    /// with --listen, a loopback port). Stops on SIGTERM; reloads the policy on SIGHUP or when its file changes.
    Serve(ServeArgs),
    /// Check a model's output before it acts or renders: exfiltration URLs (markdown and HTML images, links),
    /// secrets, personal data, a JSON Schema, length. Verdict and findings.
    ValidateOutput(ValidateOutputArgs),
    /// Canary tokens to plant in system prompts and decoy files; the proxy's leak scan and validate-output look
    /// for every registered one.
    Canary(CanaryArgs),
    /// Agent identities for the daemon: bearer tokens (stored only as hashes), roles and sub-agents.
    Agent(AgentArgs),
    /// Sealed files for git (`file://PATH#KEY`): keys in the clear, each value encrypted on its own, a MAC over
    /// the whole file. Values go in through stdin or a prompt; no command prints one.
    #[command(subcommand)]
    Sealed(crate::sealed::SealedCommand),
}

#[derive(Args, Debug)]
pub struct AgentArgs {
    #[command(subcommand)]
    pub command: AgentCommand,
}

#[derive(Subcommand, Debug)]
pub enum AgentCommand {
    /// Add an agent and print its bearer token, once: only the token's SHA-256 is stored.
    Add {
        /// 1 to 64 of a-z, 0-9, '-', '_', '.', starting with a letter or digit (as in airlock.toml [agents.NAME]).
        name: String,
        /// `admin` (everything, secrets and lockdown included), `agent` (runs and tools within its own subtree) or
        /// `auditor` (read-only: audit, health, metrics, listings).
        #[arg(long, value_enum, default_value_t = AgentRoleArg::Agent)]
        role: AgentRoleArg,
        /// Make it a sub-agent of this agent; its role may not exceed the parent's.
        #[arg(long, value_name = "AGENT")]
        parent: Option<String>,
    },
    /// Remove an agent; its token stops working at once.
    Rm {
        name: String,
        /// Also remove its sub-agents (without this, an agent that has any is refused).
        #[arg(long)]
        cascade: bool,
    },
    /// The agents: name, role, parent and dates (never a token or a hash).
    List,
    /// Give an agent a new token, printed once; the old one stops working at once.
    RotateToken { name: String },
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentRoleArg {
    Admin,
    Agent,
    Auditor,
}

#[derive(Args, Debug)]
pub struct CanaryArgs {
    #[command(subcommand)]
    pub command: CanaryCommand,
}

#[derive(Subcommand, Debug)]
pub enum CanaryCommand {
    /// Print a session's canary for PURPOSE (the text to plant) and register it.
    New {
        /// The session (agent conversation) it belongs to: letters, digits, '-', '_', '.'.
        #[arg(long)]
        session: String,
        /// `system-prompt` (a line for the system prompt), `decoy-aws` (an ~/.aws/credentials file) or
        /// `decoy-env` (a .env file).
        #[arg(long, default_value = "system-prompt")]
        purpose: String,
    },
    /// The registered canaries: session and purpose (never the tokens).
    List,
}

#[derive(Args, Debug)]
pub struct ScanArgs {
    /// The file to assess; `-` or none means stdin.
    pub file: Option<PathBuf>,
    /// Thresholds: `strict` (flag 0.3, block 0.6), `default` (0.4, 0.75) or `permissive` (0.5, 0.9).
    #[arg(long, value_enum, default_value_t = ProfileArg::Default)]
    pub profile: ProfileArg,
    /// The classifier's model directory (default: $AIRLOCK_MODEL_DIR, else `model` in the state directory).
    /// A model that is found but fails its checks stops the scan.
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// Heuristics alone, even where a model is installed.
    #[arg(long, conflicts_with = "model")]
    pub no_classifier: bool,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileArg {
    Strict,
    Default,
    Permissive,
}

#[derive(Args, Debug)]
pub struct SpotlightArgs {
    /// `delimit` (random-nonce tags), `datamark` (a marker between every word) or `encode` (base64).
    #[arg(long, value_enum)]
    pub mode: SpotlightModeArg,
    /// Print only the system-prompt snippet for this marking (with --json, both are printed together). Needs
    /// --session for delimit and datamark, so that later wraps use the same marker.
    #[arg(long)]
    pub system_prompt: bool,
    /// Derive the nonce or marker from this session name and a key kept in AIRLOCK_HOME (`spotlight.key`), so
    /// every wrap of one session matches its system prompt. Without it, each call draws a new one.
    #[arg(long, value_name = "NAME")]
    pub session: Option<String>,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpotlightModeArg {
    Delimit,
    Datamark,
    Encode,
}

#[derive(Args, Debug)]
pub struct ValidateOutputArgs {
    /// The model's output; `-` or none means stdin.
    pub file: Option<PathBuf>,
    /// A JSON Schema the output must satisfy (draft 2020-12 unless its `$schema` says otherwise). Its `$ref`s must
    /// point inside it: nothing is fetched or read.
    #[arg(long, value_name = "FILE")]
    pub schema: Option<PathBuf>,
    /// A host that URLs may carry data to: `docs.rs`, or `*.example.com` for its subdomains (not example.com
    /// itself). Repeatable. Images and links carrying data anywhere else are blocked and flagged.
    #[arg(long = "allow-host", value_name = "HOST")]
    pub allow_host: Vec<String>,
    /// The input the model answered, for --max-ratio.
    #[arg(long, value_name = "FILE", conflicts_with = "input_len")]
    pub input: Option<PathBuf>,
    /// The length in bytes of the input the model answered, for --max-ratio.
    #[arg(long, value_name = "N")]
    pub input_len: Option<usize>,
    /// Flag an output longer than R times its input (needs --input or --input-len).
    #[arg(long, value_name = "R")]
    pub max_ratio: Option<f64>,
}

/// Which rules a scan uses.
#[derive(Args, Debug, Clone, Default)]
pub struct RuleArgs {
    /// Extra rule file (Airlock's TOML rule format, see docs/redaction.md); repeatable.
    #[arg(long = "rules", value_name = "FILE")]
    pub rules: Vec<PathBuf>,
    /// Import the rules of a gitleaks config file (`[[rules]]` format).
    #[arg(long = "gitleaks-config", value_name = "FILE")]
    pub gitleaks: Vec<PathBuf>,
    /// Turn off these rule ids (comma-separated or repeated).
    #[arg(long, value_name = "RULE", value_delimiter = ',')]
    pub disable: Vec<String>,
    /// Use only the rules from --rules/--gitleaks-config, not the built-in ones.
    #[arg(long)]
    pub no_builtin: bool,
    /// Print the rules in use (id, family, category, description) and exit.
    #[arg(long)]
    pub list_rules: bool,
}

#[derive(Args, Debug)]
pub struct RedactArgs {
    /// Files to read, in order; `-` or none means stdin.
    pub files: Vec<PathBuf>,
    /// How to mask: `label` writes [REDACTED:rule-id]; `shape` keeps length, punctuation and a token's public prefix.
    #[arg(long, value_enum, default_value_t = MaskArg::Label)]
    pub mask: MaskArg,
    /// Personal data to mask: `all`, `none`, or a comma-separated list of email, phone, credit-card, iban, us-ssn,
    /// ip-address.
    #[arg(long, value_name = "FAMILIES", default_value = "all")]
    pub pii: String,
    /// Also mask every value in the vault and every surrogate (unlocks the vault).
    #[arg(long)]
    pub vault: bool,
    /// After the output, print one JSON line per finding on stderr (rule, line, span, fingerprint; never a value).
    #[arg(long)]
    pub report: bool,
    #[command(flatten)]
    pub rules: RuleArgs,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaskArg {
    Label,
    Shape,
}

#[derive(Args, Debug)]
pub struct ScanSecretsArgs {
    /// Files and directories to scan (directories recursively; `.git` directories and symlinks are not followed).
    #[arg(required_unless_present = "list_rules")]
    pub paths: Vec<PathBuf>,
    /// Report format (`--json` is the same as `--format json`).
    #[arg(long, value_enum, default_value_t = ScanFormat::Table)]
    pub format: ScanFormat,
    /// Write the report here instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Worker threads (default: one per CPU).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Also look for personal data: `--pii` for every family, or `--pii=email,iban` for some.
    #[arg(long, value_name = "FAMILIES", num_args = 0..=1, require_equals = true, default_missing_value = "all")]
    pub pii: Option<String>,
    /// Binary files (a NUL byte in the first 8 KiB): skip them, or scan their bytes too.
    #[arg(long, value_enum, default_value_t = BinaryMode::Skip)]
    pub binary: BinaryMode,
    /// No progress bar (it is shown only when stderr is a terminal anyway).
    #[arg(long)]
    pub no_progress: bool,
    #[command(flatten)]
    pub rules: RuleArgs,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanFormat {
    Table,
    Json,
    Sarif,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryMode {
    Skip,
    Scan,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The tool being run (policy decides per tool; default: the command's name when a tool has it, else the
    /// config's only tool).
    #[arg(long)]
    pub tool: Option<String>,
    /// The agent running it (default: $AIRLOCK_AGENT, else the config's only agent).
    #[arg(long)]
    pub agent: Option<String>,
    /// The run this one is a child of (agent nesting depth is counted and limited).
    #[arg(long, value_name = "RUN")]
    pub parent: Option<String>,
    /// The run's id (16 lowercase hex digits), chosen by `airlock serve` for the runs it starts; otherwise random.
    #[arg(long, value_name = "ID", hide = true, value_parser = parse_run_id)]
    pub run_id: Option<String>,
    /// Config file (default: ./airlock.toml, else $AIRLOCK_HOME/airlock.toml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub env: PolicyEnvArgs,
    /// Print what this kernel lets the sandbox enforce, and whether this policy's run could start; run nothing.
    #[arg(long)]
    pub check: bool,
    /// Start even if a protection the policy needs is unavailable here (each missing one is named and audited).
    #[arg(long)]
    pub allow_degraded: bool,
    /// Resolve names through this DNS server (IP:PORT; repeatable) instead of /etc/resolv.conf (the broker's).
    #[arg(long, value_name = "IP:PORT")]
    pub dns: Vec<std::net::SocketAddr>,
    /// Answer this name with this address without asking DNS (`host=IP`; repeatable), like curl's --resolve.
    #[arg(long, value_name = "HOST=IP")]
    pub resolve: Vec<String>,
    /// Trust this CA (PEM file; repeatable) for upstream TLS, besides the system roots.
    #[arg(long, value_name = "FILE")]
    pub upstream_ca: Vec<PathBuf>,
    /// The command and its arguments, run directly (never through a shell).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "CMD")]
    pub command: Vec<std::ffi::OsString>,
}

#[derive(Args, Debug)]
pub struct PsArgs {
    /// Only this run and the runs below it (started with `--parent` it, and so on down), nested; with --json, one
    /// object per run with its `children`.
    #[arg(long, value_name = "RUN")]
    pub tree: Option<String>,
}

#[derive(Args, Debug)]
pub struct SelectRuns {
    /// Run ids (as `airlock ps` shows them).
    #[arg(value_name = "RUN")]
    pub runs: Vec<String>,
    /// Every run of this agent.
    #[arg(long, conflicts_with = "all")]
    pub agent: Option<String>,
    /// Every run.
    #[arg(long)]
    pub all: bool,
}

#[derive(Args, Debug)]
pub struct KillArgs {
    #[command(flatten)]
    pub select: SelectRuns,
    /// How long runs get to exit after TERM before KILL (`5s`, `500ms`).
    #[arg(long, value_name = "DURATION", default_value = "5s")]
    pub grace: String,
}

#[derive(Args, Debug)]
pub struct LockdownArgs {
    /// End the lockdown.
    #[arg(long)]
    pub lift: bool,
    /// Show whether a lockdown is on; change nothing.
    #[arg(long, conflicts_with = "lift")]
    pub status: bool,
    /// Why (recorded in the state file and the audit log).
    #[arg(long, default_value = "manual lockdown")]
    pub reason: String,
}

#[derive(Subcommand, Debug)]
pub enum CaCommand {
    /// Print the CA bundle clients should trust (the CA plus the system roots), making the CA if needed.
    Path {
        /// Print the CA certificate alone instead (for NODE_EXTRA_CA_CERTS and other "extra CA" settings).
        #[arg(long)]
        cert: bool,
    },
    /// Show the CA's fingerprint, expiry, files and the environment clients need.
    Show,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The Unix socket to serve (default: $AIRLOCK_HOME/airlock.sock). Created 0600.
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Also serve HTTP on this TCP address. Loopback only, unless mutual TLS is on (--tls-cert, --tls-key and
    /// --client-ca together): then HTTPS, on any address.
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<std::net::SocketAddr>,
    /// Mutual TLS on --listen: the server's certificate chain (PEM, leaf first).
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// Mutual TLS on --listen: the server's private key (PEM; 0600 or 0400, owned by this user or root).
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Mutual TLS on --listen: the CA certificate(s) (PEM) that every client's certificate must chain to. Clients
    /// still need a bearer token.
    #[arg(long, value_name = "FILE")]
    pub client_ca: Option<PathBuf>,
    /// Stay in the foreground (the only mode: run it under systemd with packaging/airlock.service, or a shell).
    #[arg(long)]
    pub foreground: bool,
    /// Config file (default: ./airlock.toml, else $AIRLOCK_HOME/airlock.toml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Largest request body accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20)]
    pub max_body: usize,
    /// Requests per second each agent may make (bursts of twice that).
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub rate: u32,
    /// Runs started through the API that may run at once; more wait in a queue.
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub max_runs: usize,
    /// Runs that may wait for a slot; beyond it, starting a run is refused (503) until one ends.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub max_queued: usize,
    /// The brokers' resolver (capability calls, and the runs the daemon starts): this DNS server (IP:PORT;
    /// repeatable) instead of /etc/resolv.conf.
    #[arg(long, value_name = "IP:PORT")]
    pub dns: Vec<std::net::SocketAddr>,
    /// The brokers' resolver: answer this name with this address without asking DNS (`host=IP`; repeatable).
    #[arg(long, value_name = "HOST=IP")]
    pub resolve: Vec<String>,
    /// The brokers trust this CA (PEM file; repeatable) for upstream TLS, besides the system roots.
    #[arg(long, value_name = "FILE")]
    pub upstream_ca: Vec<PathBuf>,
    #[command(flatten)]
    pub env: PolicyEnvArgs,
}

#[derive(Args, Debug)]
pub struct ProxyArgs {
    /// TCP address to listen on. Loopback only: a non-loopback address is refused.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:0")]
    pub listen: std::net::SocketAddr,
    /// Also (or, with --no-tcp, only) listen on this Unix socket (mode 0600).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Do not listen on TCP (use with --socket).
    #[arg(long)]
    pub no_tcp: bool,
    /// The agent whose traffic this proxy carries (policy decides per agent and tool).
    #[arg(long)]
    pub agent: String,
    /// The tool whose traffic this proxy carries.
    #[arg(long)]
    pub tool: String,
    /// Config file (default: ./airlock.toml, else $AIRLOCK_HOME/airlock.toml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Resolve names through this DNS server (IP:PORT; repeatable) instead of /etc/resolv.conf.
    #[arg(long, value_name = "IP:PORT")]
    pub dns: Vec<std::net::SocketAddr>,
    /// Answer this name with this address without asking DNS (`host=IP`; repeatable), like curl's --resolve.
    #[arg(long, value_name = "HOST=IP")]
    pub resolve: Vec<String>,
    /// Most client connections open at once (beyond it, new connections are closed unanswered).
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub max_connections: usize,
    /// Allow a non-loopback --listen address. Every client must then authenticate: a proxy token (from
    /// AIRLOCK_PROXY_TOKEN, else generated and printed once as the proxy URL's password) in Proxy-Authorization.
    #[arg(long)]
    pub allow_remote: bool,
    /// Trust this CA (PEM file; repeatable) for upstream TLS, besides the system roots: an internal CA, or a
    /// test server's.
    #[arg(long, value_name = "FILE")]
    pub upstream_ca: Vec<PathBuf>,
    /// Exit after this many seconds (for scripts and tests).
    #[arg(long, value_name = "SECONDS")]
    pub exit_after: Option<u64>,
    #[command(flatten)]
    pub env: PolicyEnvArgs,
}

#[derive(Args, Debug, Clone)]
pub struct AuditLogArg {
    /// Audit log directory (default: $AIRLOCK_HOME/audit).
    #[arg(long, value_name = "DIR")]
    pub log: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct AuditKeyArg {
    /// Trust this checkpoint key (`name+id+key`, as `airlock audit key` prints it) instead of deriving it from
    /// the vault. Never read from the log directory: a forger could replace it there.
    #[arg(long, value_name = "VKEY")]
    pub key: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Check every record, hash and checkpoint signature; exit 10 naming the first bad record.
    Verify {
        #[command(flatten)]
        log: AuditLogArg,
        #[command(flatten)]
        key: AuditKeyArg,
        /// A checkpoint kept elsewhere (a SIEM, a previous run): the log must still contain what it signed.
        #[arg(long, value_name = "FILE")]
        checkpoint: Vec<PathBuf>,
        /// After a successful check, write the newest checkpoint here (for the next run's --checkpoint).
        #[arg(long, value_name = "FILE")]
        save_checkpoint: Option<PathBuf>,
        /// Fail if the newest checkpoint is older than this (e.g. `5m`): the heartbeat stopped.
        #[arg(long, value_name = "DURATION")]
        max_age: Option<String>,
    },
    /// Print the last records, and with -f keep printing new ones.
    Tail {
        #[command(flatten)]
        log: AuditLogArg,
        #[arg(short = 'f', long)]
        follow: bool,
        /// How many existing records to show first.
        #[arg(short = 'n', long, default_value_t = 10)]
        lines: usize,
    },
    /// Print the records that match every filter given.
    Query {
        #[command(flatten)]
        log: AuditLogArg,
        #[command(flatten)]
        filter: AuditFilterArgs,
    },
    /// Write records as OCSF JSON lines or CEF lines to stdout (for a SIEM, or to replay a sink's gap).
    Export {
        #[command(flatten)]
        log: AuditLogArg,
        #[arg(long, value_enum, default_value_t = ExportFormatArg::Ocsf)]
        format: ExportFormatArg,
        #[command(flatten)]
        filter: AuditFilterArgs,
    },
    /// Print an inclusion proof for record SEQ, or a consistency proof between two tree sizes.
    Prove {
        #[command(flatten)]
        log: AuditLogArg,
        /// The record to prove.
        #[arg(required_unless_present = "consistency")]
        seq: Option<u64>,
        /// Tree size to prove against (default: the newest checkpoint's).
        #[arg(long)]
        size: Option<u64>,
        /// Prove that the tree of this size is a prefix of the tree of --size.
        #[arg(long, value_name = "OLD_SIZE", conflicts_with = "seq")]
        consistency: Option<u64>,
    },
    /// Print the keyed hash (`hmac-sha256:…`) of a value read from stdin, to search the log for it.
    Hash,
    /// Cut off an incomplete final record left by a crash, recording that it did so.
    Repair {
        #[command(flatten)]
        log: AuditLogArg,
    },
    /// Print the checkpoint verifier key, to keep somewhere a forger cannot reach.
    Key,
    /// Sign a checkpoint now and print it, to keep off-box (use with `verify --checkpoint`).
    Checkpoint {
        #[command(flatten)]
        log: AuditLogArg,
    },
}

#[derive(Args, Debug, Clone, Default)]
pub struct AuditFilterArgs {
    /// Records at or after this time: RFC 3339 (`2026-11-22T08:00:00Z`) or an age (`90m`, `2h`, `7d`).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Records before this time (same forms as --since).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Event class: api, process, finding, entity, lifecycle (or an OCSF class uid). Repeatable.
    #[arg(long = "type", value_name = "CLASS")]
    pub class: Vec<String>,
    /// The agent that acted.
    #[arg(long)]
    pub actor: Option<String>,
    #[arg(long, value_enum)]
    pub decision: Option<DecisionArg>,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormatArg {
    Ocsf,
    Cef,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecisionArg {
    Allow,
    Deny,
}

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Validate airlock.toml and its Cedar files against the schema, and lint them.
    Check {
        /// Config file (default: ./airlock.toml, else $AIRLOCK_HOME/airlock.toml).
        file: Option<PathBuf>,
        #[command(flatten)]
        env: PolicyEnvArgs,
    },
    /// Decide one request and show the decision, the policies that made it, and the reason.
    Explain(Box<ExplainArgs>),
    /// Print the JSON Schema of airlock.toml.
    Schema,
}

#[derive(Args, Debug, Clone)]
pub struct PolicyEnvArgs {
    /// dev, prod, ide or test (default: $AIRLOCK_PROFILE, then the file's default_profile, then dev).
    #[arg(long)]
    pub profile: Option<String>,
    /// Value of ${WORKSPACE} (default: the current directory).
    #[arg(long)]
    pub workspace: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// Config file (default: ./airlock.toml, else $AIRLOCK_HOME/airlock.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub env: PolicyEnvArgs,
    #[arg(long)]
    pub agent: String,
    /// Required for every action but api.call.
    #[arg(long)]
    pub tool: Option<String>,
    /// http.request, fs.read, fs.write, fs.exec, exec, secret.use or api.call.
    #[arg(long)]
    pub action: String,
    /// URL, path, program, secret name, or KIND/ID for api.call.
    #[arg(long)]
    pub resource: String,
    /// HTTP method (http.request).
    #[arg(long, default_value = "GET")]
    pub method: String,
    /// Request body size (http.request).
    #[arg(long, default_value_t = 0)]
    pub bytes: u64,
    /// Where the secret would be sent (secret.use): URL or host:port.
    #[arg(long)]
    pub target: Option<String>,
    /// Operation (api.call), e.g. read.
    #[arg(long)]
    pub verb: Option<String>,
    /// Owning agent of the object (api.call).
    #[arg(long)]
    pub owner: Option<String>,
    /// Risk score 0-100.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub risk: u8,
    #[arg(long, default_value = "")]
    pub run_id: String,
    /// Decide as of this time: unix seconds or YYYY-MM-DDTHH:MM:SSZ (default: now).
    #[arg(long)]
    pub at: Option<String>,
}

#[derive(Args, Debug)]
pub struct InitArgs {
    /// How the vault unlocks; repeat for several slots: passphrase, keyring, keyfile:PATH, env:VAR.
    #[arg(long = "kek", default_value = "passphrase")]
    pub keks: Vec<String>,
    #[arg(long, value_enum, default_value_t = CipherArg::Xchacha20Poly1305)]
    pub cipher: CipherArg,
    #[command(flatten)]
    pub kdf: KdfArgs,
    /// Value versions kept per secret (1-100).
    #[arg(long, default_value_t = airlock_vault::DEFAULT_KEEP_VERSIONS)]
    pub keep_versions: u32,
}

#[derive(Args, Debug, Clone)]
pub struct KdfArgs {
    /// Argon2id memory in MiB for passphrase slots. Below 64 is refused unless --insecure-kdf.
    #[arg(long, default_value_t = 64)]
    pub kdf_memory_mib: u32,
    /// Argon2id passes.
    #[arg(long, default_value_t = 3)]
    pub kdf_iterations: u32,
    /// Argon2id lanes.
    #[arg(long, default_value_t = 4)]
    pub kdf_parallelism: u32,
    /// Allow Argon2id memory below 64 MiB (tests and tiny devices only).
    #[arg(long)]
    pub insecure_kdf: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum CipherArg {
    #[value(name = "xchacha20-poly1305")]
    Xchacha20Poly1305,
    #[value(name = "aes-256-gcm")]
    Aes256Gcm,
}

#[derive(Subcommand, Debug)]
pub enum SecretCommand {
    /// Store a new secret; the value is read from stdin or a hidden prompt, never from arguments.
    Set(SetArgs),
    /// List secrets (metadata only, never values).
    List {
        #[arg(long, short)]
        workspace: Option<String>,
    },
    /// Give a secret a new value (from stdin or a prompt); the old value is kept as a previous version.
    Rotate {
        name: String,
        #[arg(long, short)]
        workspace: Option<String>,
        /// Keep stdin byte-for-byte (don't strip one trailing newline).
        #[arg(long)]
        raw: bool,
    },
    /// Delete a secret and all its versions.
    Rm {
        name: String,
        #[arg(long, short)]
        workspace: Option<String>,
    },
    /// Allow a secret to be sent to one more host.
    Pin {
        name: String,
        #[arg(long = "host", required = true)]
        hosts: Vec<String>,
        #[arg(long, short)]
        workspace: Option<String>,
    },
    /// Copy a value from another store (OpenBao, a keyring, the environment, a sealed file) into the vault.
    Import(ImportArgs),
    /// Compare secrets held both in the vault and in another store, without showing either value (exit 16 on drift).
    Sync(SyncArgs),
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    pub name: String,
    /// The value to copy: bao://MOUNT/PATH#FIELD, keyring://SERVICE/USER, keyctl://DESC, env://NAME or file://PATH#KEY.
    #[arg(long)]
    pub from: String,
    /// If NAME exists, give it the store's value as a new version (its pins and recipe stay).
    #[arg(long)]
    pub update: bool,
    #[arg(long, short)]
    pub workspace: Option<String>,
    #[command(flatten)]
    pub new: NewSecretArgs,
    /// Config whose [backends] says how to reach the store (default: ./airlock.toml, else $AIRLOCK_HOME/airlock.toml;
    /// without one, only stores that need no settings).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// dev, prod, ide or test (default: $AIRLOCK_PROFILE, then the file's default_profile, then dev).
    #[arg(long)]
    pub profile: Option<String>,
}

#[derive(Args, Debug)]
pub struct SyncArgs {
    /// Secrets to compare (default: every [secrets.NAME] with a source).
    pub names: Vec<String>,
    /// Compare the one NAME with this store locator instead of its [secrets.NAME] source.
    #[arg(long)]
    pub against: Option<String>,
    /// Give each drifted local copy the store's value, as a new version.
    #[arg(long)]
    pub pull: bool,
    #[arg(long, short)]
    pub workspace: Option<String>,
    /// Config with [secrets] and [backends] (default: ./airlock.toml, else $AIRLOCK_HOME/airlock.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// dev, prod, ide or test (default: $AIRLOCK_PROFILE, then the file's default_profile, then dev).
    #[arg(long)]
    pub profile: Option<String>,
}

#[derive(Args, Debug)]
pub struct SetArgs {
    pub name: String,
    #[arg(long, short)]
    pub workspace: Option<String>,
    #[command(flatten)]
    pub new: NewSecretArgs,
    /// Keep stdin byte-for-byte (don't strip one trailing newline).
    #[arg(long)]
    pub raw: bool,
}

/// What a new secret is (`secret set`, `secret import`): where it may be sent, how it is injected, how tools see it.
#[derive(Args, Debug)]
pub struct NewSecretArgs {
    /// Host the secret may be sent to (repeatable): name, *.suffix or IP, optional :port.
    #[arg(long = "host")]
    pub hosts: Vec<String>,
    /// Inject as a header, e.g. 'Authorization: Bearer {}'.
    #[arg(long, conflicts_with_all = ["query", "basic_user"])]
    pub header: Option<String>,
    /// Inject as this URL query parameter.
    #[arg(long, conflicts_with = "basic_user")]
    pub query: Option<String>,
    /// Inject as HTTP basic auth with this username (the secret is the password).
    #[arg(long)]
    pub basic_user: Option<String>,
    /// How tools get it: a surrogate (the default) or, opt-in, the real value in their environment.
    #[arg(long, value_enum)]
    pub expose: Option<ExposeArg>,
    #[arg(long)]
    pub group: Option<String>,
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Versions kept for this secret (overrides the vault default).
    #[arg(long)]
    pub keep_versions: Option<u32>,
}

impl NewSecretArgs {
    /// Whether any option was given (`import --update` copies only a value, so it takes none).
    pub fn any(&self) -> bool {
        !self.hosts.is_empty()
            || self.header.is_some()
            || self.query.is_some()
            || self.basic_user.is_some()
            || self.expose.is_some()
            || self.group.is_some()
            || !self.tags.is_empty()
            || self.keep_versions.is_some()
    }
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum ExposeArg {
    Surrogate,
    Env,
}

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Add a new keyring term for new writes; old terms still decrypt.
    Rotate {
        /// Also re-encrypt every secret under the new term and drop terms nothing uses.
        #[arg(long)]
        rewrap: bool,
    },
    /// Replace every unlock slot (and the root key). The new passphrase comes from $AIRLOCK_NEW_PASSPHRASE,
    /// --new-passphrase-file, or a prompt.
    Rekey {
        #[arg(long = "kek", required = true)]
        keks: Vec<String>,
        #[arg(long)]
        new_passphrase_file: Option<PathBuf>,
        #[command(flatten)]
        kdf: KdfArgs,
    },
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Keep the throwaway home (and print where it is) instead of deleting it, to look around afterwards.
    #[arg(long)]
    pub keep: bool,
}

#[derive(Args, Debug)]
pub struct DemoToolArgs {
    /// `env NAME`, `read PATH`, `get URL [HEADER: VALUE]...` or `post URL BODY [HEADER: VALUE]...`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub action: Vec<String>,
}

impl RunArgs {
    /// A run the daemon can start as asked: a tool, the daemon's own policy and the current directory as the
    /// workspace, and none of the options only a standalone run has.
    pub fn is_plain(&self) -> bool {
        self.tool.is_some()
            && self.config.is_none()
            && self.env.profile.is_none()
            && self.env.workspace.is_none()
            && !self.check
            && !self.allow_degraded
            && self.dns.is_empty()
            && self.resolve.is_empty()
            && self.upstream_ca.is_empty()
            && self.run_id.is_none()
    }
}

fn parse_run_id(s: &str) -> Result<String, String> {
    if s.len() == 16 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        Ok(s.to_string())
    } else {
        Err("a run id is 16 lowercase hex digits".into())
    }
}
