/** The mailbox: routing events to partitions and carrying them over BullMQ. Knows nothing of XState. */
export { type Envelope, type MailboxJobData, type JsonObject, type WireEnvelope, EVENT_JSON, encodeEnvelope, decodeJobData, eventCount, isNewerFormat, MAILBOX_FORMAT } from './envelope';
export { partitionOf } from './partitioner';
export { Producer, type ProducerOptions } from './producer';
export { PartitionConsumer, type ConsumerOptions, type MailboxJob } from './consumer';
