//! One audit log shared by several Airlock processes.
//!
//! Why: the log has a single writer (its file lock, see [`crate::segment`]), yet several `airlock run` processes
//! (each with an egress broker that records every decision) and `airlock kill` / `lockdown` commands run at the
//! same time on one AIRLOCK_HOME. Until a daemon owns the log, whichever process takes the lock becomes the
//! *owner*: it writes the log and serves the others on a Unix socket. The others are *clients*: each record goes
//! to the owner as one JSON line, and the owner's reply means the record is in the log (durable, when asked).
//! Nobody waits for the lock, and nobody drops a record because someone else holds it.
//!
//! Handover: when the owner closes, it stops accepting, closes its clients' connections, and only then closes the
//! log (every record it acknowledged was appended before the acknowledgement, so the final checkpoint covers it).
//! A client whose connection breaks takes the lock itself, or connects to whoever did, and sends the record it
//! had in flight once more. If it can do neither for [`TAKEOVER_WINDOW`], the append fails: fail closed.
//!
//! Protocol: one JSON object per line each way, one request at a time per connection. Request
//! `{"durable":true,"event":{...}}` (the OCSF event, as [`Event::to_value`] gives it); reply
//! `{"seq":N,"logged_ms":M}` or `{"error":"..."}`. A request line is at most [`MAX_REQUEST_BYTES`]; a longer one
//! gets an error and the connection is closed. A malformed one gets an error and the connection stays.
//!
//! Who may connect: the socket is mode 0600 in AIRLOCK_HOME (0700), and the owner checks each peer's uid
//! (`SO_PEERCRED`): this user or root only. What crosses the socket is exactly the event that goes into the log
//! (values that must not be stored are already keyed hashes), and errors, which never carry record contents.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{AuditError, io_err};
use crate::event::Event;
use crate::lock;
use crate::writer::{AuditLog, LogStatus, Receipt, SignedCheckpoint};

/// Longest request line the owner reads (the newline not counted). Events are a few KiB; this is generous.
pub const MAX_REQUEST_BYTES: usize = 1 << 20;
/// Connections the owner serves at once; more are refused. Each is a thread.
pub const MAX_CONNECTIONS: usize = 256;
/// How long a client keeps trying to take the lock or reach an owner before it gives up (an owner starting up
/// or just gone takes milliseconds; a second is spent on its final checkpoint at most).
pub const TAKEOVER_WINDOW: Duration = Duration::from_secs(10);
/// How long a client waits for the owner's reply. An owner that stays silent this long is hung, not busy (a
/// durable append waits for one `fdatasync`).
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest reply line a client reads: replies are a receipt or an error message.
const MAX_REPLY_BYTES: usize = 64 << 10;
/// Pause between attempts to take the lock or connect.
const RETRY_SLEEP: Duration = Duration::from_millis(20);

/// Opens the real log, waiting at most the given time for its lock (the caller supplies signer, options, sinks).
pub type OpenLog = Box<dyn Fn(Duration) -> Result<AuditLog, AuditError> + Send + Sync>;

/// Something records can be appended to: the log itself, or a connection to the process that holds it.
pub trait Append: Send + Sync {
    /// Appends `event` and returns once it is durable. An `Err` means the decision it describes must be denied.
    fn append(&self, event: Event) -> Result<Receipt, AuditError>;
    /// Appends `event`; may return before it reaches the disk (see [`AuditLog::append_buffered`]).
    fn append_buffered(&self, event: Event) -> Result<Receipt, AuditError>;
}

impl Append for AuditLog {
    fn append(&self, event: Event) -> Result<Receipt, AuditError> {
        AuditLog::append(self, event)
    }

    fn append_buffered(&self, event: Event) -> Result<Receipt, AuditError> {
        AuditLog::append_buffered(self, event)
    }
}

