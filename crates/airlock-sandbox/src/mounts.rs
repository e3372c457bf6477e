//! The filesystem a tool sees: a fresh root, built by the sandbox init inside its own mount namespace.
//!
//! Why build a root rather than hide parts of the host's: an allowlist fails closed. Whatever is not bound in (home
//! directories, `/root`, `/var`, the vault, other users' sockets under `/run`) does not exist for the tool, whatever
//! path tricks it tries. What is bound in is read-only unless the policy makes it writable, and `nosuid`/`nodev`.
//!
//! The steps, in order:
//! 1. our copy of the mount tree stops receiving and sending propagation (`MS_SLAVE`, the fix for
//!    "make / slave" failures in containers);
//! 2. a tmpfs on the run's empty root directory; binds, `/tmp`, a minimal `/dev`, a new `/proc` and `/run/airlock`,
//!    parents before children;
//! 3. `pivot_root` into it, and the host's tree is detached;
//! 4. pins (a directory bound over itself, so it cannot be renamed away), masks (a read-only empty directory or
//!    file over each deny path) and read-only overlays, resolved inside the new root so that a symlink planted in
//!    the workspace cannot point a mount at the host;
//! 5. the root, `/dev` and `/run/airlock` themselves become read-only.
//!
//! Each bind source is opened with `O_PATH` and checked to still be the canonical path the supervisor approved
//! before it is mounted through `/proc/self/fd`, so swapping a directory for a symlink between the check and the
//! mount achieves nothing.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::fcntl::{OFlag, open};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::Mode;

use crate::SandboxError;
use crate::spec::{Bind, CA_BUNDLE, CA_CERT, RUN_DIR, SYSTEM_ROOTS, SandboxSpec};

const NONE: Option<&str> = None;

/// One thing to put in the new root, at `target` (an absolute path as the tool sees it).
#[derive(Debug)]
enum Step<'a> {
    Bind(&'a Bind),
    Tmpfs {
        options: String,
        flags: MsFlags,
    },
    Proc,
    /// A host path that is a symlink (`/bin -> usr/bin` on merged-/usr systems) is recreated as the same symlink.
    Symlink(PathBuf),
}

/// Builds the new root and moves into it. Runs in the sandbox init, which owns the mount namespace.
pub fn build_root(spec: &SandboxSpec) -> Result<(), SandboxError> {
    mount(NONE, "/", NONE, MsFlags::MS_REC | MsFlags::MS_SLAVE, NONE)
        .map_err(|e| SandboxError::os("make the mount tree a slave", e))?;
    let root = &spec.root_dir;
    mount(Some("tmpfs"), root, Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some("mode=0755,size=1m"))
        .map_err(|e| SandboxError::os(format!("mount the new root on {}", root.display()), e))?;

    for (target, step) in steps(spec)? {
        place(root, &target, &step)?;
    }
    for file in &spec.files {
        let at = under(root, &file.path);
        std::fs::write(&at, &file.contents)
            .map_err(|e| SandboxError::os(format!("write {}", file.path.display()), e))?;
    }
    if let Some(cert) = &spec.ca_cert {
        let roots = SYSTEM_ROOTS.iter().find_map(|p| std::fs::read(p).ok()).unwrap_or_default();
        let mut bundle = roots;
        if !bundle.is_empty() && !bundle.ends_with(b"\n") {
            bundle.push(b'\n');
        }
        bundle.extend_from_slice(cert.as_bytes());
        for (path, bytes) in [(CA_CERT, cert.as_bytes()), (CA_BUNDLE, &bundle[..])] {
            std::fs::write(under(root, Path::new(path)), bytes)
                .map_err(|e| SandboxError::os(format!("write {path}"), e))?;
        }
    }
    let empty = under(root, Path::new(RUN_DIR)).join("empty");
    std::fs::write(&empty, b"").map_err(|e| SandboxError::os("create the mask file", e))?;
    set_mode(&empty, 0o000)?;

    std::env::set_current_dir(root).map_err(|e| SandboxError::os("enter the new root", e))?;
    // pivot_root(".", ".") stacks the old root under the new one; detaching "." then drops the host's whole tree.
    nix::unistd::pivot_root(".", ".").map_err(|e| SandboxError::os("pivot_root into the new root", e))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| SandboxError::os("detach the host's mount tree", e))?;
    std::env::set_current_dir("/").map_err(|e| SandboxError::os("chdir /", e))?;

    let empty = Path::new(RUN_DIR).join("empty");
    for path in &spec.pinned {
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
            bind_path(path, path)?;
        }
    }
    for path in &spec.masks {
        mask(path, &empty)?;
    }
    for path in &spec.read_only {
        read_only_overlay(path)?;
    }
    for (path, step) in [("/dev", "the minimal /dev"), (RUN_DIR, RUN_DIR), ("/", "the root")] {
        set_attrs(Path::new(path), ATTR_RDONLY, false)
            .map_err(|e| SandboxError::os(format!("make {step} read-only"), e))?;
    }
    Ok(())
}

