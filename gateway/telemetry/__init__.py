"""What the gateway tells its operators about the requests it serves: an id per request that every
log line carries, log lines as text or JSON, and latency histograms for /metrics."""