/// The audit log as this process shares it: the owner's log and server, or a client's connection. A client can
/// become the owner (see the module docs), never the other way round.
pub struct SharedLog {
    socket: PathBuf,
    open_log: OpenLog,
    role: RwLock<Role>,
}

enum Role {
    Owner(Server),
    Client(Client),
}

impl fmt::Debug for SharedLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let role = match &*read(&self.role) {
            Role::Owner(_) => "owner",
            Role::Client(c) if c.is_connected() => "client",
            Role::Client(_) => "client (disconnected)",
        };
        f.debug_struct("SharedLog").field("socket", &self.socket).field("role", &role).finish_non_exhaustive()
    }
}

impl SharedLog {
    /// Becomes the log's owner when its lock is free (then serves other processes on `socket`), else connects to
    /// the owner at `socket`. `open_log(lock_timeout)` opens the real log (the caller supplies signer, options and
    /// sinks). When the lock is taken but nobody answers at `socket` (an owner starting up or just gone), keeps
    /// trying both for [`TAKEOVER_WINDOW`].
    pub fn open(socket: &Path, open_log: OpenLog) -> Result<SharedLog, AuditError> {
        let role = acquire(socket, &open_log)?;
        Ok(SharedLog { socket: socket.to_path_buf(), open_log, role: RwLock::new(role) })
    }

    pub fn is_owner(&self) -> bool {
        matches!(*read(&self.role), Role::Owner(_))
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The log's status ([`AuditLog::status`]) while this process holds it; `None` for a client, which has no view
    /// of the owner's log.
    pub fn status(&self) -> Option<LogStatus> {
        match &*read(&self.role) {
            Role::Owner(server) => server.log.as_ref().map(|log| log.status()),
            Role::Client(_) => None,
        }
    }

    /// Signs and stores a checkpoint of every durable record ([`AuditLog::checkpoint`]) while this process holds the
    /// log; `None` for a client (the owner signs on its own schedule).
    pub fn checkpoint(&self) -> Option<Result<SignedCheckpoint, AuditError>> {
        match &*read(&self.role) {
            Role::Owner(server) => Some(server.log.as_ref().ok_or(AuditError::Closed).and_then(|log| log.checkpoint())),
            Role::Client(_) => None,
        }
    }

    /// Owner: stop serving, close the log (final checkpoint); its clients take over. Client: disconnect.
    pub fn close(self) -> Result<(), AuditError> {
        match self.role.into_inner().unwrap_or_else(PoisonError::into_inner) {
            Role::Owner(mut server) => server.close(),
            // Closing the connection is all the goodbye the owner needs.
            Role::Client(_) => Ok(()),
        }
    }

    fn submit(&self, event: Event, durable: bool) -> Result<Receipt, AuditError> {
        let request = {
            let role = read(&self.role);
            let client = match &*role {
                Role::Owner(server) => return server.append(event, durable),
                Role::Client(client) => client,
            };
            let request = Request::new(event, durable)?;
            match client.request(&request.line) {
                Ok(receipt) => return Ok(receipt),
                Err(Failure::Failed(e)) => return Err(e),
                Err(Failure::Broken(_)) => request,
            }
        };
        // The owner went away, perhaps after appending this record but before replying. Send it again, to whoever
        // holds the log now (maybe this process): a duplicate record is better than a lost one. Owners can hand over
        // in a chain (several runs ending at once, each holding the log in turn), so this goes on until a receipt,
        // a final refusal, or the takeover window is spent.
        let deadline = Instant::now() + TAKEOVER_WINDOW;
        loop {
            let mut role = write(&self.role);
            // Another thread may have reconnected or taken over meanwhile; then use what it found.
            if let Role::Client(client) = &*role
                && !client.is_connected()
            {
                *role = acquire(&self.socket, &self.open_log)?;
            }
            let reason = match &*role {
                Role::Owner(server) => return server.append(request.into_event()?, durable),
                Role::Client(client) => match client.request(&request.line) {
                    Ok(receipt) => return Ok(receipt),
                    Err(Failure::Failed(e)) => return Err(e),
                    Err(Failure::Broken(reason)) => reason,
                },
            };
            if Instant::now() >= deadline {
                return Err(AuditError::Shared {
                    socket: self.socket.clone(),
                    reason: format!(
                        "the connection to the log's owner kept breaking for {} s: {reason}",
                        TAKEOVER_WINDOW.as_secs()
                    ),
                });
            }
            drop(role);
            std::thread::sleep(RETRY_SLEEP);
        }
    }
}

impl Append for SharedLog {
    fn append(&self, event: Event) -> Result<Receipt, AuditError> {
        self.submit(event, true)
    }

