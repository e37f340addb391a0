//! One Bolt connection: the handshake (Bolt 4.4 down to 4.0, and 3), HELLO,
//! and statements run in auto-commit transactions (RUN and PULL sent
//! together, one round trip); chunked messages both ways.
//!
//! Bolt 3 (Neo4j 3.5's only protocol) and 4.x differ, for what we send, only
//! in PULL_ALL vs PULL {n: -1} and in naming the database; Neo4j 5 still
//! speaks 4.4, so one client serves every supported server.

use std::fmt;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use super::packstream::{self, encode, encode_str, encode_struct_header, map, Decoder, Value};

/// What the engine says to a server it cannot talk to.
pub const SUPPORTED: &str =
    "evtstore-rs speaks Bolt 4.4 to 4.0 and Bolt 3: Neo4j 3.5, 4.x and 5.x are supported";

/// The versions offered, most wanted first: 4.4 with a range of 4 minors
/// below it (4.4 to 4.0), then 3.
const OFFERED: [[u8; 4]; 4] = [[0, 4, 4, 4], [0, 0, 0, 3], [0, 0, 0, 0], [0, 0, 0, 0]];

const HELLO: u8 = 0x01;
const GOODBYE: u8 = 0x02;
const RESET: u8 = 0x0F;
const RUN: u8 = 0x10;
const PULL: u8 = 0x3F;
const SUCCESS: u8 = 0x70;
const RECORD: u8 = 0x71;
const IGNORED: u8 = 0x7E;
const FAILURE: u8 = 0x7F;

/// Largest chunk body.
const MAX_CHUNK: usize = 0xFFFF;

/// How a Bolt exchange failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BoltError {
    /// The socket failed (connect, read or write).
    Io(String),
    /// The server answered FAILURE (a Neo4j status code such as
    /// `Neo.ClientError.Schema.ConstraintValidationFailed`). The connection
    /// was reset and can be used again.
    Failure { code: String, message: String },
    /// The server agreed to none of the versions offered.
    Unsupported(String),
    /// The server sent something out of protocol.
    Protocol(String),
}

impl fmt::Display for BoltError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BoltError::Io(e) => write!(f, "{e}"),
            BoltError::Failure { code, message } => write!(f, "{message} ({code})"),
            BoltError::Unsupported(e) => write!(f, "{e}; {SUPPORTED}"),
            BoltError::Protocol(e) => write!(f, "protocol error: {e}"),
        }
    }
}

impl From<std::io::Error> for BoltError {
    fn from(e: std::io::Error) -> Self {
        BoltError::Io(e.to_string())
    }
}

impl From<packstream::DecodeError> for BoltError {
    fn from(e: packstream::DecodeError) -> Self {
        BoltError::Protocol(e.to_string())
    }
}

/// Who logs in, and where.
#[derive(Debug, Clone)]
pub struct Login {
    pub user: Option<String>,
    pub password: Option<String>,
    /// Named in every RUN (Bolt 4 only; Neo4j 3.5 has one database).
    pub database: Option<String>,
}

/// The result of one statement: its records.
pub type Rows = Vec<Vec<Value>>;

pub struct Connection {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    /// (major, minor) agreed in the handshake.
    pub version: (u8, u8),
    /// The server's agent string ("Neo4j/4.4.48").
    pub server: String,
    /// Set when the socket failed or the protocol went astray: the pool
    /// drops the connection instead of reusing it.
    pub broken: bool,
    out: Vec<u8>,
    database: Option<String>,
}

