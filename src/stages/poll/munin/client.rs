//! A conversation with munin-node: one connection per round (numeter
//! opened one per command), every read bounded in length, count and time.

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::protocol::greeting_host;
use crate::poll::PollError;

/// Longest line read: a `list` of hundreds of plugins fits many times.
const MAX_LINE: usize = 64 * 1024;
/// Most lines in one answer (a multigraph plugin of a big disk array has
/// a few thousand).
const MAX_LINES: usize = 20_000;

pub struct Conversation {
    stream: BufReader<TcpStream>,
    /// The node's name, from its greeting.
    pub node: String,
}

impl Conversation {
    /// Connects, reads the greeting and asks for `multigraph` and
    /// `dirtyconfig`.
    pub async fn open(address: &str, deadline: Instant) -> Result<Conversation, PollError> {
        let stream = tokio::time::timeout_at(deadline, TcpStream::connect(address))
            .await
            .map_err(|_| PollError::timeout("connect"))?
            .map_err(|e| PollError::io(&format!("connect to {address}"), &e))?;
        let mut c = Conversation {
            stream: BufReader::new(stream),
            node: String::new(),
        };
        let greeting = c.line(deadline).await?;
        c.node = greeting_host(&greeting)
            .ok_or_else(|| PollError::protocol(format!("not a munin node: {:.80?}", greeting)))?
            .to_owned();
        c.send("cap multigraph dirtyconfig").await?;
        let caps = c.line(deadline).await?;
        if !caps.starts_with("cap") {
            return Err(PollError::protocol(format!(
                "unexpected answer to cap: {caps:.80?}"
            )));
        }
        Ok(c)
    }

    /// `list`: the node's plugins.
    pub async fn list(&mut self, deadline: Instant) -> Result<String, PollError> {
        self.send("list").await?;
        self.line(deadline).await
    }

    /// `config <plugin>` or `fetch <plugin>`: the lines before `.`.
    pub async fn ask(
        &mut self,
        command: &str,
        plugin: &str,
        deadline: Instant,
    ) -> Result<Vec<String>, PollError> {
        self.send(&format!("{command} {plugin}")).await?;
        let mut lines = Vec::new();
        loop {
            let line = self.line(deadline).await?;
            if line == "." {
                return Ok(lines);
            }
            if lines.len() >= MAX_LINES {
                return Err(PollError::protocol(format!(
                    "{command} {plugin}: more than {MAX_LINES} lines"
                )));
            }
            lines.push(line);
        }
    }

    /// Says goodbye; the node closes the connection.
    pub async fn quit(mut self) {
        let _ = self.send("quit").await;
    }

    async fn send(&mut self, command: &str) -> Result<(), PollError> {
        let stream = self.stream.get_mut();
        stream
            .write_all(format!("{command}\n").as_bytes())
            .await
            .map_err(|e| PollError::io("send", &e))
    }

    /// One line without its end, at most `MAX_LINE` bytes, by `deadline`.
    async fn line(&mut self, deadline: Instant) -> Result<String, PollError> {
        let mut buf = Vec::new();
        let read = async {
            loop {
                let available = self.stream.fill_buf().await?;
                if available.is_empty() {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "connection closed",
                    ));
                }
                let (used, done) = match available.iter().position(|&b| b == b'\n') {
                    Some(i) => (i + 1, true),
                    None => (available.len(), false),
                };
                buf.extend_from_slice(&available[..used]);
                self.stream.consume(used);
                if done {
                    return Ok(true);
                }
                if buf.len() > MAX_LINE {
                    return Ok(false);
                }
            }
        };
        match tokio::time::timeout_at(deadline, read).await {
            Err(_) => Err(PollError::timeout("munin-node")),
            Ok(Err(e)) => Err(PollError::io("read", &e)),
            Ok(Ok(false)) => Err(PollError::protocol(format!(
                "a line longer than {MAX_LINE} bytes"
            ))),
            Ok(Ok(true)) => {
                let text = String::from_utf8_lossy(&buf);
                Ok(text.trim_end_matches(['\n', '\r']).to_owned())
            }
        }
    }
}
