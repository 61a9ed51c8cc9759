//! The operator's view of the outbox (`trustmail outbox`); delivery itself is `jobs::outbox`.

use super::{Service, ServiceError};
use crate::mail::{MessageId, StoredMessage};

impl Service {
    /// The newest `limit` messages, newest first.
    pub async fn outbox(&self, limit: u32) -> Result<Vec<StoredMessage>, ServiceError> {
        Ok(self.store().list_outbox(limit).await?)
    }

    /// One message with its full text, opened with the master key.
    pub async fn outbox_message(&self, id: MessageId) -> Result<StoredMessage, ServiceError> {
        self.store()
            .get_outbox(id)
            .await?
            .ok_or(ServiceError::NotFound)
    }
}
