//! The state every handler shares: the store, the blobs, the plate
//! index, metrics, webhooks, the live alert stream and the order alerts
//! are published in.

use super::*;

/// How long an ingest call with alerts waits for the calls committed
/// before it to publish theirs, before it publishes anyway (a call that
/// never finishes must not stall the live streams).
pub(super) const PUBLISH_WAIT: Duration = Duration::from_secs(5);

/// Publishes the alerts of ingest calls in the store's commit order
/// ([`IngestOutcome::seq`](crate::model::IngestOutcome::seq)), so that live
/// streams and webhooks see alert ids in order while batches are stored
/// concurrently. A call without alerts only marks its turn as taken; one
/// with alerts waits for every earlier call first.
pub(super) struct PublishOrder {
    pub(super) state: Mutex<PublishState>,
    pub(super) turn: Condvar,
    /// [`PUBLISH_WAIT`]; shorter in tests.
    pub(super) wait: Duration,
}

impl Default for PublishOrder {
    fn default() -> Self {
        PublishOrder {
            state: Mutex::default(),
            turn: Condvar::new(),
            wait: PUBLISH_WAIT,
        }
    }
}

#[derive(Default)]
pub(super) struct PublishState {
    /// Every call numbered up to this one is through.
    pub(super) through: u64,
    /// Calls through above `through`, waiting for a gap to close.
    pub(super) ahead: BTreeSet<u64>,
}

impl PublishOrder {
    /// Runs `publish` (when `alerts`) once every call committed before
    /// `seq` is through, or after [`PUBLISH_WAIT`], then marks `seq`
    /// through.
    pub(super) fn in_turn(&self, seq: u64, alerts: bool, publish: impl FnOnce()) {
        let mut st = self.state.locked();
        if alerts {
            let deadline = Instant::now() + self.wait;
            while st.through + 1 < seq {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    tracing::warn!(
                        seq,
                        through = st.through,
                        "publishing alerts before an earlier ingest call that has not finished"
                    );
                    // Later calls do not wait for the missing ones again.
                    st.ahead.retain(|&s| s > seq);
                    st.through = seq - 1;
                    break;
                }
                st = self
                    .turn
                    .wait_timeout(st, left)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            publish();
        }
        if seq > st.through {
            st.ahead.insert(seq);
        }
        while st.ahead.first() == Some(&(st.through + 1)) {
            st.ahead.pop_first();
            st.through += 1;
        }
        self.turn.notify_all();
    }
}

/// Everything the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) store: Arc<dyn Store>,
    pub(super) blobs: Arc<BlobStore>,
    pub(super) metrics: Arc<Metrics>,
    /// New alerts, in id order, for the live streams.
    pub(super) live: tokio::sync::broadcast::Sender<Arc<alerts::LiveAlert>>,
    /// Ingest calls publish their alerts in the store's commit order.
    pub(super) publish_order: PublishOrder,
    pub(super) webhooks: Webhooks,
    pub(super) max_body: usize,
    pub(super) max_clip: usize,
    /// Token hashes already looked up, and when: an entry older than
    /// [`TOKEN_RECHECK`] is looked up again (it may have been revoked).
    pub(super) tokens: RwLock<HashMap<String, (TokenOwner, Instant)>>,
    /// Failed authentication per client address.
    pub(super) logins: login_guard::LoginGuard,
    /// Set when the server shuts down: live streams end, so that their
    /// connections close and the shutdown does not wait on them.
    pub(super) closing: tokio::sync::watch::Sender<bool>,
}

impl AppState {
    /// State over any store and blob store. Starts a delivery thread per
    /// configured webhook.
    pub fn new(store: Arc<dyn Store>, blobs: Arc<BlobStore>, config: &ServerConfig) -> AppState {
        let metrics = Arc::new(Metrics::default());
        AppState {
            inner: Arc::new(Inner {
                store,
                blobs,
                live: tokio::sync::broadcast::channel(alerts::LIVE_BUFFER).0,
                publish_order: PublishOrder::default(),
                webhooks: Webhooks::start(&config.webhooks, metrics.clone()),
                metrics,
                max_body: config.max_body_mb * 1024 * 1024,
                max_clip: config.max_clip_mb * 1024 * 1024,
                tokens: RwLock::new(HashMap::new()),
                logins: login_guard::LoginGuard::default(),
                closing: tokio::sync::watch::channel(false).0,
            }),
        }
    }