/// Every mount, sorted so that parents come before their children.
fn steps(spec: &SandboxSpec) -> Result<Vec<(PathBuf, Step<'_>)>, SandboxError> {
    let noexec = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let tmp = format!("mode=1777,size={}", spec.tmp_bytes.max(1 << 20));
    let mut steps: Vec<(PathBuf, Step<'_>)> = vec![
        ("/tmp".into(), Step::Tmpfs { options: tmp.clone(), flags: MsFlags::MS_NOSUID | MsFlags::MS_NODEV }),
        (
            "/dev".into(),
            Step::Tmpfs { options: "mode=0755,size=64k".into(), flags: MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC },
        ),
        ("/dev/shm".into(), Step::Tmpfs { options: tmp, flags: noexec }),
        ("/proc".into(), Step::Proc),
        (RUN_DIR.into(), Step::Tmpfs { options: "mode=0755,size=4m".into(), flags: noexec }),
    ];
    for b in &spec.binds {
        if !b.path.is_absolute() {
            return Err(SandboxError::Invalid(format!("bind {}: not an absolute path", b.path.display())));
        }
        match std::fs::symlink_metadata(&b.path) {
            Ok(m) if m.file_type().is_symlink() => {
                let to = std::fs::read_link(&b.path)
                    .map_err(|e| SandboxError::os(format!("read {}", b.path.display()), e))?;
                steps.push((b.path.clone(), Step::Symlink(to)));
            }
            Ok(_) => steps.push((b.path.clone(), Step::Bind(b))),
            Err(_) => {} // missing: nothing to show
        }
    }
    for t in &steps {
        if t.0.components().any(|c| matches!(c, Component::ParentDir | Component::CurDir)) {
            return Err(SandboxError::Invalid(format!("{}: `.` and `..` are not allowed", t.0.display())));
        }
    }
    steps.sort_by_key(|(t, _)| t.components().count());
    Ok(steps)
}

fn place(root: &Path, target: &Path, step: &Step<'_>) -> Result<(), SandboxError> {
    let at = under(root, target);
    let what = |verb: &str| format!("{verb} {}", target.display());
    match step {
        Step::Tmpfs { options, flags } => {
            mkdirs(&at)?;
            mount(Some("tmpfs"), &at, Some("tmpfs"), *flags, Some(options.as_str()))
                .map_err(|e| SandboxError::os(what("mount a tmpfs on"), e))?;
            if target == Path::new("/dev") {
                populate_dev(&at)?;
            }
        }
        Step::Proc => {
            mkdirs(&at)?;
            mount(Some("proc"), &at, Some("proc"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC, NONE)
                .map_err(|e| SandboxError::os("mount a new /proc", e))?;
            // Kernel tunables and the sysrq trigger stay read-only, whatever a future kernel lets a namespace write.
            for sub in ["sys", "sysrq-trigger"] {
                let p = at.join(sub);
                if p.exists() {
                    bind_path(&p, &p)?;
                    set_attrs(&p, ATTR_RDONLY | ATTR_NOSUID | ATTR_NODEV | ATTR_NOEXEC, true)
                        .map_err(|e| SandboxError::os(format!("make /proc/{sub} read-only"), e))?;
                }
            }
        }
        Step::Symlink(to) => {
            if let Some(parent) = at.parent() {
                mkdirs(parent)?;
            }
            if std::fs::symlink_metadata(&at).is_err() {
                std::os::unix::fs::symlink(to, &at).map_err(|e| SandboxError::os(what("recreate the symlink"), e))?;
            }
        }
        Step::Bind(b) => {
            let source = open_checked(&b.path)?;
            let is_dir = std::fs::metadata(fd_path(&source)).map(|m| m.is_dir()).unwrap_or(false);
            if std::fs::symlink_metadata(&at).is_err() {
                if is_dir { mkdirs(&at)? } else { touch(&at)? }
            }
            bind_path(&fd_path(&source), &at)?;
            let mut attrs = ATTR_NOSUID;
            if !b.device {
                attrs |= ATTR_NODEV;
            }
            if !b.writable {
                attrs |= ATTR_RDONLY;
            }
            set_attrs(&at, attrs, true).map_err(|e| SandboxError::os(what("restrict the bind of"), e))?;
        }
    }
    Ok(())
}

/// The minimal `/dev`: the harmless character devices (bound from the host, which is the only way a user namespace
/// can have them), the usual symlinks, and nothing else: no disks, no `/dev/tty`, no `/dev/kmsg`.
fn populate_dev(dev: &Path) -> Result<(), SandboxError> {
    for name in ["null", "zero", "full", "random", "urandom"] {
        let host = Path::new("/dev").join(name);
        let at = dev.join(name);
        touch(&at)?;
        bind_path(&host, &at)?;
        set_attrs(&at, ATTR_NOSUID | ATTR_NOEXEC, false)
            .map_err(|e| SandboxError::os(format!("restrict /dev/{name}"), e))?;
    }
    for (name, to) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        std::os::unix::fs::symlink(to, dev.join(name))
            .map_err(|e| SandboxError::os(format!("create /dev/{name}"), e))?;
    }
    Ok(())
}

