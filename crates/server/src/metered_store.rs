//! A decorator of the store in all three of its roles ([`SecretStore`], [`RateLimiter`],
//! [`KeyCheck`]) that times every operation, counts failures, and counts secrets shared,
//! revealed and burned where it happens: in the store, whatever the transport or path.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use burnbox_store::{
    FailedAttempt, KeyCheck, Lease, NewSecret, OwnerId, RateDecision, RateKey, RateLimiter,
    ReceiptId, RecordStatus, SecretId, SecretRecord, SecretStore, StoreError, StoredReceipt, Take,
    UnixSeconds,
};

use crate::metrics::Metrics;

/// One store, measured into `metrics` in each of its roles.
pub struct MeteredStore {
    inner: Arc<dyn SecretStore>,
    rate_limiter: Arc<dyn RateLimiter>,
    key_check: Arc<dyn KeyCheck>,
    metrics: Arc<Metrics>,
}

impl MeteredStore {
    /// Wraps `inner`, the one store that keeps secrets, counts requests and holds the key check.
    pub fn new<S>(inner: Arc<S>, metrics: Arc<Metrics>) -> Self
    where
        S: SecretStore + RateLimiter + KeyCheck,
    {
        Self {
            inner: inner.clone(),
            rate_limiter: inner.clone(),
            key_check: inner,
            metrics,
        }
    }

    async fn measure<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let result = call.await;
        let error_kind = result.as_ref().err().map(|err| match err {
            StoreError::Unavailable(_) => "unavailable",
            StoreError::Full => "full",
            StoreError::Internal(_) => "internal",
        });
        // Inside a request the operation's latency sample points at the request's trace.
        self.metrics.store_operation(
            operation,
            started.elapsed(),
            error_kind,
            crate::observe::current_trace_id().as_deref(),
        );
        result
    }
}

#[async_trait]
impl SecretStore for MeteredStore {
    async fn create(&self, new: NewSecret) -> Result<(), StoreError> {
        self.measure("create", self.inner.create(new)).await?;
        self.metrics.secret("shared");
        Ok(())
    }

    async fn take_unprotected(&self, id: &SecretId, now: UnixSeconds) -> Result<Take, StoreError> {
        let take = self
            .measure("take_unprotected", self.inner.take_unprotected(id, now))
            .await?;
        if matches!(take, Take::Taken(_)) {
            self.metrics.secret("revealed");
        }
        Ok(take)
    }

    async fn take(
        &self,
        id: &SecretId,
        now: UnixSeconds,
    ) -> Result<Option<SecretRecord>, StoreError> {
        let taken = self.measure("take", self.inner.take(id, now)).await?;
        if taken.is_some() {
            self.metrics.secret("revealed");
        }
        Ok(taken)
    }

    async fn peek(&self, id: &SecretId) -> Result<Option<SecretRecord>, StoreError> {
        self.measure("peek", self.inner.peek(id)).await
    }

    async fn inspect(&self, id: &SecretId) -> Result<Option<RecordStatus>, StoreError> {
        self.measure("inspect", self.inner.inspect(id)).await
    }

    async fn burn(&self, id: &SecretId, now: UnixSeconds) -> Result<bool, StoreError> {
        let burned = self.measure("burn", self.inner.burn(id, now)).await?;
        if burned {
            self.metrics.secret("burned");
        }
        Ok(burned)
    }

    async fn fail_attempt(
        &self,
        id: &SecretId,
        max_attempts: u32,
        now: UnixSeconds,
    ) -> Result<FailedAttempt, StoreError> {
        let outcome = self
            .measure(
                "fail_attempt",
                self.inner.fail_attempt(id, max_attempts, now),
            )
            .await?;
        if outcome == FailedAttempt::Burned {
            self.metrics.secret("burned");
        }
        Ok(outcome)
    }

    async fn receipt(&self, id: &ReceiptId) -> Result<Option<StoredReceipt>, StoreError> {
        self.measure("receipt", self.inner.receipt(id)).await
    }

    async fn recent(
        &self,
        owner: &OwnerId,
        since: UnixSeconds,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        self.measure("recent", self.inner.recent(owner, since, limit))
            .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.measure("ping", self.inner.ping()).await
    }
}

#[async_trait]
impl RateLimiter for MeteredStore {
    async fn rate_limit(
        &self,
        key: &RateKey,
        limit: u32,
        window: Duration,
        lease: Lease,
    ) -> Result<RateDecision, StoreError> {
        self.measure(
            "rate_limit",
            self.rate_limiter.rate_limit(key, limit, window, lease),
        )
        .await
    }
}

#[async_trait]
impl KeyCheck for MeteredStore {
    async fn key_check(&self, proposed: Vec<u8>, replace: bool) -> Result<Vec<u8>, StoreError> {
        self.measure("key_check", self.key_check.key_check(proposed, replace))
            .await
    }
}