impl Connection {
    /// Connects, agrees on a version and logs in.
    pub async fn open(
        address: &str,
        login: &Login,
        timeout: Duration,
    ) -> Result<Connection, BoltError> {
        let connect = async {
            let stream = TcpStream::connect(address).await?;
            stream.set_nodelay(true)?;
            let (read, mut writer) = stream.into_split();
            let mut reader = BufReader::with_capacity(64 * 1024, read);
            let mut hello = vec![0x60, 0x60, 0xB0, 0x17];
            for v in OFFERED {
                hello.extend_from_slice(&v);
            }
            writer.write_all(&hello).await?;
            let mut agreed = [0u8; 4];
            reader.read_exact(&mut agreed).await.map_err(|e| {
                BoltError::Unsupported(format!("the server closed the connection during the Bolt handshake ({e}); it may not be a Neo4j Bolt port"))
            })?;
            Ok::<_, BoltError>((reader, writer, agreed))
        };
        let (reader, writer, agreed) =
            tokio::time::timeout(timeout, connect).await.map_err(|_| {
                BoltError::Io(format!("no answer within {} s", timeout.as_secs_f64()))
            })??;
        let version = (agreed[3], agreed[2]);
        if agreed == [0x48, 0x54, 0x54, 0x50] {
            return Err(BoltError::Unsupported(
                "the port answered HTTP, not Bolt: use the Bolt port (7687 by default)".into(),
            ));
        }
        if !(version.0 == 3 && version.1 == 0 || version.0 == 4 && version.1 <= 4)
            || agreed[..2] != [0, 0]
        {
            return Err(BoltError::Unsupported(format!(
                "the server agreed to none of the Bolt versions offered (it answered {:02x?})",
                agreed
            )));
        }
        let mut conn = Connection {
            reader,
            writer,
            version,
            server: String::new(),
            broken: false,
            out: Vec::with_capacity(8192),
            database: if version.0 >= 4 {
                login.database.clone()
            } else {
                None
            },
        };
        let mut extra = vec![("user_agent".to_string(), Value::from("evtstore-rs/0.1"))];
        match &login.user {
            Some(user) => {
                extra.push(("scheme".into(), "basic".into()));
                extra.push(("principal".into(), user.as_str().into()));
                extra.push((
                    "credentials".into(),
                    login.password.clone().unwrap_or_default().into(),
                ));
            }
            None => extra.push(("scheme".into(), "none".into())),
        }
        conn.message(HELLO, &[Value::Map(extra)]);
        conn.flush().await?;
        let meta = conn.summary().await?;
        conn.server = meta
            .get("server")
            .and_then(Value::as_str)
            .unwrap_or("Neo4j")
            .to_string();
        Ok(conn)
    }

    /// Whether the server speaks Bolt 4 or later (Neo4j 4.x and 5.x).
    pub fn is_v4(&self) -> bool {
        self.version.0 >= 4
    }

