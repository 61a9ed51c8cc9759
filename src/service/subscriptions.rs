//! Webhook subscriptions: create, read, update, delete, a new signing secret, and where their
//! deliveries stand. Deliveries are queued by the store with each activity and sent by
//! `webhooks`.

use super::{Actor, Service, ServiceError, environments::name_value, found};
use crate::{
    domain::{
        Activity, ActivityType, EndpointPolicy, Environment, InvalidField, ResourceType,
        SigningSecret, Subscription, SubscriptionId, SubscriptionSettings, now,
    },
    store::{CreateSubscriptionError, Delivery},
};

/// The longest subscription name accepted.
pub const MAX_SUBSCRIPTION_NAME: usize = 256;

/// A subscription just made, with its signing secret (shown only now).
#[derive(Debug)]
pub struct NewSubscription {
    pub subscription: Subscription,
    pub signing_secret: SigningSecret,
}

impl From<InvalidField> for ServiceError {
    fn from(e: InvalidField) -> Self {
        ServiceError::InvalidValue {
            target: e.target.into(),
            message: e.message,
        }
    }
}

impl Service {
    pub async fn create_subscription(
        &self,
        actor: &Actor,
        environment: &Environment,
        mut settings: SubscriptionSettings,
    ) -> Result<NewSubscription, ServiceError> {
        settings.name = name_value(&settings.name, MAX_SUBSCRIPTION_NAME)?;
        self.check_endpoint(&settings)?;
        let at = now();
        let subscription = Subscription {
            id: SubscriptionId::new(),
            environment_id: environment.id,
            settings,
            created_at: at,
            updated_at: at,
        };
        let signing_secret = SigningSecret::generate();
        let activity = activity(actor, ActivityType::SubscriptionCreated, &subscription);
        let maximum = self.settings().limits.subscriptions_per_environment;
        match self
            .store()
            .insert_subscription(&subscription, &signing_secret, maximum, &activity)
            .await
        {
            Ok(()) => Ok(NewSubscription {
                subscription,
                signing_secret,
            }),
            Err(CreateSubscriptionError::EnvironmentNotFound) => Err(ServiceError::NotFound),
            Err(CreateSubscriptionError::LimitReached { maximum }) => {
                Err(ServiceError::SizeLimit {
                    target: "name".into(),
                    maximum,
                    message: format!("An environment can have at most {maximum} subscriptions."),
                })
            }
            Err(CreateSubscriptionError::Store(e)) => Err(e.into()),
        }
    }

    /// An endpoint must be `https://` on the public internet unless the operator allows others
    /// (`webhooks.allow_http_endpoints`, `webhooks.allow_private_endpoints`); names are checked
    /// again at each delivery.
    fn check_endpoint(&self, settings: &SubscriptionSettings) -> Result<(), ServiceError> {
        let policy = EndpointPolicy {
            allow_http: self.settings().allow_http_endpoints,
            allow_private: self.settings().allow_private_endpoints,
        };
        match settings.url.refusal(policy) {
            Some(refused) => Err(refused.for_caller().into()),
            None => Ok(()),
        }
    }

    pub async fn list_subscriptions(
        &self,
        environment: &Environment,
    ) -> Result<Vec<Subscription>, ServiceError> {
        Ok(self.store().list_subscriptions(environment.id).await?)
    }

    /// The subscription, found in `environment`.
    pub async fn subscription(
        &self,
        environment: &Environment,
        id: SubscriptionId,
    ) -> Result<Subscription, ServiceError> {
        self.store()
            .get_subscription(environment.id, id)
            .await?
            .ok_or(ServiceError::NotFound)
    }

    /// Replaces everything a PUT sets; the secret and the queued deliveries stay.
    pub async fn update_subscription(
        &self,
        actor: &Actor,
        subscription: &Subscription,
        mut settings: SubscriptionSettings,
    ) -> Result<Subscription, ServiceError> {
        settings.name = name_value(&settings.name, MAX_SUBSCRIPTION_NAME)?;
        self.check_endpoint(&settings)?;
        let updated = Subscription {
            settings,
            updated_at: now(),
            ..subscription.clone()
        };
        let activity = activity(actor, ActivityType::SubscriptionUpdated, &updated);
        found(
            self.store()
                .update_subscription(&updated, &activity)
                .await?,
        )?;
        Ok(updated)
    }

    /// Deletes the subscription with its queued deliveries (none is sent after this).
    pub async fn delete_subscription(
        &self,
        actor: &Actor,
        subscription: &Subscription,
    ) -> Result<(), ServiceError> {
        let activity = activity(actor, ActivityType::SubscriptionDeleted, subscription);
        found(
            self.store()
                .delete_subscription(subscription, &activity)
                .await?,
        )?;
        Ok(())
    }

    /// A new signing secret: every delivery from now on, retries included, is signed with it.
    pub async fn rotate_subscription_secret(
        &self,
        actor: &Actor,
        subscription: &Subscription,
    ) -> Result<SigningSecret, ServiceError> {
        let secret = SigningSecret::generate();
        let activity = activity(actor, ActivityType::SubscriptionSecretRotated, subscription);
        found(
            self.store()
                .set_subscription_secret(subscription, &secret, &activity)
                .await?,
        )?;
        Ok(secret)
    }

    /// A page of the subscription's deliveries, newest first, and how many there are in all.
    pub async fn list_deliveries(
        &self,
        subscription: &Subscription,
        limit: u32,
        offset: u32,
    ) -> Result<(Vec<Delivery>, i64), ServiceError> {
        Ok(self
            .store()
            .list_deliveries(subscription.id, limit, offset)
            .await?)
    }
}

fn activity(actor: &Actor, action: ActivityType, subscription: &Subscription) -> Activity {
    Activity::new(
        subscription.environment_id,
        action,
        actor.client_id,
        ResourceType::Subscription,
        subscription.id,
        &subscription.settings.name,
    )
}
