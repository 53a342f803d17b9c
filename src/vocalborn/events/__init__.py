"""Integration events (issue #25): the transactional outbox, its relay to NATS JetStream, the
versioned JSON Schemas of the messages and their AsyncAPI document. docs/EVENTS.md."""
