//! The MLLP listener: many concurrent connections, a frame size limit, an idle timeout. Each
//! frame's ACK is written only after the message is committed (see `service::receive`).

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use super::mllp::{Decoder, Event, frame};
use super::service;
use crate::storage::Db;

pub const MAX_FRAME: usize = 1024 * 1024;
pub const MAX_CONNECTIONS: usize = 256;

/// Configured limits of the listener (`MCH_MLLP_MAX_BACKLOG`, `MCH_MLLP_IDLE_SECS`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Refuse new messages while this many writes wait to be stored.
    pub max_backlog: u64,
    pub idle_timeout: Duration,
}

/// Accept connections until the task is dropped.
pub async fn serve(listener: TcpListener, db: Db, limits: Limits) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "MLLP connection refused: too many connections");
            drop(stream);
            continue;
        };
        let db = db.clone();
        tokio::spawn(async move {
            let span = tracing::info_span!("mllp", peer = %peer);
            let _permit = permit;
            if let Err(e) = connection(stream, db, limits).await {
                span.in_scope(|| tracing::debug!(error = %e, "MLLP connection ended"));
            }
        });
    }
}

async fn connection(mut stream: TcpStream, db: Db, limits: Limits) -> std::io::Result<()> {
    let mut decoder = Decoder::new(MAX_FRAME);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match tokio::time::timeout(limits.idle_timeout, stream.read(&mut buf)).await {
            Ok(r) => r?,
            Err(_) => return Ok(()), // idle: close
        };
        if n == 0 {
            return Ok(());
        }
        for event in decoder.feed(buf.get(..n).unwrap_or_default()) {
            match event {
                Event::Frame(payload) => match service::receive(&db, payload, limits.max_backlog).await {
                    // Every frame gets its answer (an AR when no MSH can be read) and the
                    // connection stays open: the framing is intact, the next frame is read.
                    Ok(answers) => {
                        for ack in answers {
                            stream.write_all(&frame(ack.as_bytes())).await?;
                        }
                    }
                    // Not stored: no ACK at all, the sender resends (never an AA for unsaved data).
                    Err(e) => {
                        tracing::error!(error = %e, "HL7 message could not be stored; connection closed without ACK");
                        return Ok(());
                    }
                },
                // Bytes outside a frame: the framing is lost, nothing after them can be trusted to
                // be a message. A frame over the limit: not kept in memory, not answered.
                Event::Garbage | Event::TooLarge => {
                    tracing::warn!(?event, "MLLP framing error: connection closed");
                    return Ok(());
                }
            }
        }
    }
}
