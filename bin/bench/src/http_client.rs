//! A minimal HTTP/1.1 client over one keep-alive TCP connection: what the end-to-end benchmarks
//! need and nothing more, so the client's own cost stays small and visible.
//!
//! Requests carry a `Content-Length` body; responses are read whole with `Content-Length`, with
//! `Transfer-Encoding: chunked`, or to the end of the connection. A streaming body (SSE) is read
//! chunk by chunk with [`StreamBody`]. No TLS, no redirects, no pipelining: one request in
//! flight per connection, as the closed-loop clients of the benchmarks send them.

use std::{io, net::SocketAddr};

use tokio::{
    io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader},
    net::TcpStream,
};

/// Longest status line or header line accepted.
const LINE_BYTES_MAX: usize = 16 * 1024;
/// Most header lines in one response.
const HEADERS_MAX: usize = 128;
/// Largest response body read whole.
const BODY_BYTES_MAX: usize = 256 * 1024 * 1024;

/// One keep-alive connection.
#[derive(Debug)]
pub(crate) struct HttpConn {
    stream: BufReader<TcpStream>,
    host: String,
    /// The server said `Connection: close` (or closed): the next request needs a new connection.
    closed: bool,
}

/// A response read whole.
#[derive(Debug)]
pub(crate) struct HttpResponse {
    /// Status code.
    pub(crate) status: u16,
    /// Header names (lowercase) and values, in order.
    pub(crate) headers: Vec<(String, String)>,
    /// The body.
    pub(crate) body: Vec<u8>,
}

impl HttpResponse {
    /// The first value of header `name` (lowercase).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// How the body of a response is framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    Length(usize),
    Chunked,
    ToClose,
}

/// A response head.
#[derive(Debug)]
struct Head {
    status: u16,
    headers: Vec<(String, String)>,
    framing: Framing,
    close: bool,
}

impl HttpConn {
    /// Connects to `addr` (Nagle off: requests are small and latency is measured).
    ///
    /// # Errors
    /// Fails if the connection cannot be made.
    pub(crate) async fn connect(addr: SocketAddr) -> io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self { stream: BufReader::new(stream), host: addr.to_string(), closed: false })
    }

    /// Whether the server closed (or will close) this connection.
    pub(crate) const fn is_closed(&self) -> bool {
        self.closed
    }

    /// Sends one request and reads the whole response.
    ///
    /// # Errors
    /// Fails on an IO error, a closed connection or a malformed response.
    pub(crate) async fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<HttpResponse> {
        self.send_head(method, path, headers, body).await?;
        let head = read_head(&mut self.stream).await?;
        self.closed |= head.close;
        let body = match head.framing {
            Framing::Length(n) => {
                let mut body = vec![0; n];
                self.stream.read_exact(&mut body).await?;
                body
            }
            Framing::Chunked => {
                let (mut body, mut done) = (Vec::new(), false);
                while let Some(chunk) = next_chunk(&mut self.stream, &mut done).await? {
                    ensure_io(body.len() + chunk.len() <= BODY_BYTES_MAX, "body too large")?;
                    body.extend_from_slice(&chunk);
                }
                body
            }
            Framing::ToClose => {
                self.closed = true;
                let mut body = Vec::new();
                (&mut self.stream).take(BODY_BYTES_MAX as u64).read_to_end(&mut body).await?;
                body
            }
        };
        Ok(HttpResponse { status: head.status, headers: head.headers, body })
    }

    /// Sends a GET and returns the status and the chunked body to read as it arrives (a live
    /// stream such as SSE); the connection belongs to the stream from then on.
    ///
    /// # Errors
    /// Fails on an IO error or when the response is not chunked.
    pub(crate) async fn open_stream(
        mut self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> io::Result<(u16, StreamBody)> {
        self.send_head("GET", path, headers, b"").await?;
        let head = read_head(&mut self.stream).await?;
        ensure_io(head.framing == Framing::Chunked, "a live stream must be chunked")?;
        Ok((head.status, StreamBody { stream: self.stream, done: false }))
    }

    async fn send_head(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<()> {
        ensure_io(!self.closed, "connection closed by the server")?;
        let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.host);
        for (name, value) in headers {
            request.push_str(name);
            request.push_str(": ");
            request.push_str(value);
            request.push_str("\r\n");
        }
        request.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let mut bytes = request.into_bytes();
        bytes.extend_from_slice(body);
        self.stream.get_mut().write_all(&bytes).await
    }
}

/// A chunked body owned after the response head (a live stream).
#[derive(Debug)]
pub(crate) struct StreamBody {
    stream: BufReader<TcpStream>,
    done: bool,
}

impl StreamBody {
    /// The next chunk, or `None` at the end of the body.
    ///
    /// # Errors
    /// Fails on an IO error or a malformed chunk.
    pub(crate) async fn next_chunk(&mut self) -> io::Result<Option<Vec<u8>>> {
        next_chunk(&mut self.stream, &mut self.done).await
    }
}