    fn append_buffered(&self, event: Event) -> Result<Receipt, AuditError> {
        self.submit(event, false)
    }
}

fn read(role: &RwLock<Role>) -> std::sync::RwLockReadGuard<'_, Role> {
    role.read().unwrap_or_else(PoisonError::into_inner)
}

fn write(role: &RwLock<Role>) -> std::sync::RwLockWriteGuard<'_, Role> {
    role.write().unwrap_or_else(PoisonError::into_inner)
}

/// Takes the lock and starts serving, or connects to whoever holds it; retries both while neither works.
fn acquire(socket: &Path, open_log: &OpenLog) -> Result<Role, AuditError> {
    let deadline = Instant::now() + TAKEOVER_WINDOW;
    loop {
        match open_log(Duration::ZERO) {
            Ok(log) => return Server::start(socket, log).map(Role::Owner),
            Err(AuditError::Locked { .. }) => {}
            Err(e) => return Err(e),
        }
        let why = match Client::connect(socket) {
            Ok(client) => return Ok(Role::Client(client)),
            // Missing: the owner is starting up or has just let go. Refused: it died and left its socket behind
            // (its lock went with it, so the next round takes over).
            Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused) => e,
            Err(e) => return Err(AuditError::Io { path: socket.to_path_buf(), op: "connect", source: e }),
        };
        if Instant::now() >= deadline {
            return Err(AuditError::Shared {
                socket: socket.to_path_buf(),
                reason: format!(
                    "another process holds the audit log but does not serve it here ({why}), and its lock stayed \
                     taken for {} s; the decision must be denied",
                    TAKEOVER_WINDOW.as_secs()
                ),
            });
        }
        std::thread::sleep(RETRY_SLEEP);
    }
}

/// A record on its way to the owner: the line to send, and the event, should this process become the owner.
struct Request {
    line: Vec<u8>,
    event: Value,
}

#[derive(Serialize)]
struct RequestOut<'a> {
    durable: bool,
    event: &'a Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestIn {
    durable: bool,
    event: Value,
}

#[derive(Serialize, Deserialize, Default)]
struct Reply {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    logged_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl Request {
    fn new(event: Event, durable: bool) -> Result<Request, AuditError> {
        let event = event.into_value();
        let mut line = serde_json::to_vec(&RequestOut { durable, event: &event })
            .map_err(|e| AuditError::InvalidEvent(e.to_string()))?;
        line.push(b'\n');
        Ok(Request { line, event })
    }

    fn into_event(self) -> Result<Event, AuditError> {
        Event::from_value(self.event)
    }
}

impl Reply {
    fn error(message: impl Into<String>) -> Reply {
        Reply { error: Some(message.into()), ..Reply::default() }
    }

