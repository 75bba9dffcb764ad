//! For tests and benches that drive `headway node` processes: the command for one on loopback,
//! plain HTTP/1.1 GETs against its API, a free loopback port. Included with `#[path]`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// `headway node` with this data dir and genesis, listening on an ephemeral loopback TCP port,
/// dialing `bootnodes`, serving its HTTP API on `http`, logging at `log_level`; stdin closed.
/// The caller sets stdout and stderr and spawns it.
pub fn node_command(
    genesis: &Path,
    data_dir: &Path,
    bootnodes: &[libp2p::Multiaddr],
    http: SocketAddr,
    log_level: &str,
) -> Command {
    let bootnodes: Vec<String> = bootnodes.iter().map(ToString::to_string).collect();
    let mut command = Command::new(env!("CARGO_BIN_EXE_headway"));
    command
        .arg("node")
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--genesis")
        .arg(genesis)
        .arg("--listen")
        .arg("/ip4/127.0.0.1/tcp/0")
        .arg("--bootnode")
        .arg(bootnodes.join(","))
        .arg("--http")
        .arg(http.to_string())
        .env("HEADWAY_LOG", log_level)
        .stdin(Stdio::null());
    command
}

/// A loopback TCP port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// The body of `GET path` if the answer is `200` (plain or chunked); `None` on any failure.
pub fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let response = String::from_utf8(response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.1 200") {
        return None;
    }
    let chunked = head
        .lines()
        .any(|l| l.to_ascii_lowercase().replace(' ', "") == "transfer-encoding:chunked");
    if !chunked {
        return Some(body.to_string());
    }
    // Chunked: `size\r\ndata\r\n`..., ending with a zero size.
    let mut rest = body;
    let mut out = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n")?;
        let size = usize::from_str_radix(size.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out.push_str(after.get(..size)?);
        rest = after.get(size + 2..)?;
    }
}