/// Hides `path` (as the tool sees it) behind an empty read-only directory or file. Resolved inside the new root: a
/// symlink can only lead to something the tool could see anyway.
fn mask(path: &Path, empty: &Path) -> Result<(), SandboxError> {
    let Ok(meta) = std::fs::metadata(path) else { return Ok(()) };
    let what = |e: std::io::Error| SandboxError::os(format!("mask {}", path.display()), e);
    if meta.is_dir() {
        mount(
            Some("tmpfs"),
            path,
            Some("tmpfs"),
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            Some("mode=0000,size=4k,nr_inodes=1"),
        )
        .map_err(|e| what(e.into()))?;
    } else {
        bind_path(empty, path)?;
        set_attrs(path, ATTR_RDONLY | ATTR_NOSUID | ATTR_NODEV | ATTR_NOEXEC, false).map_err(what)?;
    }
    Ok(())
}

fn read_only_overlay(path: &Path) -> Result<(), SandboxError> {
    if std::fs::symlink_metadata(path).is_err() {
        return Ok(());
    }
    bind_path(path, path)?;
    set_attrs(path, ATTR_RDONLY | ATTR_NOSUID | ATTR_NODEV, false)
        .map_err(|e| SandboxError::os(format!("make {} read-only", path.display()), e))
}

/// Opens a bind source without following a final symlink and checks that it is still the path the supervisor
/// approved (which it canonicalised): any symlink or rename since then makes the paths differ.
fn open_checked(path: &Path) -> Result<OwnedFd, SandboxError> {
    let fd = open(path, OFlag::O_PATH | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW, Mode::empty())
        .map_err(|e| SandboxError::os(format!("open {}", path.display()), e))?;
    let now = std::fs::read_link(fd_path(&fd)).map_err(|e| SandboxError::os(format!("check {}", path.display()), e))?;
    if now != path {
        return Err(SandboxError::Invalid(format!(
            "{} changed since the policy check (it now resolves to {}); refusing to bind it",
            path.display(),
            now.display()
        )));
    }
    Ok(fd)
}

fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

fn bind_path(source: &Path, target: &Path) -> Result<(), SandboxError> {
    mount(Some(source), target, NONE, MsFlags::MS_BIND | MsFlags::MS_REC, NONE)
        .map_err(|e| SandboxError::os(format!("bind {} on {}", source.display(), target.display()), e))
}

fn under(root: &Path, target: &Path) -> PathBuf {
    root.join(target.strip_prefix("/").unwrap_or(target))
}

fn mkdirs(p: &Path) -> Result<(), SandboxError> {
    std::fs::create_dir_all(p).map_err(|e| SandboxError::os(format!("create {}", p.display()), e))
}

fn touch(p: &Path) -> Result<(), SandboxError> {
    if let Some(parent) = p.parent() {
        mkdirs(parent)?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(p)
        .map(drop)
        .map_err(|e| SandboxError::os(format!("create {}", p.display()), e))
}

fn set_mode(p: &Path, mode: u32) -> Result<(), SandboxError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        .map_err(|e| SandboxError::os(format!("chmod {}", p.display()), e))
}

const ATTR_RDONLY: u64 = 0x1;
const ATTR_NOSUID: u64 = 0x2;
const ATTR_NODEV: u64 = 0x4;
const ATTR_NOEXEC: u64 = 0x8;
const AT_RECURSIVE: libc::c_uint = 0x8000;

/// `struct mount_attr` of mount_setattr(2).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Sets mount attributes on the mount at `path` (and every mount below it when `recursive`). mount_setattr(2)
/// keeps the flags a user namespace may not clear, which a classic `MS_REMOUNT` would have to restate by hand; on
/// kernels before 5.12 the classic remount is the fallback, with the current flags read back first.
fn set_attrs(path: &Path, attrs: u64, recursive: bool) -> std::io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| std::io::Error::other("path has a NUL byte"))?;
    let attr = MountAttr { attr_set: attrs, attr_clr: 0, propagation: 0, userns_fd: 0 };
    let flags = if recursive { AT_RECURSIVE } else { 0 };
    // SAFETY: `c` is a valid NUL-terminated path that outlives the call, and `attr` is a properly laid out
    // `struct mount_attr` whose size is passed alongside; the kernel only reads it.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            c.as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::ENOSYS) {
        return Err(err);
    }
    let current = nix::sys::statvfs::statvfs(path)?;
    let mut ms = MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
    for (bit, flag, vfs) in [
        (ATTR_RDONLY, MsFlags::MS_RDONLY, nix::sys::statvfs::FsFlags::ST_RDONLY),
        (ATTR_NOSUID, MsFlags::MS_NOSUID, nix::sys::statvfs::FsFlags::ST_NOSUID),
        (ATTR_NODEV, MsFlags::MS_NODEV, nix::sys::statvfs::FsFlags::ST_NODEV),
        (ATTR_NOEXEC, MsFlags::MS_NOEXEC, nix::sys::statvfs::FsFlags::ST_NOEXEC),
    ] {
        if attrs & bit != 0 || current.flags().contains(vfs) {
            ms |= flag;
        }
    }
    mount(NONE, path, NONE, ms, NONE).map_err(std::io::Error::from)
}
