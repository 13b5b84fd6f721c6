//! Benchmark helpers: a minimal HTTP/1.1 reader shared by the native
//! baseline server and the load generator (std only, keep-alive).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

/// A parsed HTTP message head plus body.
#[derive(Debug)]
pub struct Message {
    /// Request line or status line.
    pub start: String,
    /// Lower-cased header names with their values.
    pub headers: Vec<(String, String)>,
    /// Body (Content-Length or chunked).
    pub body: Vec<u8>,
}

impl Message {
    /// A header value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one HTTP/1.1 message; `Ok(None)` on a clean close.
pub fn read_message(r: &mut BufReader<TcpStream>) -> std::io::Result<Option<Message>> {
    let mut start = String::new();
    if r.read_line(&mut start)? == 0 {
        return Ok(None);
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let mut msg = Message {
        start: start.trim_end().to_string(),
        headers,
        body: Vec::new(),
    };
    if let Some(len) = msg
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        msg.body = vec![0; len];
        r.read_exact(&mut msg.body)?;
    } else if msg
        .header("transfer-encoding")
        .is_some_and(|v| v.contains("chunked"))
    {
        loop {
            let mut size = String::new();
            r.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim(), 16).map_err(std::io::Error::other)?;
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk)?;
            if n == 0 {
                break;
            }
            msg.body.extend_from_slice(&chunk[..n]);
        }
    }
    Ok(Some(msg))
}

/// Writes a response with a known length.
pub fn write_response(
    w: &mut impl Write,
    status: u16,
    content_type: &str,
    body: &[u8],
) -> std::io::Result<()> {
    // One write: a small head and a small body in two would meet Nagle's
    // algorithm and the client's delayed ACK (40 ms a request).
    let mut out = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    w.write_all(&out)?;
    w.flush()
}

/// The median of `values` (sorted in place); 0 when there are none.
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    percentile(values, 0.5)
}

/// The `q` quantile (0..=1) of `sorted`, ascending: the value at rank
/// `len * q` (the last for q = 1); 0 when there are none.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    let at = ((sorted.len() as f64 * q) as usize).min(sorted.len().saturating_sub(1));
    sorted.get(at).copied().unwrap_or(0.0)
}

#[cfg(not(target_os = "wasi"))]
pub mod classify;
pub mod report;
#[cfg(not(target_os = "wasi"))]
pub mod sidecar;
pub mod steps;
pub mod trace;

/// `GET path` from `addr` (host:port) on a new connection.
#[cfg(not(target_os = "wasi"))]
pub fn http_get(addr: &str, path: &str) -> std::io::Result<Message> {
    get_on(TcpStream::connect(addr)?, addr, path)
}

/// [`http_get`] that gives up after `timeout` (to connect, and between
/// reads).
#[cfg(not(target_os = "wasi"))]
pub fn http_get_within(
    addr: &str,
    path: &str,
    timeout: std::time::Duration,
) -> std::io::Result<Message> {
    use std::net::ToSocketAddrs;
    let to = addr
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::other(format!("{addr}: no address")))?;
    let stream = TcpStream::connect_timeout(&to, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    get_on(stream, addr, path)
}

/// `GET path` on `stream`, connected to `addr`, which then closes.
#[cfg(not(target_os = "wasi"))]
fn get_on(stream: TcpStream, addr: &str, path: &str) -> std::io::Result<Message> {
    let mut w = stream.try_clone()?;
    write!(
        w,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    read_message(&mut BufReader::new(stream))?
        .ok_or_else(|| std::io::Error::other(format!("{addr}: closed without an answer")))
}

#[cfg(test)]
mod tests {
    use super::{median, percentile};

    #[test]
    fn percentiles_are_ranks_of_the_sorted_values() {
        let sorted: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&sorted, 0.5), 51.0);
        assert_eq!(percentile(&sorted, 0.99), 100.0);
        assert_eq!(percentile(&sorted, 1.0), 100.0);
        assert_eq!(percentile(&sorted, 0.0), 1.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
    }
}