    fn line(&self) -> Vec<u8> {
        // Plain integers and a string: serialising cannot fail.
        let mut line = serde_json::to_vec(self).unwrap_or_else(|_| br#"{"error":"internal"}"#.to_vec());
        line.push(b'\n');
        line
    }
}

/// Why a client's request did not get a receipt.
enum Failure {
    /// The connection broke: the owner is gone and the record may or may not be in. Worth one resend elsewhere.
    Broken(String),
    /// The owner answered with an error, or is hung, or spoke nonsense: final for this record.
    Failed(AuditError),
}

/// A client's connection to the owner. `None` once it broke (the next append reconnects).
struct Client {
    socket: PathBuf,
    io: Mutex<Option<ClientIo>>,
}

struct ClientIo {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Client {
    fn connect(socket: &Path) -> io::Result<Client> {
        let stream = UnixStream::connect(socket)?;
        stream.set_read_timeout(Some(REPLY_TIMEOUT))?;
        stream.set_write_timeout(Some(REPLY_TIMEOUT))?;
        let reader = BufReader::new(stream.try_clone()?);
        Ok(Client { socket: socket.to_path_buf(), io: Mutex::new(Some(ClientIo { reader, writer: stream })) })
    }

    fn is_connected(&self) -> bool {
        lock(&self.io).is_some()
    }

    /// Sends one request line and reads its reply. One request at a time: the mutex is held throughout.
    fn request(&self, line: &[u8]) -> Result<Receipt, Failure> {
        let mut guard = lock(&self.io);
        let Some(io) = guard.as_mut() else { return Err(Failure::Broken("not connected".into())) };
        let failed = |reason: String| Failure::Failed(AuditError::Shared { socket: self.socket.clone(), reason });
        let hung = |e: &io::Error| matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock);
        let outcome = match io.writer.write_all(line) {
            Err(e) if hung(&e) => Err(failed(format!("the log's owner took no request for {REPLY_TIMEOUT:?}"))),
            Err(e) => Err(Failure::Broken(e.to_string())),
            Ok(()) => {
                let mut reply = Vec::new();
                match (&mut io.reader).take(MAX_REPLY_BYTES as u64 + 1).read_until(b'\n', &mut reply) {
                    Err(e) if hung(&e) => {
                        Err(failed(format!("the log's owner did not reply within {REPLY_TIMEOUT:?}")))
                    }
                    Err(e) => Err(Failure::Broken(e.to_string())),
                    Ok(_) if reply.last() == Some(&b'\n') => match serde_json::from_slice::<Reply>(&reply) {
                        Ok(Reply { error: Some(e), .. }) => {
                            // The owner is fine and the connection too; this record was refused.
                            return Err(failed(format!("the log's owner refused the record: {e}")));
                        }
                        Ok(Reply { seq: Some(seq), logged_ms: Some(logged_ms), .. }) => {
                            return Ok(Receipt { seq, logged_ms });
                        }
                        _ => Err(failed("the log's owner sent a malformed reply".into())),
                    },
                    Ok(_) if reply.len() > MAX_REPLY_BYTES => {
                        Err(failed("the log's owner sent an oversized reply".into()))
                    }
                    Ok(_) => Err(Failure::Broken("the log's owner closed the connection".into())),
                }
            }
        };
        // Any failure leaves the stream out of step (a late reply, half a line): start afresh next time.
        *guard = None;
        outcome
    }
}

/// The owner's side: the log, the listener, and one thread per connection.
struct Server {
    socket: PathBuf,
    /// `None` once closed.
    log: Option<Arc<AuditLog>>,
    listener: Arc<UnixListener>,
    conns: Arc<Conns>,
    acceptor: Option<JoinHandle<()>>,
}

/// The connections being served, so that closing can end them.
struct Conns {
    stopping: AtomicBool,
    state: Mutex<ConnState>,
}

#[derive(Default)]
struct ConnState {
    next_id: u64,
    /// A handle on each open connection's socket, to shut it down on close.
    open: HashMap<u64, UnixStream>,
    handlers: Vec<JoinHandle<()>>,
}

impl Server {
    fn start(socket: &Path, log: AuditLog) -> Result<Server, AuditError> {
        let listener = Arc::new(listen(socket)?);
        let log = Arc::new(log);
        let conns = Arc::new(Conns { stopping: AtomicBool::new(false), state: Mutex::new(ConnState::default()) });
        let acceptor = {
            let (listener, log, conns) = (Arc::clone(&listener), Arc::clone(&log), Arc::clone(&conns));
            std::thread::Builder::new()
                .name("airlock-audit-share".into())
                .spawn(move || accept_loop(&listener, &log, &conns))
                .map_err(io_err(socket, "start the audit socket thread"))?
        };
        Ok(Server { socket: socket.to_path_buf(), log: Some(log), listener, conns, acceptor: Some(acceptor) })
    }

