// Package natsembed runs a NATS server with JetStream inside the fulfil process.
//
// fulfil starts one when NATS_URL is empty, so that `fulfil demo` and local development need no
// separate server, and tests use one through package natstest. A production deployment points
// NATS_URL at a real (clustered) NATS system instead.
//
// # Durability
//
// The server keeps its streams and KV buckets as files under Options.DataDir. A message that
// JetStream acknowledged has been written to those files (the operating system's page cache),
// so it survives a crash or kill of the fulfil process. It survives a crash of the machine or a
// power loss only once it has been synced to disk: JetStream syncs every SyncInterval (the
// server's default is two minutes), or after every write with SyncAlways, which costs
// throughput. A single embedded server has no replicas; use a NATS cluster with Replicas 3 when
// losing the last acknowledged writes is not acceptable.
package natsembed