    /// Ends every live alert stream (and refuses new ones), for a shutdown:
    /// a connected board would otherwise keep the server waiting.
    pub fn close_streams(&self) {
        self.inner.closing.send_replace(true);
    }

    /// Opens the configured store (embedded in `config.data_dir`, or
    /// PostgreSQL) and the blobs in `config.data_dir`, and stores
    /// the hash of `config.admin_token` if there is one.
    pub fn open(config: &ServerConfig) -> crate::error::Result<AppState> {
        config.validate()?;
        let store = crate::store::open(config)?;
        let blobs = BlobStore::open(&config.data_dir.join("blobs"))?;
        if let Some(token) = &config.admin_token {
            store.add_token(
                &token_hash(token),
                &TokenOwner {
                    name: "admin (SAFECITY_ADMIN_TOKEN)".into(),
                    role: Role::Admin,
                    expires_ms: None,
                },
            )?;
        }
        Ok(AppState::new(store, Arc::new(blobs), config))
    }

    /// The store behind the API.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The snapshots and clips.
    pub fn blobs(&self) -> &Arc<BlobStore> {
        &self.inner.blobs
    }

    /// The server's counters.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Sends newly stored alerts to the live streams and webhooks. Blocks
    /// (it reads the camera registry): call it off the async threads.
    pub(super) fn publish(&self, new: &[Alert]) {
        if new.is_empty() {
            return;
        }
        let cameras = self.inner.store.cameras().unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot read cameras for alerts; sending them without positions");
            Vec::new()
        });
        for a in new {
            let live = Arc::new(alerts::LiveAlert {
                id: a.id,
                json: alerts::alert_json(a, &cameras).to_string(),
            });
            self.inner.webhooks.deliver(a.priority, &live.json);
            // No receiver is fine: nobody is watching right now.
            let _ = self.inner.live.send(live);
        }
        self.inner
            .metrics
            .alerts_raised
            .fetch_add(new.len() as u64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Calls that finish out of commit order publish in commit order; a
    /// call without alerts never waits, but later calls wait for it.
    #[test]
    fn alerts_are_published_in_commit_order() {
        let order = Arc::new(PublishOrder::default());
        let published = Arc::new(Mutex::new(Vec::new()));
        // Arrival order differs from commit order; 3 and 6 raise no alerts.
        let arrivals = [5u64, 2, 7, 3, 1, 6, 4, 8];
        let threads: Vec<_> = arrivals
            .iter()
            .enumerate()
            .map(|(i, &seq)| {
                let (order, published) = (Arc::clone(&order), Arc::clone(&published));
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(20 * i as u64));
                    let alerts = seq != 3 && seq != 6;
                    order.in_turn(seq, alerts, || published.locked().push(seq));
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*published.locked(), vec![1, 2, 4, 5, 7, 8]);
        let st = order.state.locked();
        assert_eq!((st.through, st.ahead.len()), (8, 0));
    }

    /// A call that never finishes holds up the calls after it only once,
    /// for the wait; if it turns up late it publishes without waiting.
    #[test]
    fn a_missing_call_delays_publishing_once() {
        let order = PublishOrder {
            wait: Duration::from_millis(200),
            ..PublishOrder::default()
        };
        let published = Mutex::new(Vec::new());
        let publish = |seq: u64| order.in_turn(seq, true, || published.locked().push(seq));
        publish(1);
        // 2 never comes (yet): 3 waits, then publishes anyway, and counts
        // everything up to itself as through, so nothing waits for 2 again.
        publish(3);
        assert_eq!(*published.locked(), vec![1, 3]);
        assert_eq!(order.state.locked().through, 3);
        publish(4);
        publish(2);
        publish(5);
        assert_eq!(*published.locked(), vec![1, 3, 4, 2, 5]);
        assert_eq!(order.state.locked().through, 5);
    }
}