    fn append(&self, event: Event, durable: bool) -> Result<Receipt, AuditError> {
        let log = self.log.as_ref().ok_or(AuditError::Closed)?;
        if durable { log.append(event) } else { log.append_buffered(event) }
    }

    /// Stops accepting, ends every connection (its client takes over), waits for the handlers, closes the log.
    fn close(&mut self) -> Result<(), AuditError> {
        let Some(log) = self.log.take() else { return Ok(()) };
        self.conns.stopping.store(true, Ordering::SeqCst);
        // Still ours to remove: only the lock holder binds here. Clients arriving now find no socket and retry.
        let _ = fs::remove_file(&self.socket);
        // Wakes the blocked accept (Linux returns EINVAL from it).
        let _ = nix::sys::socket::shutdown(self.listener.as_raw_fd(), nix::sys::socket::Shutdown::Both);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        // The acceptor is gone, so every connection is registered here. A handler in the middle of an append
        // finishes it; its reply may not get out, and then the client resends.
        let handlers = {
            let mut st = lock(&self.conns.state);
            for stream in st.open.values() {
                let _ = stream.shutdown(Shutdown::Both);
            }
            std::mem::take(&mut st.handlers)
        };
        for h in handlers {
            let _ = h.join();
        }
        // Everything acknowledged was appended before its acknowledgement: the final checkpoint covers it.
        match Arc::try_unwrap(log) {
            Ok(log) => log.close().map(drop),
            Err(_) => Err(AuditError::Shared {
                socket: self.socket.clone(),
                reason: "the log is still in use by a connection; it closes when that ends".into(),
            }),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// Binds and listens on `socket`, mode 0600, replacing a dead owner's socket but nothing else.
fn listen(socket: &Path) -> Result<UnixListener, AuditError> {
    use nix::sys::socket::{AddressFamily, Backlog, SockFlag, SockType, UnixAddr};
    let shared_err = |reason: String| AuditError::Shared { socket: socket.to_path_buf(), reason };
    let errno =
        |op: &'static str| move |e: nix::Error| AuditError::Io { path: socket.to_path_buf(), op, source: e.into() };
    match fs::symlink_metadata(socket) {
        // Only the lock holder gets here, so a socket left behind is a dead owner's.
        Ok(meta) if meta.file_type().is_socket() => {
            fs::remove_file(socket).map_err(io_err(socket, "remove stale socket"))?;
        }
        Ok(_) => return Err(shared_err("exists and is not a socket; not replacing it".into())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(AuditError::Io { path: socket.to_path_buf(), op: "stat", source: e }),
    }
    let fd = nix::sys::socket::socket(AddressFamily::Unix, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)
        .map_err(errno("create socket"))?;
    let addr = UnixAddr::new(socket).map_err(errno("socket address"))?;
    nix::sys::socket::bind(fd.as_raw_fd(), &addr).map_err(errno("bind"))?;
    // Not listening yet, so nobody can connect before the mode is 0600 (a umask would change it for every thread).
    fs::set_permissions(socket, fs::Permissions::from_mode(0o600)).map_err(io_err(socket, "chmod"))?;
    nix::sys::socket::listen(&fd, Backlog::new(128).map_err(errno("listen"))?).map_err(errno("listen"))?;
    Ok(UnixListener::from(fd))
}

fn accept_loop(listener: &UnixListener, log: &Arc<AuditLog>, conns: &Arc<Conns>) {
    loop {
        let accepted = listener.accept();
        if conns.stopping.load(Ordering::SeqCst) {
            return; // a connection accepted just now is dropped: its client sees it close and retries
        }
        match accepted {
            Ok((stream, _)) => admit(stream, log, conns),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // Out of descriptors or memory: pause instead of spinning; the connection waits in the backlog.
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Checks who is calling and hands the connection to a thread of its own, or refuses it.
fn admit(stream: UnixStream, log: &Arc<AuditLog>, conns: &Arc<Conns>) {
    if !peer_allowed(&stream) {
        return; // not ours to talk to: closed without a word
    }
    let mut st = lock(&conns.state);
    // Reap finished handlers, so a long-lived owner does not pile up their handles.
    let (done, running): (Vec<_>, Vec<_>) = std::mem::take(&mut st.handlers).into_iter().partition(|h| h.is_finished());
    st.handlers = running;
    for h in done {
        let _ = h.join();
    }
    if st.open.len() >= MAX_CONNECTIONS {
        drop(st);
        refuse(stream, "too many connections to the audit log's owner");
        return;
    }
    let Ok(handle) = stream.try_clone() else { return };
    let id = st.next_id;
    st.next_id += 1;
    st.open.insert(id, handle);
    let (log, conns2) = (Arc::clone(log), Arc::clone(conns));
    let spawned = std::thread::Builder::new().name("airlock-audit-conn".into()).spawn(move || {
        serve(&stream, &log);
        lock(&conns2.state).open.remove(&id);
    });
    match spawned {
        Ok(h) => st.handlers.push(h),
        // The closure (and the stream in it) is gone: the client sees the connection close.
        Err(_) => {
            st.open.remove(&id);
        }
    }
}

/// This user and root may append; anyone else (who somehow reached the socket) may not.
fn peer_allowed(stream: &UnixStream) -> bool {
    match nix::sys::socket::getsockopt(stream, nix::sys::socket::sockopt::PeerCredentials) {
        Ok(cred) => cred.uid() == 0 || cred.uid() == nix::unistd::geteuid().as_raw(),
        Err(_) => false,
    }
}

/// One error line, without waiting on a peer that does not read, then the connection closes.
fn refuse(mut stream: UnixStream, why: &str) {
    let _ = stream.set_nonblocking(true);
    let _ = stream.write_all(&Reply::error(why).line());
}

/// Serves one connection: a request line, an append, a reply, until the client leaves or breaks the framing.
fn serve(stream: &UnixStream, log: &AuditLog) {
    let Ok(read_half) = stream.try_clone() else { return };
    let mut reader = BufReader::new(read_half);
    let mut writer = stream;
    let mut line = Vec::new();
    loop {
        line.clear();
        match (&mut reader).take(MAX_REQUEST_BYTES as u64 + 1).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if line.last() != Some(&b'\n') {
            if line.len() > MAX_REQUEST_BYTES {
                // The rest of the line is still coming: there is no telling where the next request starts.
                let why = format!("request longer than {MAX_REQUEST_BYTES} bytes; closing the connection");
                let _ = writer.write_all(&Reply::error(why).line());
            }
            return; // else the client left in the middle of a line
        }
        line.pop();
        let reply = match handle(&line, log) {
            Ok(r) => Reply { seq: Some(r.seq), logged_ms: Some(r.logged_ms), error: None },
            Err(e) => Reply::error(e),
        };
        if writer.write_all(&reply.line()).is_err() {
            return;
        }
    }
}

fn handle(line: &[u8], log: &AuditLog) -> Result<Receipt, String> {
    let request: RequestIn = serde_json::from_slice(line).map_err(|e| format!("malformed request: {e}"))?;
    let event = Event::from_value(request.event).map_err(|e| e.to_string())?;
    let appended = if request.durable { log.append(event) } else { log.append_buffered(event) };
    appended.map_err(|e| e.to_string())
}
