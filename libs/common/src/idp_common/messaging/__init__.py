"""SQS messaging: CloudEvents envelope, publisher, consumer, transactional outbox."""
