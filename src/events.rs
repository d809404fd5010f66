//! Reactions that flow upward, as events.
//!
//! Features call only features below them (README "Layout": the declared order). When a change in
//! a lower feature calls for work in a higher one — a new visit or result asks risk for a re-grade
//! proposal, a delivery with a maternal death closes her high-risk case, a referral step queues an
//! outbound HL7 message, a merge must not join two active pregnancies — the lower feature
//! *publishes* an event on a [`Topic`] it declares (in its `events.rs`), naming nothing above it.
//! The handlers run synchronously, inside the publisher's transaction and in the order they were
//! wired: their writes commit with the change that caused them, or an error from any of them rolls
//! the whole unit back (a handler may refuse, which is how the merge guard works). Work that must
//! happen outside the transaction is queued durably by its handler in that same transaction (the
//! HL7 outbox). So nothing is answered before the change *and* its reactions are durable.
//!
//! Which handler reacts to which topic is decided once, at start-up, by the composition root
//! (`reactions::wire`), the only place that names both sides. Publishing on a topic that
//! was never wired is refused ([`ServiceError::Internal`]): a reaction is never skipped silently.

use std::sync::OnceLock;

use crate::error::ServiceError;
use crate::storage::AnyConnection;

/// A reaction: runs inside the publisher's transaction; an error rolls the whole unit back.
pub type Handler<E> = fn(&mut AnyConnection, &E) -> Result<(), ServiceError>;

/// Something a feature tells the features above it, and who reacts (wired at start-up).
pub struct Topic<E: 'static> {
    name: &'static str,
    handlers: OnceLock<&'static [Handler<E>]>,
}

impl<E> Topic<E> {
    pub const fn new(name: &'static str) -> Topic<E> {
        Topic {
            name,
            handlers: OnceLock::new(),
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Set the reactions to this topic (once per process; the composition root does it). An empty
    /// list is a deliberate "nobody reacts".
    pub fn subscribe(&self, handlers: &'static [Handler<E>]) {
        if self.handlers.set(handlers).is_err() {
            tracing::debug!(topic = self.name, "reactions already wired");
        }
    }

    pub fn is_wired(&self) -> bool {
        self.handlers.get().is_some()
    }

    /// Run every reaction to `event` inside the caller's transaction, in wiring order.
    pub fn publish(&self, c: &mut AnyConnection, event: &E) -> Result<(), ServiceError> {
        let Some(handlers) = self.handlers.get() else {
            tracing::error!(topic = self.name, "event published before the reactions were wired");
            return Err(ServiceError::Internal("事件处理未配置（服务未完整启动）"));
        };
        for handle in handlers.iter() {
            handle(c, event)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Ping;

    fn refuse(_: &mut AnyConnection, _: &Ping) -> Result<(), ServiceError> {
        Err(ServiceError::Conflict("no".into()))
    }

    #[test]
    fn an_unwired_topic_refuses_and_a_wired_one_runs_its_handlers() {
        static UNWIRED: Topic<Ping> = Topic::new("unwired");
        static WIRED: Topic<Ping> = Topic::new("wired");
        WIRED.subscribe(&[refuse]);
        let dir = tempfile::tempdir().unwrap();
        let mut conn = crate::storage::establish(&format!("sqlite://{}", dir.path().join("e.db").display())).unwrap();
        assert!(matches!(
            UNWIRED.publish(&mut conn, &Ping),
            Err(ServiceError::Internal(_))
        ));
        assert!(matches!(
            WIRED.publish(&mut conn, &Ping),
            Err(ServiceError::Conflict(_))
        ));
        assert!(WIRED.is_wired() && !UNWIRED.is_wired());
    }
}
