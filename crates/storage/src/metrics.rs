//! What a store tells Prometheus: its engine's figures, read on each
//! scrape, and how group commit behaves (fsync latency, write batches per
//! fsync), recorded as it runs.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

use crate::engine::Engine;

/// The histograms the syncer fills.
#[derive(Clone, Debug)]
pub(crate) struct SyncMetrics {
    /// How long each fsync took, seconds.
    duration: Histogram,
    /// How many write batches each fsync made durable (the group size).
    batches: Histogram,
}

impl SyncMetrics {
    pub(crate) fn new() -> Self {
        Self {
            // 50 µs .. ~1.6 s, doubling.
            duration: Histogram::new(exponential_buckets(0.000_05, 2.0, 16)),
            // 1 .. 2048 batches, doubling.
            batches: Histogram::new(exponential_buckets(1.0, 2.0, 12)),
        }
    }

    /// One fsync that made `batches` write batches durable in `took`.
    pub(crate) fn synced(&self, batches: u64, took: Duration) {
        self.duration.observe(took.as_secs_f64());
        self.batches.observe(batches as f64);
    }
}

/// A store's metrics for a prometheus-client `Registry`
/// (`register_collector`); made by
/// [`NodeStore::collector`](crate::NodeStore::collector). Names have no
/// prefix: the registry's (`gyre`) goes in front.
pub struct StoreCollector<E: Engine> {
    pub(crate) engine: Arc<E>,
    pub(crate) sync: SyncMetrics,
}

impl<E: Engine> fmt::Debug for StoreCollector<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreCollector").finish_non_exhaustive()
    }
}

impl<E: Engine> Collector for StoreCollector<E> {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let s = self.engine.stats();
        let gauges = [
            (
                "store_objects",
                "Object records stored (one per key; approximate: overwritten and deleted records count until compaction drops them)",
                s.objects,
            ),
            (
                "store_disk_bytes",
                "Bytes the store holds on disk: tables, value logs and journal",
                s.disk_bytes,
            ),
            (
                "store_journal_bytes",
                "Bytes of write-ahead journal on disk",
                s.journal_bytes,
            ),
            (
                "store_memtable_bytes",
                "Bytes in memtables, not yet flushed to tables",
                s.memtable_bytes,
            ),
            ("store_tables", "Tables on disk", s.tables),
            (
                "store_compactions_running",
                "Compactions running now",
                s.compacting,
            ),
        ];
        for (name, help, value) in gauges {
            let metric = ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
            metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)?;
        }
        let compactions = ConstCounter::new(s.compactions);
        compactions.encode(encoder.encode_descriptor(
            "store_compactions",
            "Compactions finished since the node started",
            None,
            compactions.metric_type(),
        )?)?;
        let compacting = ConstCounter::new(s.compaction_micros as f64 / 1e6);
        compacting.encode(encoder.encode_descriptor(
            "store_compaction_seconds",
            "Time spent compacting since the node started",
            None,
            compacting.metric_type(),
        )?)?;
        let histograms = [
            (
                "store_sync_duration_seconds",
                "How long each fsync of the journal took",
                &self.sync.duration,
            ),
            (
                "store_sync_batches",
                "Write batches each fsync made durable (the group-commit group size)",
                &self.sync.batches,
            ),
        ];
        for (name, help, histogram) in histograms {
            histogram.encode(encoder.encode_descriptor(
                name,
                help,
                None,
                histogram.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::encoding::text::encode;
    use prometheus_client::registry::Registry;

    use crate::{Durability, MemStore, Store, StoreConfig};

    #[test]
    fn the_collector_tells_objects_and_fsyncs() {
        let store = MemStore::new(StoreConfig {
            durability: Durability::Always,
            ..StoreConfig::default()
        })
        .unwrap_or_else(|e| panic!("{e}"));
        store.set_cluster_id("c").unwrap_or_else(|e| panic!("{e}"));
        let mut registry = Registry::default();
        registry.register_collector(Box::new(store.collector()));
        let mut text = String::new();
        encode(&mut text, &registry).unwrap_or_else(|e| panic!("{e}"));
        assert!(text.contains("store_objects 0\n"), "{text}");
        assert!(
            text.contains("# TYPE store_compactions counter\n"),
            "{text}"
        );
        assert!(
            text.contains("store_sync_duration_seconds_count 1\n"),
            "{text}"
        );
        assert!(text.contains("store_sync_batches_sum 1.0\n"), "{text}");
    }
}