    /// The server's major version, from its agent string ("Neo4j/5.26.0").
    pub fn server_major(&self) -> u32 {
        self.server
            .split('/')
            .nth(1)
            .and_then(|v| v.split('.').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(if self.is_v4() { 4 } else { 3 })
    }

    /// Appends one message, chunked, to the output buffer.
    fn message(&mut self, tag: u8, fields: &[Value]) {
        let mut body = Vec::with_capacity(64);
        encode_struct_header(&mut body, tag, fields.len());
        for f in fields {
            encode(&mut body, f);
        }
        self.chunk(&body);
    }

    fn chunk(&mut self, body: &[u8]) {
        for part in body.chunks(MAX_CHUNK) {
            self.out
                .extend_from_slice(&(part.len() as u16).to_be_bytes());
            self.out.extend_from_slice(part);
        }
        self.out.extend_from_slice(&[0, 0]);
    }

    async fn flush(&mut self) -> Result<(), BoltError> {
        let result = self.writer.write_all(&self.out).await;
        self.out.clear();
        result.map_err(|e| {
            self.broken = true;
            e.into()
        })
    }

    /// Reads one whole message (its chunks joined; NOOP chunks skipped).
    async fn receive(&mut self) -> Result<Vec<u8>, BoltError> {
        let mut body = Vec::new();
        loop {
            let mut size = [0u8; 2];
            if let Err(e) = self.reader.read_exact(&mut size).await {
                self.broken = true;
                return Err(e.into());
            }
            let size = u16::from_be_bytes(size) as usize;
            if size == 0 {
                if body.is_empty() {
                    continue;
                }
                return Ok(body);
            }
            let start = body.len();
            body.resize(start + size, 0);
            if let Err(e) = self.reader.read_exact(&mut body[start..]).await {
                self.broken = true;
                return Err(e.into());
            }
        }
    }

    /// Reads a summary: SUCCESS metadata, or a FAILURE (then the connection
    /// is reset), or IGNORED.
    async fn summary(&mut self) -> Result<Value, BoltError> {
        let body = self.receive().await?;
        let mut d = Decoder::new(&body);
        let (tag, _) = d
            .struct_header()
            .map_err(|e| self.protocol(e.to_string()))?;
        let meta = if body.len() > 2 {
            d.value()?
        } else {
            Value::Map(Vec::new())
        };
        match tag {
            SUCCESS => Ok(meta),
            FAILURE => Err(failure(&meta)),
            IGNORED => Err(BoltError::Protocol("the server ignored a request".into())),
            other => Err(self.protocol(format!("unexpected message {other:#04x}"))),
        }
    }

    fn protocol(&mut self, what: String) -> BoltError {
        self.broken = true;
        BoltError::Protocol(what)
    }

    /// Runs one statement in its own transaction and returns all its rows.
    /// Dropping the future before it ends (a caller gave up waiting) leaves
    /// answers unread on the socket: the connection is then marked broken,
    /// so the pool never hands it out again.
    pub async fn run(&mut self, query: &str, params: Value) -> Result<Rows, BoltError> {
        self.broken = true;
        let result = self.exchange(query, params).await;
        if !matches!(result, Err(BoltError::Io(_)) | Err(BoltError::Protocol(_))) {
            self.broken = false;
        }
        result
    }

    async fn exchange(&mut self, query: &str, params: Value) -> Result<Rows, BoltError> {
        let mut extra = Vec::new();
        if let Some(db) = &self.database {
            extra.push(("db".to_string(), Value::from(db.as_str())));
        }
        // RUN's fields: the query, its parameters, the transaction's extras
        let mut body = Vec::with_capacity(query.len() + 256);
        encode_struct_header(&mut body, RUN, 3);
        encode_str(&mut body, query);
        encode(&mut body, &params);
        encode(&mut body, &Value::Map(extra));
        self.chunk(&body);
        if self.is_v4() {
            self.message(PULL, &[map([("n", Value::Int(-1))])]);
        } else {
            self.message(PULL, &[]);
        }
        self.flush().await?;
        let ran = self.summary().await;
        let mut rows = Vec::new();
        let pulled = loop {
            let body = self.receive().await?;
            let mut d = Decoder::new(&body);
            let (tag, _) = d
                .struct_header()
                .map_err(|e| self.protocol(e.to_string()))?;
            match tag {
                RECORD => match d.value()? {
                    Value::List(fields) => rows.push(fields),
                    other => return Err(self.protocol(format!("a record is {other:?}"))),
                },
                SUCCESS => break Ok(()),
                FAILURE => break Err(failure(&d.value()?)),
                IGNORED => break Ok(()),
                other => return Err(self.protocol(format!("unexpected message {other:#04x}"))),
            }
        };
        match ran.and(pulled) {
            Ok(()) => Ok(rows),
            Err(e @ BoltError::Failure { .. }) => {
                self.reset().await?;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// Clears a failure so the connection can be used again.
    async fn reset(&mut self) -> Result<(), BoltError> {
        self.message(RESET, &[]);
        self.flush().await?;
        // a connection that cannot be reset is of no further use
        self.summary()
            .await
            .map(|_| ())
            .map_err(|e| BoltError::Protocol(format!("RESET after a failure failed: {e}")))
    }

    /// Says goodbye (best effort) before the socket is dropped.
    pub async fn close(mut self) {
        self.message(GOODBYE, &[]);
        let _ = tokio::time::timeout(Duration::from_millis(200), self.flush()).await;
    }
}

fn failure(meta: &Value) -> BoltError {
    BoltError::Failure {
        code: meta
            .get("code")
            .and_then(Value::as_str)
            .unwrap_or("Neo.DatabaseError.General.UnknownError")
            .to_string(),
        message: meta
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("(no message)")
            .to_string(),
    }
}
