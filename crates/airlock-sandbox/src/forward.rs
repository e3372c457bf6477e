//! The sandbox's only way out: `127.0.0.1:PORT` inside, forwarded to the broker's per-run Unix socket.
//!
//! Why a forwarder rather than handing the tool the socket: every HTTP client understands `HTTP_PROXY=http://
//! 127.0.0.1:PORT`, few understand a Unix socket path. The socket is per run, so the broker knows which run, tool
//! and agent is calling without trusting anything the tool says. The forwarder only moves bytes; every decision is
//! the broker's.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;

use crate::SandboxError;

/// At most this many connections are forwarded at once; more wait for a slot. A tool cannot make the init hold
/// unbounded sockets or tasks.
pub const MAX_CONNECTIONS: usize = 512;

/// Buffer per direction per connection: large enough that a download is not chopped into tiny copies.
const BUFFER: usize = 64 << 10;

/// Binds the forwarder's listener on `127.0.0.1:port`. Done before the tool starts, so its first request finds it.
pub fn bind(port: u16) -> Result<TcpListener, SandboxError> {
    TcpListener::bind(("127.0.0.1", port)).map_err(|e| SandboxError::os(format!("listen on 127.0.0.1:{port}"), e))
}

/// Runs the forwarder on its own thread for as long as the process lives.
pub fn spawn(listener: TcpListener, socket: PathBuf) -> Result<(), SandboxError> {
    listener.set_nonblocking(true).map_err(|e| SandboxError::os("make the forwarder non-blocking", e))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(|e| SandboxError::os("start the forwarder", e))?;
    std::thread::Builder::new()
        .name("forwarder".into())
        .spawn(move || runtime.block_on(serve(listener, socket)))
        .map_err(|e| SandboxError::os("start the forwarder thread", e))?;
    Ok(())
}

async fn serve(listener: TcpListener, socket: PathBuf) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let socket = Arc::new(socket);
    loop {
        let Ok(permit) = Arc::clone(&slots).acquire_owned().await else { return };
        let Ok((mut tcp, _)) = listener.accept().await else { continue };
        let socket = Arc::clone(&socket);
        tokio::spawn(async move {
            let _permit = permit;
            let _ = tcp.set_nodelay(true);
            // A broker that is gone or refuses: the tool sees its connection closed, like any dead proxy.
            let Ok(mut unix) = tokio::net::UnixStream::connect(socket.as_path()).await else { return };
            let _ = tokio::io::copy_bidirectional_with_sizes(&mut tcp, &mut unix, BUFFER, BUFFER).await;
        });
    }
}