/// The next chunk of a chunked body, or `None` once the last (empty) chunk was read.
async fn next_chunk(
    stream: &mut BufReader<TcpStream>,
    done: &mut bool,
) -> io::Result<Option<Vec<u8>>> {
    if *done {
        return Ok(None);
    }
    let line = read_line(stream).await?;
    let size_text = line.split(';').next().unwrap_or("").trim();
    let size = usize::from_str_radix(size_text, 16)
        .map_err(|_| invalid(&format!("bad chunk size line {line:?}")))?;
    ensure_io(size <= BODY_BYTES_MAX, "chunk too large")?;
    if size == 0 {
        // Trailers (none expected) end with an empty line.
        while !read_line(stream).await?.is_empty() {}
        *done = true;
        return Ok(None);
    }
    let mut chunk = vec![0; size];
    stream.read_exact(&mut chunk).await?;
    let end = read_line(stream).await?;
    ensure_io(end.is_empty(), "chunk not followed by CRLF")?;
    Ok(Some(chunk))
}

async fn read_head(stream: &mut BufReader<TcpStream>) -> io::Result<Head> {
    let status_line = read_line(stream).await?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    ensure_io(version.starts_with("HTTP/1."), "not an HTTP/1 response")?;
    let status = parts
        .next()
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| invalid(&format!("bad status line {status_line:?}")))?;
    let mut headers = Vec::new();
    loop {
        let line = read_line(stream).await?;
        if line.is_empty() {
            break;
        }
        ensure_io(headers.len() < HEADERS_MAX, "too many headers")?;
        let (name, value) =
            line.split_once(':').ok_or_else(|| invalid(&format!("bad header {line:?}")))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let find = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    let close = find("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
    let chunked =
        find("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let framing = if chunked {
        Framing::Chunked
    } else if let Some(length) = find("content-length") {
        let n = length.parse::<usize>().map_err(|_| invalid("bad content-length"))?;
        ensure_io(n <= BODY_BYTES_MAX, "body too large")?;
        Framing::Length(n)
    } else if status == 204 || status == 304 {
        Framing::Length(0)
    } else {
        Framing::ToClose
    };
    Ok(Head { status, headers, framing, close })
}

/// One CRLF-terminated line without its terminator.
async fn read_line(stream: &mut BufReader<TcpStream>) -> io::Result<String> {
    let mut line = Vec::new();
    let n = stream.take(LINE_BYTES_MAX as u64).read_until(b'\n', &mut line).await?;
    if n == 0 {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"));
    }
    ensure_io(line.ends_with(b"\n"), "line too long")?;
    line.pop();
    if line.ends_with(b"\r") {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| invalid("non-UTF-8 header line"))
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

fn ensure_io(condition: bool, what: &str) -> io::Result<()> {
    if condition { Ok(()) } else { Err(invalid(what)) }
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;

    use super::*;

    /// Serves each canned response, in order, on one accepted connection, reading one request
    /// head (and its body) before each.
    async fn serve(responses: Vec<&'static [u8]>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            let mut socket = BufReader::new(socket);
            for response in responses {
                let mut length = 0;
                loop {
                    let line = read_line(&mut socket).await.unwrap();
                    if line.is_empty() {
                        break;
                    }
                    if let Some(v) = line.strip_prefix("Content-Length: ") {
                        length = v.parse().unwrap();
                    }
                }
                let mut body = vec![0; length];
                socket.read_exact(&mut body).await.unwrap();
                socket.get_mut().write_all(response).await.unwrap();
            }
        });
        addr
    }

    #[tokio::test]
    async fn reads_length_and_chunked_bodies_on_one_connection() {
        let addr = serve(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Mempulse-Next: 7\r\n\r\nhello",
            b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n\
              3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        ])
        .await;
        let mut conn = HttpConn::connect(addr).await.unwrap();
        let first = conn.request("POST", "/", &[("Content-Type", "x")], b"body").await.unwrap();
        assert_eq!((first.status, first.body.as_slice()), (200, b"hello".as_slice()));
        assert_eq!(first.header("x-mempulse-next"), Some("7"));
        let second = conn.request("GET", "/x", &[], b"").await.unwrap();
        assert_eq!((second.status, second.body.as_slice()), (503, b"abcde".as_slice()));
        assert!(!conn.is_closed());
        let third = conn.request("GET", "/y", &[], b"").await.unwrap();
        assert_eq!(third.status, 200);
        assert!(conn.is_closed(), "Connection: close is remembered");
        assert!(conn.request("GET", "/z", &[], b"").await.is_err());
    }

    #[tokio::test]
    async fn a_stream_yields_chunks_until_the_last_one() {
        let addr = serve(vec![
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nid:1\r\n1\r\n\n\r\n0\r\n\r\n",
        ])
        .await;
        let conn = HttpConn::connect(addr).await.unwrap();
        let (status, mut body) = conn.open_stream("/s", &[]).await.unwrap();
        assert_eq!(status, 200);
        assert_eq!(body.next_chunk().await.unwrap().unwrap(), b"id:1");
        assert_eq!(body.next_chunk().await.unwrap().unwrap(), b"\n");
        assert!(body.next_chunk().await.unwrap().is_none());
        assert!(body.next_chunk().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn malformed_responses_are_errors() {
        for response in [
            b"SPDY/3 200 OK\r\n\r\n".as_slice(),
            b"HTTP/1.1 abc OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno-colon\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        ] {
            let addr = serve(vec![response]).await;
            let mut conn = HttpConn::connect(addr).await.unwrap();
            assert!(conn.request("GET", "/", &[], b"").await.is_err(), "{response:?}");
        }
    }
}
